// The bench's local app, in a process of its own: 1 KiB GETs and a WebSocket echo.
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';

const body = Buffer.alloc(1024, 'x');
const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
});
new WebSocketServer({ server }).on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
