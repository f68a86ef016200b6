// `npm run soak`: about a minute of mixed traffic at a fixed rate well under capacity, through a
// fault-injecting proxy between the tunnel client and the server, with the client killed and
// restarted midway; then most of a minute more against three server replicas sharing a Redis
// behind a round-robin balancer (a Kubernetes Service), with the replica holding the tunnel
// killed (SIGKILL) midway and started again. Both runs pass on invariants only, never on speed:
//   - every answered body is byte-for-byte right (hashes), never a truncated body that looks whole;
//   - every operation ends (answer, tunnel error, or cut connection) before its deadline;
//   - afterwards the server's queues, in-flight maps and upgraded connections are empty (on every
//     replica);
//   - the heap after GC is within a bound of its warm-up value (of every replica).
// In the first run the tunnel server, the local app and the load run in this process (so their
// state can be inspected); the tunnel client is the real CLI in a child process, behind the chaos
// proxy. In the second each replica is a child process of its own (this file in `replica` mode,
// answering questions about its state over IPC), and the client is the real CLI again. Without
// redis-server the second run is skipped with a message, not failed (.ci/run installs it).
// Run with --expose-gc (npm run soak does). SOAK_SECONDS scales the first timeline (default 60),
// SOAK_REPLICA_SECONDS the second (45).
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import WebSocket, { WebSocketServer } from 'ws';
import { createTunnelServer } from '@devtunnel/server';
import { createChaosProxy } from './chaos-proxy.mjs';
import { createBalancer, probe, sleep } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const require = createRequire(import.meta.url);
const clientBin = join(dirname(require.resolve('@devtunnel/core/package.json')), 'dist', 'cli.js');
const TOTAL = Number(process.env.SOAK_SECONDS ?? 60) * 1000;
const REPLICA_TOTAL = Number(process.env.SOAK_REPLICA_SECONDS ?? 45) * 1000;
const RATE = Number(process.env.SOAK_RATE ?? 40); // operations per second
const DEADLINE = 20_000; // every operation must end within this
const TOKEN = 'soak-token-0123456789abcdef';
const REDIS_BIN = process.env.REDIS_SERVER ?? 'redis-server';
const HEAP_BOUND_MIB = 32;
const sha = (b) => createHash('sha256').update(b).digest('hex');
if (typeof global.gc !== 'function') throw new Error('run with node --expose-gc (npm run soak does)');

/** Scaled-down timings keep every wait inside the run; the same for the one server and the replicas. */
const TIMINGS = {
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
};

/** Deterministic bytes: both ends can hash them without storing them. */
function pattern(seed, length) {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = (seed * 131 + i * 31) % 251;
  return b;
}

// ---- one replica of the second run, in a child process of its own -----------------------------
async function replica({ host, control, tunnelPorts, store }) {
  const server = createTunnelServer({ host, port: control, token: TOKEN, tunnelPorts, store, advertiseUrl: `http://${host}:${control}`, ...TIMINGS });
  await server.listen();
  // What the soak checks, asked over IPC: every tunnel's queues and maps, the heap after GC.
  process.on('message', () => {
    global.gc();
    const tunnels = server.tunnels().map((t) => ({ port: t.port, state: t.state, queued: t.queued, inFlight: t.inFlight, upgraded: t.upgraded }));
    process.send({ tunnels, heapUsed: process.memoryUsage().heapUsed, sockets: process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length });
  });
  process.on('disconnect', () => process.exit(0)); // the soak is gone, and so is its replica
  process.send({ listening: true });
}

async function main() {
  const app = await startApp();
  const single = await singleServerRun(app);
  const replicas = await replicaRun(app);
  app.closeAllConnections();
  app.close();
  // The summary keeps the first run's fields at the top (.ci/summarize.mjs reads `passed` and
  // `problems`); the second run's are under `replicas`, its problems prefixed.
  const problems = [...single.problems, ...(replicas.problems ?? []).map((p) => `replicas: ${p}`)];
  const summary = { ...single, passed: problems.length === 0, problems, replicas };
  console.log(JSON.stringify(summary, null, 2));
  mkdirSync(join(root, '.artifacts', 'ci'), { recursive: true });
  writeFileSync(join(root, '.artifacts', 'ci', 'soak.json'), JSON.stringify(summary, null, 2));
  process.exit(summary.passed ? 0 : 1);
}

// ---- the local app ---------------------------------------------------------------------------
async function startApp() {
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
  return app;
}

