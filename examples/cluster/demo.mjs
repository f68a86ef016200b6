// `npm run demo`: the whole story on one machine.
//
//   browser ─► gateway (stand-in for the company's web proxy: static rules, no devtunnel logic)
//                ├─ /cart/ ─► tunnel server, route "cart" (its own port)
//                │              ├─ selects a live tunnel (cookie devtunnel=<name>) ─► tunnel ─► Vite on "your laptop"
//                │              └─ everything else ─► the cart app ("in the cluster", the route's upstream)
//                └─ everything else ─► the site app ("in the cluster")
//
// It starts the cart and site apps and the gateway, the tunnel server (generated token) with the
// route `cart`, and examples/vite-app with @devtunnel/vite-plugin (`route: 'cart'`); prints the
// link that switches a browser's cart to the laptop; Ctrl+C stops every process it started.
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createCart } from './cart.mjs';
import { createGateway } from './gateway.mjs';
import { createProcessGroup, startTunnelServer, waitForLine } from './processes.mjs';
import { createSite } from './site.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const viteApp = join(here, '..', 'vite-app');
const viteBin = join(dirname(createRequire(join(viteApp, 'package.json')).resolve('vite/package.json')), 'bin', 'vite.js');
const group = createProcessGroup();

const listen = (server, port) => new Promise((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', () => resolve(server.address().port)));

/** A port free right now, for the route (a route needs a port number of its own, not 0). */
async function freePort() {
  const probe = createServer();
  const port = await listen(probe, 0);
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

try {
  // 1. The cluster's apps: the site, and the cart app (the real app behind the route).
  const site = createSite();
  const cart = createCart();
  const sitePort = await listen(site, 0);
  const cartPort = await listen(cart, 0);

  // 2. The company's web proxy in front of them. Its one rule for the cart points at the tunnel
  //    server's route port rather than at the cart app: set once, never changed per developer.
  const routePort = Number(process.env.DEMO_ROUTE_PORT ?? 0) || (await freePort());
  const gateway = createGateway({ siteUrl: `http://127.0.0.1:${sitePort}`, cartUrl: `http://127.0.0.1:${routePort}` });
  const shop = `http://127.0.0.1:${await listen(gateway, Number(process.env.DEMO_PORT ?? 0))}`;
  group.onStop(() => {
    for (const server of [gateway, site, cart]) {
      server.close();
      server.closeAllConnections();
    }
  });

  // 3. The tunnel server, as in the cluster, with a token it generates and the route `cart`: its
  //    port stands in for the cart app; public-url is where browsers reach it (the gateway's /cart).
  const { url: tunnelServer, token } = await startTunnelServer(group, {
    routes: [`cart:${routePort}=http://127.0.0.1:${cartPort};public-url=${shop}/cart`],
  });

  // 4. The developer's Vite app, with the plugin (`route: 'cart'` in its config): `vite` is all they run.
  const vite = group.run('vite', [viteBin, '--port', '5173', '--clearScreen', 'false'], {
    cwd: viteApp,
    env: { ...process.env, DEVTUNNEL_SERVER: tunnelServer, DEVTUNNEL_TOKEN: token, DEVTUNNEL: '1', CI: '' },
  });
  const echo = (stream) => createInterface({ input: stream }).on('line', (l) => console.log(`  vite │ ${l}`));
  // The plugin prints the route's link once registered: `… turn it on in a browser: <link>`.
  const routeLine = waitForLine(vite.stdout, (l) => l.includes('devtunnel') && l.includes('turn it on in a browser: '), 'the route link of the Vite app');
  echo(vite.stdout);
  echo(vite.stderr);
  const link = /turn it on in a browser: (\S+)/.exec(await routeLine)[1];
  const name = new URL(link).searchParams.get('use');

  console.log(`
devtunnel demo: the shop runs "in the cluster", its cart app behind the tunnel server's route
"cart"; another cart runs in Vite on "your laptop", as tunnel "${name}".

  Open ${link}

What to expect:
  1. That page lists the live tunnels of route cart. Click "Use ${name}": it sets the cookie
     devtunnel=${name} in this browser only, and takes you to
       ${shop}/cart/
     now served by Vite on your laptop ("Fresh from the laptop"). The web proxy did not change:
     it sends /cart/ to the route's port, where the tunnel server picks the laptop for requests
     that select it and the cluster's cart for all others. Every answer there says which in the
     header X-Devtunnel-Served-By: "tunnel ${name}" or "upstream".
  2. Edit examples/vite-app/src/message.js: the cart updates in place (HMR, its WebSocket going
     through the route too).
  3. Back on the link's page, "Turn off" brings the cluster's cart back (so does stopping Vite).
     The shop's home page frames whichever cart this browser selects:
       ${shop}/

Ctrl+C stops everything.
`);
} catch (error) {
  console.error(error.message);
  await group.stop(1);
}
