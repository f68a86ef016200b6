// A small local app standing in for the developer's dev server: a page, a JSON endpoint and an
// echo, so a curl through the tunnel shows what arrives on the laptop.
import { createServer } from 'node:http';

export function createSampleApp() {
  return createServer((req, res) => {
    const url = new URL(req.url, 'http://local');
    if (url.pathname === '/api/time') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ time: new Date().toISOString(), servedBy: 'the laptop' }) + '\n');
      return;
    }
    if (url.pathname === '/echo') {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() }, null, 2) + '\n');
      });
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>Hello from the laptop</title><h1>Hello from the laptop</h1>
<p>This page was served by a local app on the developer's machine, through devtunnel.</p>
<p>Host header seen by the app: <code>${String(req.headers.host).replace(/[<>&"]/g, '')}</code></p>\n`);
  });
}
