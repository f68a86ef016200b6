// CPU per request of every process on one path, for tuning: `node bench/cpu.mjs [connections=16]
// [seconds=5] [tunnel|route|route-tunnel|proxy|direct] [extra devtunnel client flags…]`. Starts the
// bench's local app, the path's processes (the proxy, the tunnel server and client as their CLIs, or
// for `route` the tunnel server with a route to the app, requests selecting nobody: its fallback; for
// `route-tunnel` the tunnel on that route, requests selecting it by X-Devtunnel), loads it with
// autocannon (bench/load.mjs), and prints one JSON line: req/s, and for each process its CPU
// (user + system, from /proc; the load generator's from itself) per request in µs. `…PerApp` divides by the local app's figure:
// the app does the same work for every request, so that ratio moves less with a noisy machine
// than any absolute number. Linux only (reads /proc). BENCH_CPU_PATH (default `/`, the app's 1 KiB
// text) chooses what is asked for, e.g. `/module?n=8192` (JavaScript that compresses as Vite's
// modules do); BENCH_CPU_HEADERS (a JSON object) adds request headers, e.g. a browser's
// `{"accept-encoding":"gzip, deflate, br, zstd"}` to measure encoded answers (`--no-compress` off).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const bin = (pkg) => join(dirname(require.resolve(`${pkg}/package.json`)), 'dist', 'cli.js');
const [connections = '16', seconds = '5', path = 'tunnel', ...clientArgs] = process.argv.slice(2);
const TOKEN = 'bench-token-0123456789abcdef';
const children = [];

function start(args, options = {}) {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], ...options });
  children.push(child);
  return child;
}
process.on('exit', () => children.forEach((c) => c.exitCode === null && c.kill()));

function firstLine(stream, match = () => true) {
  return new Promise((resolve) => {
    const rl = createInterface({ input: stream });
    rl.on('line', (l) => match(l) && (rl.close(), resolve(l)));
  });
}

/** CPU seconds (user + system) a process has used. */
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const requestPath = process.env.BENCH_CPU_PATH ?? '/';
const headers = process.env.BENCH_CPU_HEADERS ? [JSON.stringify([JSON.parse(process.env.BENCH_CPU_HEADERS)])] : [];

async function load(url, duration) {
  const child = start([join(here, 'load.mjs'), `${url}${requestPath}`, connections, String(duration), ...headers]);
  const result = JSON.parse(await firstLine(child.stdout));
  await once(child, 'exit');
  return { ...result, pid: child.pid };
}

const app = start([join(here, 'app.mjs')]);
const appPort = Number(await firstLine(app.stdout));
const pids = { app: app.pid };
let url = `http://127.0.0.1:${appPort}`;
// BENCH_CPU_PROF=<dir> profiles the tunnel server (node --cpu-prof), written when it exits.
const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : [];
/** The tunnel server's CLI; with `route`, serving the app as the route `cart` on port 23120. */
const startServer = (route) =>
  start([...prof, bin('@devtunnel/server'), '--host', '127.0.0.1', '--port', '0', '--tunnel-ports', '23100-23119', '--token', TOKEN, ...(route ? ['--route', `cart:23120=http://127.0.0.1:${appPort}`] : [])]);
if (path === 'proxy') {
  const proxy = start([join(here, 'proxy.mjs'), String(appPort)]);
  url = `http://127.0.0.1:${await firstLine(proxy.stdout)}`;
  pids.proxy = proxy.pid;
} else if (path === 'route') {
  // A route's fallback: every request selects nobody and goes to the app, through undici's Pool.
  const server = startServer(true);
  await firstLine(server.stdout, (l) => l.includes('"server.listening"'));
  server.stdout.resume();
  url = 'http://127.0.0.1:23120';
  pids.server = server.pid;
} else if (path === 'tunnel' || path === 'route-tunnel') {
  // `route-tunnel`: the same tunnel, registered on a route and reached through it (X-Devtunnel).
  const onRoute = path === 'route-tunnel';
  const server = startServer(onRoute);
  const controlPort = JSON.parse(await firstLine(server.stdout, (l) => l.includes('"server.listening"'))).port;
  server.stdout.resume();
  const client = start([bin('@devtunnel/core'), '--server', `http://127.0.0.1:${controlPort}`, '--port', String(appPort), '--host', '127.0.0.1', '--state-dir', join(tmpdir(), 'devtunnel-bench-cpu'), '--json', ...(onRoute ? ['--route', 'cart', '--name', 'ann'] : []), ...clientArgs], { env: { ...process.env, DEVTUNNEL_TOKEN: TOKEN } });
  url = JSON.parse(await firstLine(client.stdout, (l) => l.includes('"registered"'))).url;
  client.stdout.resume();
  if (onRoute) {
    url = 'http://127.0.0.1:23120';
    headers[0] = JSON.stringify([{ ...JSON.parse(headers[0] ?? '[{}]')[0], 'x-devtunnel': 'ann' }]);
  }
  // Let the streams (or the polls) settle before the warm-up.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  pids.server = server.pid;
  pids.client = client.pid;
}

await load(url, 1); // warm-up
const before = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid)]));
const r = await load(url, Number(seconds));
const out = { path, connections: Number(connections), rps: Math.round(r.rps), p50: r.p50, p99: r.p99, ...(r.errors || r.non2xx ? { errors: r.errors, non2xx: r.non2xx } : {}) };
const perRequest = (cpu) => Math.round((cpu * 1e6) / r.total);
for (const [name, pid] of Object.entries(pids)) out[`${name}Us`] = perRequest(cpuSeconds(pid) - before[name]);
out.loadUs = perRequest(r.cpuUs / 1e6);
for (const name of Object.keys(pids)) if (name !== 'app') out[`${name}PerApp`] = +(out[`${name}Us`] / out.appUs).toFixed(2);
console.log(JSON.stringify(out));
// A profile is written only when the server exits on its own (SIGTERM, then its drain).
const profiled = process.env.BENCH_CPU_PROF && children.find((c) => c.pid === pids.server);
if (profiled) {
  profiled.kill('SIGTERM');
  await once(profiled, 'exit');
}
process.exit(0);
