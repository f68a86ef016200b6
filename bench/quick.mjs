// `npm run bench:quick`: a first measurement for the performance work. Small GETs (1 KiB) at 16
// connections: direct to the local app vs through the tunnel (server and client as separate
// processes, as deployed). Interleaved, repeated, medians; the figure that matters is the ratio,
// measured in the same run, because the machines are shared and noisy.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import WebSocket from 'ws';

const require = createRequire(import.meta.url);
const bin = (pkg) => join(dirname(require.resolve(`${pkg}/package.json`)), 'dist', 'cli.js');
const DURATION = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const TOKEN = 'bench-token-0123456789abcdef';
const children = [];

function line(stream, match) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timed out')), 15_000);
    createInterface({ input: stream }).on('line', (l) => {
      if (match(l)) {
        clearTimeout(timer);
        resolve(l);
      }
    });
  });
}

function run(file, args) {
  const child = spawn(process.execPath, [file, ...args], { env: { ...process.env, DEVTUNNEL_TOKEN: TOKEN }, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  return child;
}

// The local app runs in its own process too, so the three hops compete for the 2 cores as deployed.
const app = spawn(process.execPath, [join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, 'app.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
children.push(app);
const appPort = Number(await line(app.stdout, (l) => /^\d+$/.test(l)));

// Info level on purpose: one JSON log line per request is part of the real cost.
const server = run(bin('@devtunnel/server'), ['--host', '127.0.0.1', '--port', '0', '--tunnel-ports', process.env.BENCH_TUNNEL_PORTS ?? '39000-39019']);
const controlPort = JSON.parse(await line(server.stdout, (l) => l.includes('"server.listening"'))).port;
server.stdout.resume();
const client = run(bin('@devtunnel/core'), ['--server', `http://127.0.0.1:${controlPort}`, '--port', String(appPort), '--host', '127.0.0.1', '--state-dir', '/tmp/devtunnel-bench-state', '--json', ...(process.env.BENCH_CLIENT_ARGS ?? '').split(' ').filter(Boolean)]);
const registered = JSON.parse(await line(client.stdout, (l) => l.includes('"registered"')));
client.stdout.resume();

async function measure(url) {
  const r = await autocannon({ url, connections: CONNECTIONS, duration: DURATION, pipelining: 1 });
  if (r.errors || r.non2xx) throw new Error(`${url}: ${r.errors} errors, ${r.non2xx} non-2xx`);
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99 };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = { direct: [], tunnel: [] };
await measure(`http://127.0.0.1:${appPort}/`); // warm-up
await measure(`${registered.url}/`);
for (let i = 0; i < ROUNDS; i++) {
  results.direct.push(await measure(`http://127.0.0.1:${appPort}/`));
  results.tunnel.push(await measure(`${registered.url}/`));
}
/** WebSocket: round-trip latency (one message at a time) and messages per second (64 in flight). */
async function wsMeasure(url, count = 3000) {
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const payload = Buffer.alloc(64, 'm');
  const rtts = [];
  for (let i = 0; i < 500; i++) {
    const t = performance.now();
    await new Promise((resolve) => {
      ws.once('message', resolve);
      ws.send(payload);
    });
    rtts.push(performance.now() - t);
  }
  const start = performance.now();
  await new Promise((resolve) => {
    let sent = 0;
    let got = 0;
    const pump = () => {
      while (sent < count && sent - got < 64) {
        ws.send(payload);
        sent++;
      }
    };
    ws.on('message', () => {
      if (++got === count) resolve();
      else pump();
    });
    pump();
  });
  const mps = count / ((performance.now() - start) / 1000);
  ws.terminate();
  return { mps, rtt: median(rtts) };
}

const wsResults = { direct: [], tunnel: [] };
for (let i = 0; i < ROUNDS; i++) {
  wsResults.direct.push(await wsMeasure(`ws://127.0.0.1:${appPort}/`));
  wsResults.tunnel.push(await wsMeasure(`${registered.url.replace('http', 'ws')}/`));
}

const summary = (rs) => ({ rps: median(rs.map((r) => r.rps)), p50: median(rs.map((r) => r.p50)), p99: median(rs.map((r) => r.p99)) });
const d = summary(results.direct);
const t = summary(results.tunnel);
console.log(`\nsmall GETs (1 KiB), ${CONNECTIONS} connections, ${ROUNDS} × ${DURATION} s interleaved, medians, node ${process.version}`);
console.log(`  direct   ${d.rps.toFixed(0).padStart(7)} req/s   p50 ${d.p50} ms   p99 ${d.p99} ms`);
console.log(`  tunnel   ${t.rps.toFixed(0).padStart(7)} req/s   p50 ${t.p50} ms   p99 ${t.p99} ms`);
console.log(`  ratio    ${(t.rps / d.rps).toFixed(3)} × direct`);
const wd = { mps: median(wsResults.direct.map((r) => r.mps)), rtt: median(wsResults.direct.map((r) => r.rtt)) };
const wt = { mps: median(wsResults.tunnel.map((r) => r.mps)), rtt: median(wsResults.tunnel.map((r) => r.rtt)) };
console.log(`\nWebSocket echo, 64-byte messages, ${ROUNDS} rounds, medians`);
console.log(`  direct   ${wd.mps.toFixed(0).padStart(7)} msg/s (64 in flight)   round trip ${wd.rtt.toFixed(2)} ms`);
console.log(`  tunnel   ${wt.mps.toFixed(0).padStart(7)} msg/s (64 in flight)   round trip ${wt.rtt.toFixed(2)} ms`);
console.log(`  ratio    ${(wt.mps / wd.mps).toFixed(3)} × direct msg/s, ${(wt.rtt / wd.rtt).toFixed(1)} × direct round trip`);
for (const c of children) c.kill('SIGTERM');
