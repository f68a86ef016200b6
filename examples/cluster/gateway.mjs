// A stand-in for the company's web proxy, built with http-proxy: static rules, no devtunnel logic.
// One rule sends the cart's prefix (/cart/) to the cart; everything else goes to the site. With
// devtunnel the platform team points that one rule at the tunnel server's route port for the cart
// (`--route cart:8101=…`) instead of at the cart's own address, once: which browser gets which
// cart is decided there, per request. HTTP and WebSocket (HMR) both; the Host header is kept and
// X-Forwarded-* added, as a web proxy in front of apps does.
//
// Run alone: node gateway.mjs <cart URL> [port]: serves the site itself (site.mjs) and sends
// /cart/ to <cart URL>; prints {"port": …} once listening.
import { createServer } from 'node:http';
import httpProxy from 'http-proxy';

/** The path prefix the cart app is served under. */
export const CART_PREFIX = '/cart/';

/**
 * @param {{ siteUrl: string, cartUrl: string }} options `cartUrl`: where /cart/ goes (the route's
 * port of the tunnel server, e.g. http://127.0.0.1:8101); `siteUrl`: everything else.
 */
export function createGateway({ siteUrl, cartUrl }) {
  const proxy = httpProxy.createProxyServer({ xfwd: true, ws: true, proxyTimeout: 60_000 });
  // Without an error handler http-proxy crashes the process (http-party/node-http-proxy#1468).
  proxy.on('error', (error, _req, res) => {
    if (res && 'writeHead' in res && !res.headersSent) {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`gateway: upstream failed (${error.code ?? error.message})\n`);
    } else res?.destroy?.();
  });
  const target = (req) => (req.url.startsWith(CART_PREFIX) ? cartUrl : siteUrl);
  const server = createServer((req, res) => proxy.web(req, res, { target: target(req) }));
  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    proxy.ws(req, socket, head, { target: target(req) });
  });
  return server;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const cartUrl = process.argv[2];
  if (!/^https?:\/\//.test(cartUrl ?? '')) {
    console.error('usage: node gateway.mjs <cart URL, e.g. the route port http://127.0.0.1:8101> [port]');
    process.exit(2);
  }
  const { createSite } = await import('./site.mjs');
  const site = createSite();
  await new Promise((resolve) => site.listen(0, '127.0.0.1', resolve));
  const gateway = createGateway({ siteUrl: `http://127.0.0.1:${site.address().port}`, cartUrl });
  await new Promise((resolve) => gateway.listen(Number(process.argv[3] ?? 0), '127.0.0.1', resolve));
  console.log(JSON.stringify({ port: gateway.address().port }));
  process.on('SIGTERM', () => process.exit(0));
}
