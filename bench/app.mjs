// The bench's local app, in a process of its own: 1 KiB GETs, streamed downloads (`/bytes?n=`),
// JavaScript that compresses as a dev server's modules do (`/module?n=`, whole, at most 1 MiB),
// an upload sink (`/upload`, answers the byte count), and a WebSocket echo.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { WebSocketServer } from 'ws';

const body = Buffer.alloc(1024, 'x');
const block = Buffer.alloc(64 * 1024, 'y');
/** Real JavaScript (TypeScript's compiler), cut to the size asked for: 3-4 × smaller with brotli. */
const source = readFileSync(createRequire(import.meta.url).resolve('typescript')).subarray(1 << 20, 2 << 20);
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
  if (req.url.startsWith('/module')) {
    const n = Math.min(source.length, Number(new URL(req.url, 'http://x').searchParams.get('n')));
    res.writeHead(200, { 'content-type': 'text/javascript', 'content-length': n, etag: `W/"${n}"` });
    return res.end(source.subarray(0, n));
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
