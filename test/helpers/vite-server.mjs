// Starts a real Vite dev server on 127.0.0.1 port 0 in the given root, prints one JSON line with
// its port and version, and runs until killed. A child process because Vite 7+ is ESM-only and
// Jest runs our tests as CommonJS. Usage: node vite-server.mjs <root> [base]
import { createServer, version } from 'vite';

const [root, base = '/'] = process.argv.slice(2);
const server = await createServer({
  root,
  base,
  configFile: false,
  logLevel: 'silent',
  clearScreen: false,
  server: { host: '127.0.0.1', port: 0, strictPort: true },
  optimizeDeps: { noDiscovery: true, include: [] },
});
await server.listen();
console.log(JSON.stringify({ port: server.httpServer.address().port, version }));
const stop = () => server.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
