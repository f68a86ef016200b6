// The bench's one-hop reverse proxy, built with http-proxy with a keep-alive agent: what a
// company already runs in front of an app, the baseline a tunnel is compared with.
// Usage: node proxy.mjs <target port>; prints its own port.
import { Agent, createServer } from 'node:http';
import httpProxy from 'http-proxy';

const target = `http://127.0.0.1:${process.argv[2]}`;
const proxy = httpProxy.createProxyServer({ target, agent: new Agent({ keepAlive: true, maxSockets: 256 }), xfwd: true, ws: true });
proxy.on('error', (_error, _req, res) => {
  if (res && 'writeHead' in res && !res.headersSent) res.writeHead(502).end();
  else res?.destroy?.();
});
const server = createServer((req, res) => proxy.web(req, res));
server.on('upgrade', (req, socket, head) => proxy.ws(req, socket, head));
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