/** The real CLI client; resolves with it and its first registration, and keeps every later one. */
async function startClient(server, appPort, stateDir) {
  const child = spawn(process.execPath, [clientBin, '--server', server, '--port', String(appPort), '--host', '127.0.0.1', '--state-dir', stateDir, '--json'], { env: { ...process.env, DEVTUNNEL_TOKEN: TOKEN }, stdio: ['ignore', 'pipe', 'inherit'] });
  const registrations = [];
  const registered = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the client did not register within 15 s')), 15_000);
    createInterface({ input: child.stdout }).on('line', (l) => {
      if (!l.includes('"registered"')) return;
      registrations.push({ at: performance.now(), ...JSON.parse(l) });
      clearTimeout(timer);
      resolve(registrations[0]);
    });
  });
  return { child, registered, registrations };
}

// ---- the load --------------------------------------------------------------------------------
/** Mixed operations at RATE a second against `target()` (host and port), each under its deadline. */
function createLoad(target) {
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

  const base = () => `http://${target().host}:${target().port}`;
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
      const ws = new WebSocket(`${base().replace('http', 'ws')}/ws`);
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
  let ticker;
  return {
    outcomes,
    codes,
    failures,
    start() {
      ticker = setInterval(() => {
        const op = mix[Math.floor(Math.random() * mix.length)];
        operate(op, ops[op]);
      }, 1000 / RATE);
    },
    /** Stops the load and waits for every operation to end. */
    async stop(log) {
      clearInterval(ticker);
      log(`load stopped; waiting for ${pending.size} operations to end`);
      await Promise.all([...pending]);
    },
    total: () => Object.values(outcomes).reduce((a, b) => a + b, 0),
    close: () => browser.close(),
  };
}

/**
 * Runs the load for `total` ms with the `timeline`'s actions on the way ([when, what, action]);
 * `warm()` runs once at the first action, after the warm-up.
 */
async function runTimeline(total, timeline, load, warm) {
  const t0 = performance.now();
  const log = (m) => console.error(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${m}`);
  load.start();
  let warmed = false;
  for (const [when, what, action] of timeline) {
    await sleep(Math.max(0, t0 + when - performance.now()));
    if (!warmed) {
      warmed = true;
      await warm();
    }
    log(what);
    await action();
  }
  await sleep(Math.max(0, t0 + total - performance.now()));
  await load.stop(log);
  return log;
}

// ---- the first run: one server, the client behind the chaos proxy ----------------------------
async function singleServerRun(app) {
  console.error('soak: one server, the client behind a fault-injecting proxy');
  const at = (fraction) => Math.round(TOTAL * fraction);
  const server = createTunnelServer({ host: '127.0.0.1', port: 0, token: TOKEN, tunnelPorts: process.env.SOAK_TUNNEL_PORTS ?? '39500-39509', ...TIMINGS });
  const { port: controlPort } = await server.listen();
  const chaos = await createChaosProxy(controlPort);
  const stateDir = mkdtempSync(join(tmpdir(), 'devtunnel-soak-'));
  let client;
  let tunnelPort;
  const startIt = async () => {
    client = await startClient(`http://127.0.0.1:${chaos.port}`, app.address().port, stateDir);
    if (tunnelPort !== undefined && client.registered.port !== tunnelPort) throw new Error(`the restarted client got port ${client.registered.port}, not ${tunnelPort}`);
    tunnelPort = client.registered.port;
  };
  await startIt();
  const load = createLoad(() => ({ host: '127.0.0.1', port: tunnelPort }));

  const timeline = [
    [at(0.25), 'latency', () => chaos.mode('latency')],
    [at(0.33), 'kill the client', () => client.child.kill('SIGKILL')],
    [at(0.36), 'restart the client', () => startIt()],
    [at(0.45), 'slice into tiny writes', () => chaos.mode('slice')],
    [at(0.55), 'pass', () => chaos.mode('pass')],
    [at(0.6), 'reset every connection', () => chaos.mode('reset')],
    [at(0.7), 'black hole', () => chaos.mode('blackhole')],
    [at(0.75), 'pass', () => chaos.mode('pass')],
  ];
  let warmHeap;
  await runTimeline(TOTAL, timeline, load, () => {
    global.gc();
    warmHeap = process.memoryUsage().heapUsed;
  });

  // ---- the invariants ----
  const problems = [...load.failures];
  const quiet = () => server.tunnels().every((t) => t.queued === 0 && t.inFlight === 0 && t.upgraded === 0);
  for (let i = 0; i < 150 && !quiet(); i++) await sleep(100);
  const left = server.tunnels().map((t) => ({ port: t.port, queued: t.queued, inFlight: t.inFlight, upgraded: t.upgraded }));
  if (!quiet()) problems.push(`state left behind: ${JSON.stringify(left)}`);
  await load.close();
  global.gc();
  await sleep(200);
  global.gc();
  const heapGrowth = (process.memoryUsage().heapUsed - warmHeap) / 1024 / 1024;
  if (heapGrowth > HEAP_BOUND_MIB) problems.push(`heap after GC grew ${heapGrowth.toFixed(1)} MiB over warm-up`);
  const total = load.total();
  if (load.outcomes.ok < total * 0.6) problems.push(`only ${load.outcomes.ok} of ${total} operations succeeded`);
  const summary = { passed: problems.length === 0, seconds: TOTAL / 1000, rate: RATE, operations: total, outcomes: load.outcomes, tunnelErrors: load.codes, heapGrowthMiB: Number(heapGrowth.toFixed(1)), chaos: chaos.stats, problems };

  client.child.kill('SIGTERM');
  await once(client.child, 'exit');
  await chaos.close();
  await server.close();
  rmSync(stateDir, { recursive: true, force: true });
  return summary;
}

