import { join } from 'node:path';
import { ROOT, runBin, type Child } from '../helpers/child';
import { freeRange, memoryLogger, startServer } from '../helpers/tunnel';

/**
 * The demo's cluster (examples/cluster), as the browser tests use it: the cluster's cart app and
 * the static web proxy (real processes, as `npm run demo` has them), and a tunnel server (in this
 * process, test timings, a memory log) whose route `cart` stands in for the cart app. The web
 * proxy sends /cart/ to the route's port; the route's link is `<shop>/cart/__devtunnel/`.
 */
export interface Cluster {
  /** The web proxy's origin, where the browser goes: `http://127.0.0.1:<port>`. */
  shop: string;
  /** The route's own origin, where the web proxy sends /cart/: `http://127.0.0.1:<route port>`. */
  routeUrl: string;
  /** The tunnel server (`url` is its control API, for DEVTUNNEL_SERVER). */
  server: Awaited<ReturnType<typeof startServer>>;
  /** The tunnel server's log lines. */
  log: ReturnType<typeof memoryLogger>;
  close(): Promise<void>;
}

export async function startCluster(): Promise<Cluster> {
  const started: Array<() => Promise<unknown>> = [];
  const close = async () => {
    while (started.length) await started.pop()!();
  };
  try {
    // A route needs a port number of its own (not 0), outside the tunnel ports: one free range for both.
    const ports = await freeRange(11);
    const routePort = ports.from;
    const cart: Child = runBin(join(ROOT, 'examples/cluster/cart.mjs'), []);
    started.push(() => cart.stop('SIGTERM'));
    const cartPort = (JSON.parse(await cart.waitForLine((l) => l.startsWith('{'))) as { port: number }).port;
    const gateway: Child = runBin(join(ROOT, 'examples/cluster/gateway.mjs'), [`http://127.0.0.1:${routePort}`]);
    started.push(() => gateway.stop('SIGTERM'));
    const shop = `http://127.0.0.1:${(JSON.parse(await gateway.waitForLine((l) => l.startsWith('{'))) as { port: number }).port}`;
    const log = memoryLogger();
    const server = await startServer({
      tunnelPorts: `${ports.from + 1}-${ports.to}`,
      routes: [`cart:${routePort}=http://127.0.0.1:${cartPort};public-url=${shop}/cart`],
      logger: log,
    });
    started.push(() => server.close());
    return { shop, routeUrl: `http://127.0.0.1:${routePort}`, server, log, close };
  } catch (error) {
    await close();
    throw error;
  }
}
