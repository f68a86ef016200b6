// Registers N tunnels from one process and keeps them idle, for the bench's idle-scale figure.
// Usage: node fleet.mjs <server URL> <N> [auto|poll]; prints one JSON line once every tunnel is
// registered and its channel is waiting: with `poll`, the client's 8 long polls each; with `auto`
// (the default client), a downstream, an upstream and 2 polls each. Once a poll timeout has passed
// with no request, each keeps a quarter of those polls. The local port is never called.
import { createTunnelClient } from '@devtunnel/core';

const [server, n, transport = 'auto'] = process.argv.slice(2);
const clients = [];
for (let i = 0; i < Number(n); i++) {
  const client = createTunnelClient({ server, token: process.env.DEVTUNNEL_TOKEN, port: 1, host: '127.0.0.1', name: `idle-${i}`, stateDir: false, proxy: false, transport, inspect: false });
  clients.push(client);
  await client.start();
}
// Polls and streams are opened right after registration; give the last ones a moment to settle.
await new Promise((r) => setTimeout(r, 3_000));
console.log(JSON.stringify({ tunnels: clients.length, transport }));
process.on('SIGTERM', () => process.exit(0));
