// `npm run soak`: about a minute of mixed traffic at a fixed rate well under capacity, through a
// fault-injecting proxy between the tunnel client and the server, with the client killed and
// restarted midway. It passes on invariants only, never on speed:
//   - every answered body is byte-for-byte right (hashes), never a truncated body that looks whole;
//   - every operation ends (answer, tunnel error, or cut connection) before its deadline;
//   - afterwards the server's queues, in-flight maps and upgraded connections are empty;
//   - the heap after GC is within a bound of its warm-up value.
// The tunnel server, the local app and the load run in this process (so their state can be
// inspected); the tunnel client is the real CLI in a child process, behind the chaos proxy.
// Run with --expose-gc (npm run soak does). SOAK_SECONDS scales the timeline (default 60).
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import WebSocket, { WebSocketServer } from 'ws';
import { createTunnelServer } from '@devtunnel/server';
import { createChaosProxy } from './chaos-proxy.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const require = createRequire(import.meta.url);
const clientBin = join(dirname(require.resolve('@devtunnel/core/package.json')), 'dist', 'cli.js');
const TOTAL = Number(process.env.SOAK_SECONDS ?? 60) * 1000;
const RATE = Number(process.env.SOAK_RATE ?? 40); // operations per second
const DEADLINE = 20_000; // every operation must end within this
const TOKEN = 'soak-token-0123456789abcdef';
const sha = (b) => createHash('sha256').update(b).digest('hex');
const at = (fraction) => Math.round(TOTAL * fraction);
if (typeof global.gc !== 'function') throw new Error('run with node --expose-gc (npm run soak does)');

/** Deterministic bytes: both ends can hash them without storing them. */
function pattern(seed, length) {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = (seed * 131 + i * 31) % 251;
  return b;
}

// ---- the local app ---------------------------------------------------------------------------
const app = createServer((req, res) => {
  const url = new URL(req.url, 'http://app');
  if (url.pathname === '/upload') {
    const hash = createHash('sha256');
    req.on('data', (c) => hash.update(c));
    req.on('end', () => res.end(hash.digest('hex')));
    return;
  }
  const n = Number(url.searchParams.get('n') ?? 1024);
  const seed = Number(url.searchParams.get('seed') ?? 0);
  const body = pattern(seed, n);
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
  // Streamed in 16 KiB pieces so large bodies really stream.
  let i = 0;
  const pump = () => {
    while (i < n) {
      const part = body.subarray(i, i + 16 * 1024);
      i += part.length;
      if (!res.write(part)) return void res.once('drain', pump);
    }
    res.end();
  };
  pump();
});
new WebSocketServer({ server: app }).on('connection', (ws) => ws.on('message', (d, binary) => ws.send(d, { binary })));
await new Promise((resolve) => app.listen(0, '127.0.0.1', resolve));

// ---- the tunnel server (scaled-down timings keep every wait inside the run) -------------------
const server = createTunnelServer({
  host: '127.0.0.1',
  port: 0,
  token: TOKEN,
  tunnelPorts: process.env.SOAK_TUNNEL_PORTS ?? '39500-39509',
  pollTimeoutMs: 3_000,
  waitForPollMs: 5_000,
  localTimeoutMs: 8_000,
  deadlineMs: 10_000,
  bodyIdleTimeoutMs: 10_000,
  headersTimeoutMs: 5_000,
  keepAliveTimeoutMs: 15_000,
  leaseMs: 5_000,
  expireMs: 120_000,
  disconnectGraceMs: 1_000,
  drainTimeoutMs: 2_000,
});
const { port: controlPort } = await server.listen();
const chaos = await createChaosProxy(controlPort);

// ---- the tunnel client: the real CLI, behind the chaos proxy ----------------------------------
const stateDir = mkdtempSync(join(tmpdir(), 'devtunnel-soak-'));
let client;
let tunnelPort;
async function startClient() {
  client = spawn(process.execPath, [clientBin, '--server', `http://127.0.0.1:${chaos.port}`, '--port', String(app.address().port), '--host', '127.0.0.1', '--state-dir', stateDir, '--json'], { env: { ...process.env, DEVTUNNEL_TOKEN: TOKEN }, stdio: ['ignore', 'pipe', 'inherit'] });
  const registered = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the client did not register within 15 s')), 15_000);
    createInterface({ input: client.stdout }).on('line', (l) => {
      if (!l.includes('"registered"')) return;
      clearTimeout(timer);
      resolve(JSON.parse(l));
    });
  });
  if (tunnelPort !== undefined && registered.port !== tunnelPort) throw new Error(`the restarted client got port ${registered.port}, not ${tunnelPort}`);
  tunnelPort = registered.port;
}
await startClient();

// ---- the load --------------------------------------------------------------------------------
const browser = new Agent({ connections: 64, keepAliveTimeout: 4_000, headersTimeout: DEADLINE, bodyTimeout: DEADLINE });
const outcomes = { ok: 0, tunnelError: 0, cut: 0, corrupt: 0, hung: 0 };
const codes = {};
const failures = [];
const pending = new Set();

function record(kind, detail) {
  outcomes[kind]++;
  if (kind === 'corrupt' || kind === 'hung') failures.push(detail);
}

/** Runs one operation under its deadline and files its outcome. */
function operate(name, fn) {
  const signal = AbortSignal.timeout(DEADLINE);
  const p = fn(signal).then(
    (result) => record(result === true ? 'ok' : 'corrupt', `${name}: wrong body`),
    (error) => {
      if (signal.aborted) return record('hung', `${name}: no end within ${DEADLINE} ms`);
      if (error?.tunnelCode) {
        codes[error.tunnelCode] = (codes[error.tunnelCode] ?? 0) + 1;
        return record('tunnelError');
      }
      record('cut');
    },
  );
  pending.add(p);
  p.finally(() => pending.delete(p));
}

