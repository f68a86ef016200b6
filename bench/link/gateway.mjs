// The cluster's gateway in bench:link: a one-hop reverse proxy built with http-proxy, as
// bench/proxy.mjs, with the two habits a production gateway has for idle upstream connections
// (nginx retries a GET on another connection when one fails before an answer, its
// proxy_next_upstream default): idle upstream sockets close after 4 s, before Node's servers (Vite,
// the tunnel server) close theirs at 5 s, and a GET or HEAD whose reused socket was reset before
// any answer is sent once more. Without them a load now and then got a 502 from that race, which
// is the gateway's and the same for every arm.
// Usage: node gateway.mjs <target port>; prints its own port.
import { Agent, createServer } from 'node:http';
import httpProxy from 'http-proxy';

const target = `http://127.0.0.1:${process.argv[2]}`;
const agent = new Agent({ keepAlive: true, maxSockets: 256, timeout: 4_000 });
const proxy = httpProxy.createProxyServer({ target, agent, xfwd: true, ws: true });
const RETRIABLE = new Set(['ECONNRESET', 'EPIPE', 'ECONNREFUSED']);
proxy.on('error', (error, req, res) => {
  if (res && 'writeHead' in res && !res.headersSent) {
    if (!req.retried && (req.method === 'GET' || req.method === 'HEAD') && RETRIABLE.has(error.code)) {
      req.retried = true;
      return proxy.web(req, res);
    }
    res.writeHead(502).end();
  } else res?.destroy?.();
});
const server = createServer((req, res) => proxy.web(req, res));
server.on('upgrade', (req, socket, head) => proxy.ws(req, socket, head));
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
