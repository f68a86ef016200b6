// A stand-in for the company's web proxy / API gateway, built with http-proxy: it serves the site,
// and sends one app's path prefix (/cart/) to a developer's tunnel port when the request carries
// the override header `X-Devtunnel: <tunnel name>` (an API client) or cookie `devtunnel=<tunnel
// name>` (a browser), the way a company gateway does for developers.
// HTTP and WebSocket (HMR) both. Run alone: node gateway.mjs <tunnel server URL> (token in
// DEVTUNNEL_TOKEN); prints {"port": …} once listening.
import { createServer } from 'node:http';
import httpProxy from 'http-proxy';

const OVERRIDE = /(?:^|;\s*)devtunnel=([a-z0-9-]+)/;
const NAME = /^[a-z0-9-]+$/;
const PREFIX = '/cart/';

/** The override a request carries: the header first, else the cookie. */
export function overrideOf(headers) {
  const header = headers['x-devtunnel'];
  if (typeof header === 'string' && NAME.test(header)) return header;
  return OVERRIDE.exec(headers.cookie ?? '')?.[1];
}

/**
 * Name → port, from the server's tunnel list. Names are not unique: a connected tunnel comes
 * before an offline one, then the most recently seen. An offline developer's tunnel stays routed,
 * so their testers get the tunnel server's 503 `tunnel_offline` page, not the cluster's own app
 * without a word; a closed (deregistered) or expired one is not routed.
 */
export function portsByName(tunnels) {
  const rank = (t) => (t.state === 'connected' ? 2 : 1) * 1e15 + (Date.parse(t.lastSeen) || 0);
  const best = new Map();
  for (const t of tunnels) {
    if (t.state === 'closed' || t.state === 'expired') continue;
    const other = best.get(t.name);
    if (!other || rank(t) > rank(other)) best.set(t.name, t);
  }
  return new Map([...best].map(([name, t]) => [name, t.port]));
}

/**
 * @param {{ siteUrl: string, tunnelServer: string, token: string }} options
 * The gateway learns which port a tunnel name has from the tunnel server's API (cached 1 s),
 * as a real gateway would from its own routing configuration.
 */
export function createGateway({ siteUrl, tunnelServer, token, tunnelHost = '127.0.0.1' }) {
  // xfwd: add X-Forwarded-*; the Host header is kept, as a web proxy in front of apps does.
  const proxy = httpProxy.createProxyServer({ xfwd: true, ws: true, proxyTimeout: 60_000 });
  // Without an error handler http-proxy crashes the process (http-party/node-http-proxy#1468).
  proxy.on('error', (error, _req, res) => {
    if (res && 'writeHead' in res && !res.headersSent) {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`gateway: upstream failed (${error.code ?? error.message})\n`);
    } else res?.destroy?.();
  });
  let cache = { at: 0, ports: new Map() };
  async function portOf(name) {
    if (Date.now() - cache.at > 1_000) {
      try {
        const res = await fetch(`${tunnelServer}/api/v1/tunnels`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(2_000) });
        if (!res.ok) throw new Error(`the tunnel list answered ${res.status}`);
        const { tunnels } = await res.json();
        cache = { at: Date.now(), ports: portsByName(tunnels) };
      } catch {
        // The tunnel server restarting (every upgrade): keep routing by the last list, ports are sticky.
        cache = { at: Date.now(), ports: cache.ports };
      }
    }
    return cache.ports.get(name);
  }
  async function target(req) {
    if (req.url.startsWith(PREFIX)) {
      const name = overrideOf(req.headers);
      const port = name && (await portOf(name));
      if (port) return `http://${tunnelHost}:${port}`;
    }
    return siteUrl;
  }
  const server = createServer(async (req, res) => {
    const m = /^\/__override\/([a-z0-9-]+)$/.exec(req.url);
    if (m) {
      const cookie = m[1] === 'off' ? 'devtunnel=; Path=/; Max-Age=0' : `devtunnel=${m[1]}; Path=/; SameSite=Lax`;
      res.writeHead(302, { location: '/', 'set-cookie': cookie });
      return res.end();
    }
    proxy.web(req, res, { target: await target(req) });
  });
  server.on('upgrade', async (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    proxy.ws(req, socket, head, { target: await target(req) });
  });
  return server;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { createSite } = await import('./site.mjs');
  const site = createSite();
  await new Promise((resolve) => site.listen(0, '127.0.0.1', resolve));
  const gateway = createGateway({ siteUrl: `http://127.0.0.1:${site.address().port}`, tunnelServer: process.argv[2], token: process.env.DEVTUNNEL_TOKEN });
  await new Promise((resolve) => gateway.listen(Number(process.argv[3] ?? 0), '127.0.0.1', resolve));
  console.log(JSON.stringify({ port: gateway.address().port }));
  process.on('SIGTERM', () => process.exit(0));
}
