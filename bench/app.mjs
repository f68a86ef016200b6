// The bench's local app, in a process of its own: 1 KiB GETs, streamed downloads (`/bytes?n=`),
// an upload sink (`/upload`, answers the byte count), and a WebSocket echo.
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';

const body = Buffer.alloc(1024, 'x');
const block = Buffer.alloc(64 * 1024, 'y');
const server = createServer((req, res) => {
  if (req.url.startsWith('/bytes')) {
    const n = Number(new URL(req.url, 'http://x').searchParams.get('n'));
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
    let sent = 0;
    const pump = () => {
      while (sent < n) {
        const part = n - sent >= block.length ? block : block.subarray(0, n - sent);
        sent += part.length;
        if (!res.write(part)) return void res.once('drain', pump);
      }
      res.end();
    };
    return pump();
  }
  if (req.url.startsWith('/upload')) {
    let bytes = 0;
    req.on('data', (c) => (bytes += c.length));
    req.on('end', () => res.end(String(bytes)));
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
});
new WebSocketServer({ server }).on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
