// `npm run demo`: the whole story on one machine.
//
//   browser ─► gateway (stand-in for the company's web proxy, http-proxy)
//                ├─ /cart/ with cookie devtunnel=demo ─► tunnel server port ─► tunnel ─► Vite on "your laptop"
//                └─ everything else ─► the site app ("in the cluster")
//
// It starts the tunnel server (generated token), the site and the gateway, and examples/vite-app
// with @devtunnel/vite-plugin; prints one URL to open; Ctrl+C stops every process it started.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createGateway } from './gateway.mjs';
import { createSite } from './site.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const viteApp = join(here, '..', 'vite-app');
const serverBin = join(dirname(require.resolve('@devtunnel/server/package.json')), 'dist', 'cli.js');
const viteBin = join(dirname(createRequire(join(viteApp, 'package.json')).resolve('vite/package.json')), 'bin', 'vite.js');
const children = [];
const closers = [];
let stopping = false;

function run(name, args, options = {}) {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  children.push(child);
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`demo: ${name} exited unexpectedly (${signal ?? code}); stopping.`);
      void stop(1);
    }
  });
  return child;
}

function waitForLine(stream, match, what, timeoutMs = 30_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`demo: timed out waiting for ${what}`)), timeoutMs);
    createInterface({ input: stream }).on('line', (line) => {
      if (!match(line)) return;
      clearTimeout(timer);
      resolve(line);
    });
  });
}

async function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  console.log('\ndemo: stopping…');
  for (const close of closers) close();
  await Promise.all(
    children.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }),
  );
  console.log('demo: everything stopped.');
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

try {
  // 1. The tunnel server, as in the cluster. No token configured: it generates one.
  const tunnelPorts = process.env.DEVTUNNEL_TUNNEL_PORTS ?? '9000-9099';
  const server = run('tunnel server', [serverBin, '--host', '127.0.0.1', '--port', '0', '--tunnel-ports', tunnelPorts], { env: { ...process.env, DEVTUNNEL_TOKEN: '' } });
  const [tokenLine, listening] = await Promise.all([
    waitForLine(server.stderr, (l) => l.includes('DEVTUNNEL_TOKEN='), 'the generated token'),
    waitForLine(server.stdout, (l) => l.includes('"server.listening"'), 'the tunnel server'),
  ]);
  const token = tokenLine.split('=')[1].trim();
  const tunnelServer = `http://127.0.0.1:${JSON.parse(listening).port}`;
  server.stdout.resume();

  // 2. The rest of the site and the company's web proxy in front of it.
  const site = createSite();
  await new Promise((resolve) => site.listen(0, '127.0.0.1', resolve));
  const gateway = createGateway({ siteUrl: `http://127.0.0.1:${site.address().port}`, tunnelServer, token });
  await new Promise((resolve) => gateway.listen(Number(process.env.DEMO_PORT ?? 0), '127.0.0.1', resolve));
  closers.push(() => {
    gateway.close();
    gateway.closeAllConnections();
    site.close();
    site.closeAllConnections();
  });
  const shop = `http://127.0.0.1:${gateway.address().port}`;

  // 3. The developer's Vite app, with the plugin: `vite` is all they run.
  const vite = run('vite', [viteBin, '--port', '5173', '--clearScreen', 'false'], {
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
  await stop(1);
}
