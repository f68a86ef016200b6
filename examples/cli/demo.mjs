// `npm run demo:cli`: a tunnel server with a generated token, a small local app and the devtunnel
// client, all on this machine. Prints the tunnel URL and a curl command that goes through it;
// Ctrl+C stops every process it started.
import { createInterface } from 'node:readline';
import { bin, createProcessGroup, startTunnelServer, waitForLine } from '../cluster/processes.mjs';
import { createSampleApp } from './sample-app.mjs';

const group = createProcessGroup();
const app = createSampleApp();
await new Promise((resolve) => app.listen(0, '127.0.0.1', resolve));
const appPort = app.address().port;

group.onStop(() => {
  app.close();
  app.closeAllConnections();
});
// No token configured: the server generates one and prints it once on stderr.
const { url: serverUrl, token } = await startTunnelServer(group);

const client = group.run('tunnel client', [bin('@devtunnel/core'), '--server', serverUrl, '--port', String(appPort), '--host', '127.0.0.1', '--name', 'demo', '--json'], { env: { ...process.env, DEVTUNNEL_TOKEN: token } });
const registered = JSON.parse(await waitForLine(client.stdout, (l) => l.includes('"registered"'), 'the tunnel registration'));

console.log(`
devtunnel demo: your "laptop" app answers on its own tunnel port.

  local app       http://127.0.0.1:${appPort}
  tunnel server   ${serverUrl}   (token generated for this run)
  tunnel          ${registered.url}  →  local app   (name ${registered.name})

Try it from another terminal:

  curl -i ${registered.url}/
  curl -s ${registered.url}/api/time
  curl -s -X POST --data 'hello' ${registered.url}/echo

Each request through the tunnel is listed below. Ctrl+C stops everything.
`);

createInterface({ input: client.stdout }).on('line', (line) => {
  const e = JSON.parse(line);
  if (e.event === 'request') console.log(`  ${e.time.slice(11, 19)}  ${e.method} ${e.path} → ${e.status}${e.error ? ` (${e.error})` : ''}  ${e.durationMs} ms`);
  else if (e.event !== 'registered') console.log(`  ${e.event}${e.message ? `: ${e.message}` : ''}`);
});
