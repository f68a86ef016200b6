// `npm run demo`: the whole story on one machine.
//
//   browser ─► gateway (stand-in for the company's web proxy, http-proxy)
//                ├─ /cart/ with cookie devtunnel=demo ─► tunnel server port ─► tunnel ─► Vite on "your laptop"
//                └─ everything else ─► the site app ("in the cluster")
//
// It starts the tunnel server (generated token), the site and the gateway, and examples/vite-app
// with @devtunnel/vite-plugin; prints one URL to open; Ctrl+C stops every process it started.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createGateway } from './gateway.mjs';
import { createProcessGroup, startTunnelServer, waitForLine } from './processes.mjs';
import { createSite } from './site.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const viteApp = join(here, '..', 'vite-app');
const viteBin = join(dirname(createRequire(join(viteApp, 'package.json')).resolve('vite/package.json')), 'bin', 'vite.js');
const group = createProcessGroup();

try {
  // 1. The tunnel server, as in the cluster, with a token it generates.
  const { url: tunnelServer, token } = await startTunnelServer(group);

  // 2. The rest of the site and the company's web proxy in front of it.
  const site = createSite();
  await new Promise((resolve) => site.listen(0, '127.0.0.1', resolve));
  const gateway = createGateway({ siteUrl: `http://127.0.0.1:${site.address().port}`, tunnelServer, token });
  await new Promise((resolve) => gateway.listen(Number(process.env.DEMO_PORT ?? 0), '127.0.0.1', resolve));
  group.onStop(() => {
    gateway.close();
    gateway.closeAllConnections();
    site.close();
    site.closeAllConnections();
  });
  const shop = `http://127.0.0.1:${gateway.address().port}`;

  // 3. The developer's Vite app, with the plugin: `vite` is all they run.
  const vite = group.run('vite', [viteBin, '--port', '5173', '--clearScreen', 'false'], {
    cwd: viteApp,
    env: { ...process.env, DEVTUNNEL_SERVER: tunnelServer, DEVTUNNEL_TOKEN: token, DEVTUNNEL_NAME: 'demo', DEVTUNNEL: '1', CI: '' },
  });
  const echo = (stream) => createInterface({ input: stream }).on('line', (l) => console.log(`  vite │ ${l}`));
  const connected = waitForLine(vite.stdout, (l) => l.includes('devtunnel') && l.includes('connected:'), 'the tunnel of the Vite app');
  echo(vite.stdout);
  echo(vite.stderr);
  await connected;

  console.log(`
devtunnel demo: the shop runs "in the cluster"; its cart runs in Vite on "your laptop".

  Open ${shop}/__override/demo

That sets the override cookie devtunnel=demo, as a developer would, so the gateway sends /cart/ to
your tunnel; the rest of the page comes from the site. Then edit
  examples/vite-app/src/message.js
and the cart updates in place (HMR through the tunnel). ${shop}/__override/off goes back.

Ctrl+C stops everything.
`);
} catch (error) {
  console.error(error.message);
  await group.stop(1);
}
