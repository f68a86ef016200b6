// `npm run demo:cli`: a tunnel server with a generated token, a small local app and the devtunnel
// client, all on this machine. Prints the tunnel URL and a curl command that goes through it;
// Ctrl+C stops every process it started.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { createSampleApp } from './sample-app.mjs';

const require = createRequire(import.meta.url);
const bin = (pkg) => join(dirname(require.resolve(`${pkg}/package.json`)), 'dist', 'cli.js');
const children = [];
let stopping = false;

function run(name, file, args, env = {}) {
  const child = spawn(process.execPath, [file, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`demo: ${name} exited unexpectedly (${signal ?? code}); stopping.`);
      void stop(1);
    }
  });
  return child;
}

function firstLine(stream, match, what) {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: stream });
    const timer = setTimeout(() => reject(new Error(`demo: timed out waiting for ${what}`)), 15_000);
    rl.on('line', (line) => {
      if (!match(line)) return;
      clearTimeout(timer);
      resolve(line);
    });
  });
}

async function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  console.log('\ndemo: stopping…');
  await Promise.all(
    children.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }),
  );
  app.close();
  app.closeAllConnections();
  console.log('demo: everything stopped.');
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

const app = createSampleApp();
await new Promise((resolve) => app.listen(0, '127.0.0.1', resolve));
const appPort = app.address().port;

// No token configured: the server generates one and prints it once on stderr.
const tunnelPorts = process.env.DEVTUNNEL_TUNNEL_PORTS ?? '9000-9099';
const server = run('tunnel server', bin('@devtunnel/server'), ['--host', '127.0.0.1', '--port', '0', '--tunnel-ports', tunnelPorts], { DEVTUNNEL_TOKEN: '' });
const tokenLine = firstLine(server.stderr, (l) => l.includes('DEVTUNNEL_TOKEN='), 'the generated token');
const serverPortLine = firstLine(server.stdout, (l) => l.includes('"server.listening"'), 'the tunnel server');
const [token, listening] = await Promise.all([tokenLine.then((l) => l.split('=')[1].trim()), serverPortLine]);
const serverUrl = `http://127.0.0.1:${JSON.parse(listening).port}`;
// The server's JSON log is for clusters; the client's events below tell the story here.
server.stdout.resume();

const client = run('tunnel client', bin('@devtunnel/core'), ['--server', serverUrl, '--port', String(appPort), '--host', '127.0.0.1', '--name', 'demo', '--json'], { DEVTUNNEL_TOKEN: token });
const registered = JSON.parse(await firstLine(client.stdout, (l) => l.includes('"registered"'), 'the tunnel registration'));

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