// ---- the second run: three replicas sharing Redis, the holder killed -------------------------
const HOSTS = ['127.0.0.1', '127.0.0.2', '127.0.0.3'];
const FRONT = '127.0.0.10';

function bindable(port, host) {
  return new Promise((resolve) => {
    const probe = createNetServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, host, () => probe.close(() => resolve(true)));
  });
}

/**
 * `size` adjacent ports free on every address, below Linux's ephemeral range (32768-60999) where
 * the run's own connections take theirs: a replica that cannot listen on the port the store gives
 * it retries that same port (docs/performance.md, "Replicas").
 */
async function freeRange(size, hosts) {
  for (let attempt = 0; attempt < 100; attempt++) {
    const from = 10_000 + Math.floor(Math.random() * 22_000);
    let ok = true;
    for (let p = from; p < from + size && ok; p++) ok = (await Promise.all(hosts.map((h) => bindable(p, h)))).every(Boolean);
    if (ok) return { from, to: from + size - 1 };
  }
  throw new Error(`no ${size} adjacent free ports found`);
}

/** A Redis of its own (no persistence), on a free port with a temporary directory. */
async function startRedis() {
  const { from: port } = await freeRange(1, ['127.0.0.1']);
  const dir = mkdtempSync(join(tmpdir(), 'devtunnel-soak-redis-'));
  const child = spawn(REDIS_BIN, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], { stdio: 'ignore' });
  child.once('error', () => {});
  for (let i = 0; redisCli(port, 'PING') !== 'PONG'; i++) {
    if (i > 200) throw new Error('redis-server did not answer within 10 s');
    await sleep(50);
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      child.kill('SIGTERM');
      if (child.exitCode === null) await once(child, 'exit');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function redisCli(port, ...args) {
  return (spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }).stdout ?? '').trim();
}



