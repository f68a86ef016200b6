// Registers N tunnels (8 polls each, the client's default) from one process and keeps them idle,
// for the bench's idle-scale figure. Usage: node fleet.mjs <server URL> <N>; prints one JSON line
// once every tunnel is registered and its polls are waiting. The local port is never called.
import { createTunnelClient } from '@devtunnel/core';

const [server, n] = process.argv.slice(2);
const clients = [];
for (let i = 0; i < Number(n); i++) {
  const client = createTunnelClient({ server, token: process.env.DEVTUNNEL_TOKEN, port: 1, host: '127.0.0.1', name: `idle-${i}`, stateDir: false, proxy: false });
  clients.push(client);
  await client.start();
}
// Polls are opened right after registration; give the last ones a moment to reach the server.
await new Promise((r) => setTimeout(r, 2_000));
console.log(JSON.stringify({ tunnels: clients.length, polls: clients.length * 8 }));
process.on('SIGTERM', () => process.exit(0));