async function answer(res) {
  const code = res.headers['x-devtunnel-error'];
  if (code) {
    await res.body.dump();
    throw Object.assign(new Error(code), { tunnelCode: code });
  }
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
}

const base = () => `http://127.0.0.1:${tunnelPort}`;
const ops = {
  async small(signal) {
    const seed = randomBytes(2).readUInt16BE();
    const res = await request(`${base()}/small?n=1024&seed=${seed}`, { dispatcher: browser, signal });
    await answer(res);
    return sha(Buffer.from(await res.body.arrayBuffer())) === sha(pattern(seed, 1024));
  },
  async upload(signal) {
    const body = randomBytes(32 * 1024);
    const res = await request(`${base()}/upload`, { method: 'POST', body, dispatcher: browser, signal });
    await answer(res);
    return (await res.body.text()) === sha(body);
  },
  async slowDownload(signal) {
    const seed = randomBytes(2).readUInt16BE();
    const n = 2 * 1024 * 1024;
    const res = await request(`${base()}/stream?n=${n}&seed=${seed}`, { dispatcher: browser, signal });
    await answer(res);
    const hash = createHash('sha256');
    let got = 0;
    const t0 = performance.now();
    for await (const chunk of res.body) {
      hash.update(chunk);
      got += chunk.length;
      // Read at about 4 MB/s: the tunnel must hold back, not buffer.
      const wait = t0 + (got / (4 * 1024 * 1024)) * 1000 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    return got === n && hash.digest('hex') === sha(pattern(seed, n));
  },
  async websocket(signal) {
    const ws = new WebSocket(`ws://127.0.0.1:${tunnelPort}/ws`);
    signal.addEventListener('abort', () => ws.terminate(), { once: true });
    try {
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
        ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error('refused'), { tunnelCode: res.headers['x-devtunnel-error'] ?? `status ${res.statusCode}` })));
      });
      for (let i = 0; i < 3; i++) {
        const payload = randomBytes(1024);
        const echo = await new Promise((resolve, reject) => {
          ws.once('message', resolve);
          ws.once('close', () => reject(new Error('closed')));
          ws.send(payload);
        });
        if (!Buffer.from(echo).equals(payload)) return false;
      }
      return true;
    } finally {
      ws.terminate();
    }
  },
};
const mix = [...Array(12).fill('small'), ...Array(4).fill('upload'), 'slowDownload', ...Array(3).fill('websocket')];

// ---- the timeline ----------------------------------------------------------------------------
const timeline = [
  [at(0.25), 'latency', () => chaos.mode('latency')],
  [at(0.33), 'kill the client', () => client.kill('SIGKILL')],
  [at(0.36), 'restart the client', () => startClient()],
  [at(0.45), 'slice into tiny writes', () => chaos.mode('slice')],
  [at(0.55), 'pass', () => chaos.mode('pass')],
  [at(0.6), 'reset every connection', () => chaos.mode('reset')],
  [at(0.7), 'black hole', () => chaos.mode('blackhole')],
  [at(0.75), 'pass', () => chaos.mode('pass')],
];
const log = (m) => console.error(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${m}`);

const t0 = performance.now();
let warmHeap;
const ticker = setInterval(() => {
  const op = mix[Math.floor(Math.random() * mix.length)];
  operate(op, ops[op]);
}, 1000 / RATE);
for (const [when, what, action] of timeline) {
  await new Promise((r) => setTimeout(r, Math.max(0, t0 + when - performance.now())));
  if (warmHeap === undefined) {
    global.gc();
    warmHeap = process.memoryUsage().heapUsed;
  }
  log(what);
  await action();
}
await new Promise((r) => setTimeout(r, Math.max(0, t0 + TOTAL - performance.now())));
clearInterval(ticker);
log(`load stopped; waiting for ${pending.size} operations to end`);
await Promise.all([...pending]);

// ---- the invariants --------------------------------------------------------------------------
const problems = [...failures];
const quiet = () => server.tunnels().every((t) => t.queued === 0 && t.inFlight === 0 && t.upgraded === 0);
for (let i = 0; i < 150 && !quiet(); i++) await new Promise((r) => setTimeout(r, 100));
const left = server.tunnels().map((t) => ({ port: t.port, queued: t.queued, inFlight: t.inFlight, upgraded: t.upgraded }));
if (!quiet()) problems.push(`state left behind: ${JSON.stringify(left)}`);
await browser.close();
global.gc();
await new Promise((r) => setTimeout(r, 200));
global.gc();
const heapGrowth = (process.memoryUsage().heapUsed - warmHeap) / 1024 / 1024;
if (heapGrowth > 32) problems.push(`heap after GC grew ${heapGrowth.toFixed(1)} MiB over warm-up`);
const total = Object.values(outcomes).reduce((a, b) => a + b, 0);
if (outcomes.ok < total * 0.6) problems.push(`only ${outcomes.ok} of ${total} operations succeeded`);

const summary = { passed: problems.length === 0, seconds: TOTAL / 1000, rate: RATE, operations: total, outcomes, tunnelErrors: codes, heapGrowthMiB: Number(heapGrowth.toFixed(1)), chaos: chaos.stats, problems };
console.log(JSON.stringify(summary, null, 2));
mkdirSync(join(root, '.artifacts', 'ci'), { recursive: true });
writeFileSync(join(root, '.artifacts', 'ci', 'soak.json'), JSON.stringify(summary, null, 2));

client.kill('SIGTERM');
await once(client, 'exit');
await chaos.close();
await server.close();
app.closeAllConnections();
app.close();
rmSync(stateDir, { recursive: true, force: true });
process.exit(summary.passed ? 0 : 1);