async function replicaRun(app) {
  const missing = [REDIS_BIN, 'redis-cli'].filter((b) => spawnSync(b, ['--version']).status !== 0);
  if (missing.length) {
    const skipped = `${missing.join(' and ')} not found (Debian: apt-get install redis-server; .ci/run installs it)`;
    console.error(`soak: the run against three replicas is SKIPPED: ${skipped}`);
    return { skipped, problems: [] };
  }
  console.error('soak: three replicas sharing Redis behind a balancer, the holder of the tunnel killed');
  const at = (fraction) => Math.round(REPLICA_TOTAL * fraction);
  const problems = [];
  const redis = await startRedis();
  const { from: control } = await freeRange(1, [...HOSTS, FRONT]);
  const range = process.env.SOAK_REPLICA_TUNNEL_PORTS ? process.env.SOAK_REPLICA_TUNNEL_PORTS.split('-').map(Number) : Object.values(await freeRange(10, [...HOSTS, FRONT]));
  const tunnelPorts = `${range[0]}-${range[1]}`;
  /** host → { child, ask() }: the replica's state after GC, over IPC. */
  const replicas = new Map();

  async function startReplica(host) {
    const child = spawn(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), 'replica', JSON.stringify({ host, control, tunnelPorts, store: redis.url })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const [first] = await Promise.race([once(child, 'message'), once(child, 'exit')]);
    clearTimeout(timer);
    if (first?.listening !== true) throw new Error(`replica ${host} exited before it listened`);
    const r = {
      host,
      child,
      ask: async () => {
        child.send('state');
        return (await once(child, 'message'))[0];
      },
    };
    replicas.set(host, r);
    return r;
  }

  await Promise.all(HOSTS.map(startReplica));
  const front = createBalancer(FRONT, HOSTS);
  await front.expose(control);
  for (let p = range[0]; p <= range[1]; p++) await front.expose(p);
  const stateDir = mkdtempSync(join(tmpdir(), 'devtunnel-soak-'));
  const client = await startClient(`http://${FRONT}:${control}`, app.address().port, stateDir);
  const tunnelPort = client.registered.port;
  const load = createLoad(() => ({ host: FRONT, port: tunnelPort }));

  const warmHeap = new Map();
  const heapOf = async (r) => (await r.ask()).heapUsed;
  let victim;
  let killedAt;
  const timeline = [
    [
      at(0.35),
      'kill the replica holding the tunnel (SIGKILL)',
      async () => {
        // Who holds it, from the store: the owner record's control URL.
        const owner = redisCli(redis.port, 'HGETALL', 'dt:owners').split('\n').find((l) => l.startsWith('{'));
        victim = owner && replicas.get(new URL(JSON.parse(owner).url).hostname);
        if (!victim) throw new Error(`no holder of the tunnel in the store: ${owner}`);
        killedAt = performance.now();
        victim.child.kill('SIGKILL');
        await once(victim.child, 'exit');
        replicas.delete(victim.host);
        warmHeap.delete(victim.host);
      },
    ],
    // A Service's endpoints follow a dead pod a moment later: until then connections sent to it are refused.
    [at(0.35) + 1_000, 'the balancer drops it', () => front.remove(victim.host)],
    [
      at(0.6),
      'start it again (a new pod, same address)',
      async () => {
        const again = await startReplica(victim.host);
        warmHeap.set(again.host, await heapOf(again));
        front.add(again.host);
      },
    ],
  ];
  await runTimeline(REPLICA_TOTAL, timeline, load, async () => {
    for (const r of replicas.values()) warmHeap.set(r.host, await heapOf(r));
  });

  // ---- the invariants, on every replica ----
  problems.push(...load.failures);
  const states = async () => new Map(await Promise.all([...replicas.values()].map(async (r) => [r.host, await r.ask()])));
  const busy = (s) => [...s].flatMap(([host, st]) => st.tunnels.filter((t) => t.queued || t.inFlight || t.upgraded).map((t) => ({ host, ...t })));
  let last = await states();
  for (let i = 0; i < 150 && busy(last).length; i++) {
    await sleep(100);
    last = await states();
  }
  if (busy(last).length) problems.push(`state left behind: ${JSON.stringify(busy(last))}`);
  const heapGrowthMiB = {};
  for (const [host, st] of last) {
    heapGrowthMiB[host] = Number(((st.heapUsed - warmHeap.get(host)) / 1024 / 1024).toFixed(1));
    if (heapGrowthMiB[host] > HEAP_BOUND_MIB) problems.push(`heap of the replica on ${host} after GC grew ${heapGrowthMiB[host]} MiB over warm-up`);
  }
  // The tunnel moved, kept its port, and every replica serves it again.
  const again = client.registrations.find((r) => r.at > killedAt);
  if (!again) problems.push('the client never registered again after its replica was killed');
  for (const r of client.registrations) if (r.port !== tunnelPort) problems.push(`the client registered again on port ${r.port}, not ${tunnelPort}`);
  for (const host of replicas.keys()) {
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) if ((status = await probe(host, tunnelPort, '/small?n=16')) !== 200) await sleep(200);
    if (status !== 200) problems.push(`the replica on ${host} does not serve the tunnel at the end (${status})`);
  }
  const total = load.total();
  if (load.outcomes.ok < total * 0.6) problems.push(`only ${load.outcomes.ok} of ${total} operations succeeded`);
  const summary = {
    passed: problems.length === 0,
    seconds: REPLICA_TOTAL / 1000,
    rate: RATE,
    operations: total,
    outcomes: load.outcomes,
    tunnelErrors: load.codes,
    killed: victim?.host,
    registeredAgainAfterMs: again ? Math.round(again.at - killedAt) : undefined,
    heapGrowthMiB,
    sockets: Object.fromEntries([...last].map(([host, st]) => [host, st.sockets])),
    problems,
  };

  await load.close();
  client.child.kill('SIGTERM');
  await once(client.child, 'exit');
  for (const r of replicas.values()) {
    r.child.kill('SIGTERM');
    await once(r.child, 'exit');
  }
  await front.close();
  await redis.stop();
  rmSync(stateDir, { recursive: true, force: true });
  return summary;
}

// Last: everything above is defined by now.
if (process.argv[2] === 'replica') await replica(JSON.parse(process.argv[3]));
else await main();
