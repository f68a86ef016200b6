// `npm run bench:replicas`: three tunnel-server replicas (the real CLI, `--store`) sharing one
// Redis (Debian's redis-server, on a free port with a temporary directory), on this machine, each
// on its own loopback address (127.0.0.1-3) as pods have their own IPs, so that all listen on the
// same ports. In one run, interleaved and repeated, medians; it prints a table with each figure's
// target and PASS/MISS, and writes .artifacts/bench/replicas.{md,json}. Sections (each on a fresh
// Redis and fresh replicas):
//   hop       a request through a replica that does not hold the tunnel (one internal hop to the
//             holder) against one through the holder: autocannon (bench/load.mjs) on the bench's
//             local app (bench/app.mjs), alternating, ROUNDS rounds each, with the CPU each replica
//             spends per request (from /proc); once more "as deployed", the hopping replica alone
//             on a CPU of its own (taskset), as it would be on a machine of its own.
//   failover  a replica holding tunnels is killed (SIGKILL): for each of its tunnels, the time
//             until every remaining replica serves it again; median over FAILOVERS tunnels or more.
//             FAILOVER_CLIENTS clients (createTunnelClient, its defaults and backoff) registered
//             through a round-robin balancer in front of the control ports (a Kubernetes
//             Service), each session older than a minute when its replica dies.
//   idle      IDLE tunnels registered by hand over the control API, spread over the replicas, each
//             kept alive by one long poll (a light client: `node bench/replicas.mjs fleet`): each
//             replica's CPU and RSS, and Redis commands per tunnel per minute, over a measured minute.
// Environment: BENCH_SECONDS (per load run, 5), BENCH_ROUNDS (3), BENCH_FAILOVERS (10),
// BENCH_FAILOVER_CLIENTS (15), BENCH_IDLE_TUNNELS (5000), BENCH_SKIP (comma list of
// hop,failover,idle), REDIS_SERVER (another binary, e.g. valkey-server; redis-cli must answer it).
// Linux only (reads /proc).
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer as createNetServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { cpuSeconds, createBalancer, createChildren, firstLine, log, median, pin, probe, rss, runSections, sleep } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const FAILOVERS = Number(process.env.BENCH_FAILOVERS ?? 10);
const FAILOVER_CLIENTS = Number(process.env.BENCH_FAILOVER_CLIENTS ?? 15);
const IDLE = Number(process.env.BENCH_IDLE_TUNNELS ?? 5000);
const SKIP = new Set((process.env.BENCH_SKIP ?? '').split(',').filter(Boolean));
const REDIS_BIN = process.env.REDIS_SERVER ?? 'redis-server';
const TOKEN = 'bench-token-0123456789abcdef';
const HOSTS = ['127.0.0.1', '127.0.0.2', '127.0.0.3'];
const FRONT = '127.0.0.10';
// Tunnel ranges (size, lowest, highest) below Linux's ephemeral range (32768-60999), where the
// run's own connections take theirs; each is the first window whose every port is free on all
// three addresses. A replica that cannot listen on a port the store assigns it retries that same
// port (see docs/performance.md, "Replicas"), so a port held by another program must stay out.
const HOP_PORTS = [20, 13_800, 13_999];
const IDLE_PORTS = [IDLE + 100, 14_000, 32_000];
const { start, adopt, stop: stopAll } = createChildren('SIGKILL');
const results = { machine: {}, rows: [] };

function bin(pkg) {
  return join(root, 'packages', pkg === '@devtunnel/server' ? 'server' : 'core', 'dist', 'cli.js');
}



const cleanups = [];
process.on('exit', () => {
  stopAll();
  for (const fn of cleanups) fn();
});



function row(section, what, value, target, met) {
  results.rows.push({ section, what, value, target, verdict: met === undefined ? '' : met ? 'PASS' : 'MISS' });
}

// ---- Redis, replicas, a balancer --------------------------------------------------------------

function bindable(port, host) {
  return new Promise((resolve) => {
    const probe = createNetServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, host, () => probe.close(() => resolve(true)));
  });
}

/**
 * `size` adjacent ports free on every address given, from `from` up (below the ephemeral range):
 * a port another process holds cannot be listened on by the replica of that address.
 */
async function freeRange(size, hosts, from, to) {
  let start = from;
  for (let port = from; port <= to; port++) {
    if (!(await Promise.all(hosts.map((h) => bindable(port, h)))).every(Boolean)) start = port + 1;
    else if (port - start + 1 === size) return `${start}-${port}`;
  }
  throw new Error(`no ${size} adjacent free ports between ${from} and ${to}`);
}

/**
 * A port free on every address given, below the ephemeral range (a control port must come back
 * after a kill) and below the tunnel ranges (a control port may not lie inside its range).
 */
async function freePort(hosts) {
  for (let i = 0; i < 200; i++) {
    const port = 12_000 + Math.floor(Math.random() * 1_000);
    if ((await Promise.all(hosts.map((h) => bindable(port, h)))).every(Boolean)) return port;
  }
  throw new Error('no free port found');
}

function redisCli(port, ...args) {
  const r = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`redis-cli ${args.join(' ')}: ${r.stderr || r.error?.message}`);
  return r.stdout;
}

function redisInfo(port, section) {
  const out = {};
  for (const line of redisCli(port, 'INFO', section).split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

async function startRedis() {
  if (spawnSync(REDIS_BIN, ['--version']).status !== 0 || spawnSync('redis-cli', ['--version']).status !== 0) {
    throw new Error(`${REDIS_BIN} and redis-cli are needed (Debian: apt-get install redis-server)`);
  }
  const port = await freePort(['127.0.0.1']);
  const dir = mkdtempSync(join(tmpdir(), 'devtunnel-bench-redis-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const child = spawn(REDIS_BIN, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], { stdio: 'ignore' });
  adopt(child);
  for (let i = 0; ; i++) {
    try {
      if (redisCli(port, 'PING').trim() === 'PONG') break;
    } catch {
      if (i > 100) throw new Error('redis-server did not start');
    }
    await sleep(50);
  }
  return { port, url: `redis://127.0.0.1:${port}`, pid: child.pid, close: () => child.kill('SIGTERM') };
}

/** Three replicas (the real CLI) on a clean Redis, default timings. */
async function startCluster(redis, [size, from, to]) {
  redisCli(redis.port, 'FLUSHALL');
  const range = await freeRange(size, HOSTS, from, to);
  const control = await freePort([...HOSTS, FRONT]);
  const cluster = { control, range, replicas: new Map() };
  cluster.startReplica = async (host) => {
    const child = start([bin('@devtunnel/server'), '--host', host, '--port', String(control), '--tunnel-ports', range, '--store', redis.url, '--advertise-url', `http://${host}:${control}`, '--token', TOKEN]);
    await Promise.race([
      firstLine(child.stdout, (l) => l.includes('"server.listening"'), 30_000, `replica ${host}`),
      once(child, 'exit').then(([code]) => Promise.reject(new Error(`replica ${host} exited (${code}) before it listened`))),
    ]);
    child.stdout.resume();
    cluster.replicas.set(host, child);
    return child;
  };
  cluster.stop = async () => {
    for (const child of cluster.replicas.values()) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  };
  await Promise.all(HOSTS.map(cluster.startReplica));
  return cluster;
}

/** Which replica (its host) holds the tunnel named `name`, from the store. */
function holderHost(redis, name) {
  const lines = redisCli(redis.port, 'HGETALL', 'dt:owners').split('\n');
  for (const line of lines) {
    if (!line.startsWith('{')) continue;
    const owner = JSON.parse(line);
    if (owner.name === name) return new URL(owner.url).hostname;
  }
  return undefined;
}



async function until(check, timeoutMs, what) {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function load(url, connections, seconds = SECONDS) {
  const child = start([join(here, 'load.mjs'), `${url}/`, String(connections), String(seconds)]);
  const line = await firstLine(child.stdout, () => true, (seconds + 30) * 1000, 'the load generator');
  await once(child, 'exit');
  const r = JSON.parse(line);
  if (r.errors || r.non2xx) throw new Error(`${url} at ${connections} connections: ${r.errors} errors, ${r.non2xx} non-2xx`);
  return r;
}

// ---- (a) one internal hop --------------------------------------------------------------------


async function hop(redis, app) {
  const cluster = await startCluster(redis, HOP_PORTS);
  // The client talks to replica 1 directly, so that it holds the tunnel and the client's own
  // streams take no hop: the two paths differ by the browser's hop only.
  const stateDir = mkdtempSync(join(tmpdir(), 'devtunnel-bench-replicas-'));
  const client = start([bin('@devtunnel/core'), '--server', `http://${HOSTS[0]}:${cluster.control}`, '--port', String(app.port), '--host', '127.0.0.1', '--state-dir', stateDir, '--name', 'bench-hop', '--json'], { env: { ...process.env, DEVTUNNEL_TOKEN: TOKEN } });
  const { port } = JSON.parse(await firstLine(client.stdout, (l) => l.includes('"registered"'), 30_000, 'the client'));
  client.stdout.resume();
  const holder = holderHost(redis, 'bench-hop');
  if (holder !== HOSTS[0]) throw new Error(`the tunnel is held by ${holder}, not ${HOSTS[0]}`);
  const targets = { holder: `http://${HOSTS[0]}:${port}`, other: `http://${HOSTS[1]}:${port}` };
  const pids = { holder: cluster.replicas.get(HOSTS[0]).pid, other: cluster.replicas.get(HOSTS[1]).pid };
  await until(async () => (await probe(HOSTS[1], port)) === 200, 10_000, 'replica 2 serving the tunnel');
  await sleep(1_000); // the client's streams settle

  /** One load run, with the CPU each of the two replicas spent per request (µs, from /proc). */
  async function measured(url, connections) {
    const before = Object.values(pids).map(cpuSeconds);
    const r = await load(url, connections);
    const [holderUs, otherUs] = Object.values(pids).map((pid, i) => ((cpuSeconds(pid) - before[i]) * 1e6) / r.total);
    return { ...r, holderUs, otherUs };
  }

  async function compare(connections, label, deployed) {
    const runs = { holder: [], other: [] };
    for (const url of Object.values(targets)) await load(url, connections, 1); // warm-up
    for (let i = 0; i < ROUNDS; i++) {
      // Alternating which goes first: a machine that slows down in a round hurts both alike.
      const order = i % 2 ? ['other', 'holder'] : ['holder', 'other'];
      for (const name of order) runs[name].push(await measured(targets[name], connections));
    }
    const m = (name, k) => median(runs[name].map((r) => r[k]));
    const ratio = m('other', 'rps') / m('holder', 'rps');
    log(`hop c=${connections}${deployed ? ' (as deployed)' : ''}: holder ${m('holder', 'rps').toFixed(0)}, other replica ${m('other', 'rps').toFixed(0)} req/s (${ratio.toFixed(2)} ×); CPU per request: holder ${m('holder', 'holderUs').toFixed(0)} µs; through the other, holder ${m('other', 'holderUs').toFixed(0)} + hop ${m('other', 'otherUs').toFixed(0)} µs`);
    results.hop[label] = { connections, deployed, holderRps: m('holder', 'rps'), otherRps: m('other', 'rps'), ratio, runs };
    const what = `${connections} conn${deployed ? ', as deployed (the hopping replica on a CPU of its own)' : ', all on the shared CPUs'}`;
    if (connections === 1) {
      const rt = (name) => 1000 / m(name, 'rps');
      row('hop', `${what}: round trip ms (1 / req/s), holder → another replica`, `${rt('holder').toFixed(2)} → ${rt('other').toFixed(2)} (+${(rt('other') - rt('holder')).toFixed(2)})`, '');
      return;
    }
    row('hop', `${what}: req/s, holder / another replica`, `${m('holder', 'rps').toFixed(0)} / ${m('other', 'rps').toFixed(0)}`, '');
    row('hop', `${what}: another replica ÷ the holder`, ratio.toFixed(2), '≥ 0.8', ratio >= 0.8);
    if (!deployed) {
      row('hop', `${what}: p50 / p99 ms, holder → another replica`, `${m('holder', 'p50')} / ${m('holder', 'p99')} → ${m('other', 'p50')} / ${m('other', 'p99')}`, '');
      row('hop', `${what}: CPU µs per request, the holder's / the hopping replica's (the holder's when hopped to)`, `${m('holder', 'holderUs').toFixed(0)} / ${m('other', 'otherUs').toFixed(0)} (${m('other', 'holderUs').toFixed(0)})`, '');
    }
  }

  results.hop = {};
  await compare(16, 'c16', false);
  await compare(1, 'c1', false);
  // As deployed the replicas run on machines of their own: the hop's CPU is not taken from the
  // holder's path. Emulated: the hopping replica alone on one CPU, everything else (the holder,
  // the client, the app, the load generator, this script) on the other, for both paths.
  const all = `0-${cpus().length - 1}`;
  const rest = [pids.holder, client.pid, app.pid, process.pid, cluster.replicas.get(HOSTS[2]).pid, redis.pid];
  if (cpus().length < 2) log('hop as deployed: skipped, it needs 2 CPUs');
  else if (![pin(pids.other, '1'), ...rest.map((p) => pin(p, '0'))].every(Boolean)) log('hop as deployed: skipped, taskset (util-linux) could not pin the processes');
  else {
    // The load generator is a new process per run: started from this script, it inherits CPU 0.
    try {
      await compare(16, 'c16deployed', true);
    } finally {
      for (const p of [pids.other, ...rest]) pin(p, all);
    }
  }
  client.kill('SIGTERM');
  await once(client, 'exit');
  await cluster.stop();
  rmSync(stateDir, { recursive: true, force: true });
}

// ---- (c) failover ----------------------------------------------------------------------------

/**
 * The client paces registrations that keep getting lost: one lost within a minute of being made
 * (STABLE_SESSION_MS in packages/core/src/client/connect.ts) makes the next wait 0.25-0.5 s, then
 * 0.5-1 s, and so on. A developer's tunnel has usually been up longer than that; so is every
 * tunnel here before its replica is killed.
 */
const STABLE_MS = 62_000;

async function failover(redis, appPort) {
  const cluster = await startCluster(redis, HOP_PORTS);
  const front = createBalancer(FRONT, HOSTS);
  await front.expose(cluster.control);
  const { createTunnelClient } = await import('@devtunnel/core');
  // Several developers, each with the client's defaults (backoff included), registered through
  // the balancer: each kill moves every tunnel its replica held, and each is one measurement.
  const clients = [];
  let t0 = 0;
  for (let i = 0; i < FAILOVER_CLIENTS; i++) {
    const name = `failover-${i}`;
    const client = createTunnelClient({ server: `http://${FRONT}:${cluster.control}`, token: TOKEN, port: appPort, host: '127.0.0.1', name, stateDir: false, proxy: false });
    const c = { name, client, registeredAt: 0, events: [] };
    client.on('reconnecting', (e) => c.events.push({ atMs: Math.round(performance.now() - t0), delayMs: Math.round(e.delayMs), error: e.error?.code ?? e.error?.message }));
    client.on('registered', () => (c.registeredAt = performance.now()));
    await client.start();
    c.port = client.info.port;
    clients.push(c);
  }
  const samples = [];
  try {
    for (let kill = 0; samples.length < FAILOVERS && kill < 20; kill++) {
      // Steady state: every replica serves every tunnel, and every session is older than the
      // client's churn window, as a developer's tunnel usually is.
      await until(async () => (await Promise.all(clients.flatMap((c) => HOSTS.map((h) => probe(h, c.port))))).every((s) => s === 200), 30_000, 'every replica serving every tunnel');
      await sleep(Math.max(0, Math.max(...clients.map((c) => c.registeredAt)) + STABLE_MS - performance.now()));
      const held = new Map(HOSTS.map((h) => [h, []]));
      for (const c of clients) held.get(holderHost(redis, c.name))?.push(c);
      const [victimHost, moved] = [...held].sort((a, b) => b[1].length - a[1].length)[0];
      const victim = cluster.replicas.get(victimHost);
      const alive = HOSTS.filter((h) => h !== victimHost);
      for (const c of moved) c.events = [];
      const exited = once(victim, 'exit');
      t0 = performance.now();
      victim.kill('SIGKILL');
      // The dead replica stays in the balancer, as in a Service whose endpoints have not caught
      // up yet: connections sent there are refused.
      const times = await Promise.all(
        moved.map(async (c) => {
          const served = await Promise.all(
            alive.map(async (h) => {
              for (;;) {
                if ((await probe(h, c.port, `/failover-${kill}`)) === 200) return performance.now() - t0;
                if (performance.now() - t0 > 60_000) throw new Error(`${h} did not serve ${c.name} within 60 s of the kill`);
                await sleep(20);
              }
            }),
          );
          return { ms: Math.max(...served), registeredMs: c.registeredAt > t0 ? c.registeredAt - t0 : NaN, reconnects: c.events };
        }),
      );
      samples.push(...times);
      log(`failover: ${victimHost} killed, holding ${moved.length} tunnels; every live replica serves each again after ${times.map((t) => (t.ms / 1000).toFixed(2)).join(', ')} s (the clients registered again after ${times.map((t) => (t.registeredMs / 1000).toFixed(2)).join(', ')} s; waits before: ${times.map((t) => t.reconnects.map((e) => e.delayMs).join('+') || '–').join(', ')} ms)`);
      await exited;
      // Back as a pod is restarted, on the same address.
      await cluster.startReplica(victimHost);
    }
  } finally {
    await Promise.all(clients.map((c) => c.client.close()));
    await front.close();
    await cluster.stop();
  }
  const ms = samples.map((t) => t.ms);
  const m = median(ms);
  results.failover = { clients: FAILOVER_CLIENTS, samples };
  row('failover', `holder killed (SIGKILL), until every live replica serves the tunnel: median of ${ms.length} tunnels, s (min-max)`, `${(m / 1000).toFixed(2)} (${(Math.min(...ms) / 1000).toFixed(2)}-${(Math.max(...ms) / 1000).toFixed(2)})`, '< 5', m < 5_000);
  row('failover', 'of which the client registering again: median s', (median(samples.map((t) => t.registeredMs)) / 1000).toFixed(2), '');
}

// ---- (b) idle tunnels ------------------------------------------------------------------------

async function idle(redis) {
  const cluster = await startCluster(redis, IDLE_PORTS);
  const pids = HOSTS.map((h) => cluster.replicas.get(h).pid);
  /** Calls per command so far (INFO commandstats): what the replicas ask Redis for. */
  const calls = () => Object.fromEntries(Object.entries(redisInfo(redis.port, 'commandstats')).map(([k, v]) => [k.replace('cmdstat_', ''), Number(/calls=(\d+)/.exec(v)?.[1] ?? 0)]));

  const fleet = spawn(process.execPath, [join(here, 'replicas.mjs'), 'fleet', JSON.stringify({ hosts: HOSTS, control: cluster.control, n: IDLE, token: TOKEN })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  adopt(fleet);
  const t0 = performance.now();
  const [ready] = await Promise.race([once(fleet, 'message'), once(fleet, 'exit').then(() => Promise.reject(new Error('the fleet exited')))]);
  log(`idle: ${ready.registered} tunnels registered over the control API in ${((performance.now() - t0) / 1000).toFixed(0)} s, each holding one long poll`);
  // Settle past one poll timeout (25 s): every poll renewed once, the registration burst over.
  await sleep(30_000);
  const listed = await Promise.all(
    HOSTS.map(async (h) => (await (await request(`http://${h}:${cluster.control}/api/v1/tunnels`, { headers: { authorization: `Bearer ${TOKEN}` } })).body.json()).tunnels),
  );
  const connected = listed.map((ts) => ts.filter((t) => t.state === 'connected').length);
  const polls = listed.map((ts) => ts.reduce((s, t) => s + t.pollsWaiting, 0));
  log(`idle: connected as each replica lists them: ${connected.join(', ')}; polls held: ${polls.join(', ')}`);
  const stats = async () => {
    fleet.send('stats');
    return (await once(fleet, 'message'))[0];
  };
  const statsBefore = await stats();
  const cpu0 = pids.map(cpuSeconds);
  const redisCpu0 = cpuSeconds(redis.pid);
  const stats0 = redisInfo(redis.port, 'stats');
  const calls0 = calls();
  const t1 = performance.now();
  await sleep(60_000);
  const minutes = (performance.now() - t1) / 60_000;
  const stats1 = redisInfo(redis.port, 'stats');
  const calls1 = calls();
  // INFO is this script's own.
  const byCommand = Object.fromEntries(Object.keys(calls1).filter((k) => k !== 'info').map((k) => [k, Math.round((calls1[k] - (calls0[k] ?? 0)) / minutes)]).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]));
  const cpu = pids.map((p, i) => ((cpuSeconds(p) - cpu0[i]) / (minutes * 60)) * 100);
  const redisCpu = ((cpuSeconds(redis.pid) - redisCpu0) / (minutes * 60)) * 100;
  const memory = pids.map(rss);
  const statsAfter = await stats();
  const commands = Object.values(byCommand).reduce((a, b) => a + b, 0);
  const netOut = (Number(stats1.total_net_output_bytes) - Number(stats0.total_net_output_bytes)) / minutes;
  const perTunnel = commands / ready.registered;
  const pollAnswers = Object.fromEntries(Object.keys(statsAfter.polls).map((k) => [k, statsAfter.polls[k] - (statsBefore.polls[k] ?? 0)]));
  const troubles = statsAfter.errors - statsBefore.errors + statsAfter.reregistered - statsBefore.reregistered;
  // At this scale, a replica dies: how long until each of its tunnels is registered again on the
  // others (the light client retries every second: this is the replicas' pace, not a backoff).
  const victimHost = HOSTS[0];
  const owners = redisCli(redis.port, 'HVALS', 'dt:owners').split('\n').filter((l) => l.startsWith('{'));
  const held = owners.filter((l) => new URL(JSON.parse(l).url).hostname === victimHost).length;
  const exited = once(cluster.replicas.get(victimHost), 'exit');
  const killedAt = Date.now();
  cluster.replicas.get(victimHost).kill('SIGKILL');
  await exited;
  let moved = [];
  for (;;) {
    await sleep(2_000);
    moved = (await stats()).reregisteredAt.filter((t) => t > killedAt).map((t) => t - killedAt);
    if (moved.length >= held || Date.now() - killedAt > 300_000) break;
  }
  moved.sort((a, b) => a - b);
  fleet.kill('SIGTERM');
  await once(fleet, 'exit');
  await cluster.stop();
  log(`idle ${ready.registered}: a replica holding ${held} of them killed: ${moved.length} registered again on the others, the first after ${((moved[0] ?? NaN) / 1000).toFixed(1)} s, half after ${((median(moved) ?? NaN) / 1000).toFixed(1)} s, the last after ${((moved.at(-1) ?? NaN) / 1000).toFixed(1)} s`);
  log(`idle ${ready.registered}: CPU ${cpu.map((c) => c.toFixed(1)).join(' / ')} % of a core, RSS ${memory.map((m) => m.toFixed(0)).join(' / ')} MiB; Redis ${commands.toFixed(0)} commands/min, ${perTunnel.toFixed(3)} per tunnel per minute, ${(netOut / 1024).toFixed(0)} KiB/min sent, Redis CPU ${redisCpu.toFixed(1)} %; per minute by command ${JSON.stringify(byCommand)}; poll answers in the minute ${JSON.stringify(pollAnswers)}, ${troubles} errors or registrations again`);
  results.idle = { tunnels: ready.registered, registerSeconds: ready.seconds, connectedListed: connected, pollsHeld: polls, cpuPercent: cpu, rssMiB: memory, redisCommandsPerMinute: commands, redisCommandsPerTunnelMinute: perTunnel, redisCommandsPerMinuteByCommand: byCommand, redisNetOutBytesPerMinute: netOut, redisCpuPercent: redisCpu, pollAnswers, troubles };
  const what = `${ready.registered} idle tunnels over 3 replicas (1 long poll each, ${polls.reduce((a, b) => a + b, 0)} held)`;
  row('idle', `${what}: CPU % of a core, each replica`, cpu.map((c) => c.toFixed(1)).join(' / '), '< 5 each', cpu.every((c) => c < 5));
  row('idle', `${what}: RSS MiB, each replica`, memory.map((m) => m.toFixed(0)).join(' / '), '< 300 each', memory.every((m) => m < 300));
  row('idle', `Redis commands per idle tunnel per minute (all ${commands.toFixed(0)}/min: ${Object.entries(byCommand).map(([k, n]) => `${k} ${n}`).join(', ')})`, perTunnel.toFixed(3), 'a handful (≤ 5)', perTunnel <= 5);
  row('idle', 'Redis: bytes sent per minute; its CPU % of a core', `${(netOut / 1024 / 1024).toFixed(1)} MiB; ${redisCpu.toFixed(1)}`, '');
  row('idle', `${ready.registered} registrations over the control API, 3 replicas (${8 * HOSTS.length} at a time): s; per second`, `${ready.seconds.toFixed(0)}; ${(ready.registered / ready.seconds).toFixed(0)}`, '');
  row('idle', `then a replica holding ${held} of them killed (SIGKILL): all registered again on the others after s (half after)`, `${moved.length < held ? `only ${moved.length} within 300 s` : (moved.at(-1) / 1000).toFixed(1)} (${((median(moved) ?? NaN) / 1000).toFixed(1)})`, '');
  results.idle.massFailover = { held, registeredAgain: moved.length, ms: { first: moved[0], median: median(moved), last: moved.at(-1) } };
  if (troubles) row('idle', 'poll errors or registrations again during the minute', String(troubles), '0', false);
}

/**
 * The idle fleet, in its own process: registers `n` tunnels over the control API (clientId, name,
 * instance; spread over the replicas, a few at a time), then keeps each alive with one long poll,
 * sent to a replica picked at random per tunnel, as a per-connection balancer spreads a client's
 * keep-alive connection (two times in three the poll takes the internal hop). A poll that comes
 * back 204 is renewed at once, as a quiet client does. A poll that fails is sent again a second
 * later to another replica picked at random (a new connection through the balancer); a 404 makes
 * the tunnel register again there, with the same identity. Reports over IPC.
 */
async function fleetMain() {
  const { hosts, control, n, token } = JSON.parse(process.argv[3]);
  process.on('disconnect', () => process.exit(0)); // the bench is gone
  const agent = new Agent({ keepAliveTimeout: 60_000, headersTimeout: 40_000, bodyTimeout: 40_000, connect: { timeout: 10_000 } });
  const stats = { registered: 0, polls: {}, errors: 0, reregistered: 0, reregisteredAt: [] };
  const pick = () => hosts[Math.floor(Math.random() * hosts.length)];
  const register = async (tunnel) => {
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await request(`http://${tunnel.host}:${control}/api/v1/tunnels`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'x-devtunnel-protocol': '1' }, body: tunnel.body, dispatcher: agent, headersTimeout: 120_000 });
        const answer = await res.body.json();
        if (res.statusCode === 201) return Object.assign(tunnel, { id: answer.id, secret: answer.secret });
        if (attempt > 60) throw new Error(`registration of ${tunnel.body}: ${res.statusCode} ${JSON.stringify(answer)}`);
      } catch (error) {
        if (attempt > 60) throw error;
        tunnel.host = pick();
      }
      await sleep(1_000);
    }
  };
  const keep = async (tunnel) => {
    tunnel.host = pick();
    for (;;) {
      try {
        const res = await request(`http://${tunnel.host}:${control}/api/v1/tunnels/${tunnel.id}/poll`, { headers: { authorization: `Bearer ${tunnel.secret}` }, dispatcher: agent });
        await res.body.dump();
        stats.polls[res.statusCode] = (stats.polls[res.statusCode] ?? 0) + 1;
        if (res.statusCode === 404) {
          await register(tunnel);
          stats.reregistered++;
          stats.reregisteredAt.push(Date.now());
        } else if (res.statusCode !== 204 && res.statusCode !== 200) await sleep(1_000);
      } catch {
        stats.errors++;
        await sleep(1_000);
        tunnel.host = pick();
      }
    }
  };
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 * hosts.length }, async () => {
      while (next < n) {
        const k = next++;
        const tunnel = { host: hosts[k % hosts.length], body: JSON.stringify({ clientId: `idle-${k}@bench:1#${randomBytes(16).toString('hex')}`, name: `idle-${k}`, instance: randomBytes(16).toString('hex') }) };
        await register(tunnel);
        stats.registered++;
        if (stats.registered % 1000 === 0) console.error(`fleet: ${stats.registered} registered`);
        void keep(tunnel);
      }
    }),
  );
  process.send({ registered: stats.registered, seconds: (performance.now() - t0) / 1000 });
  process.on('message', () => process.send(stats));
  process.on('SIGTERM', () => process.exit(0));
}

function print() {
  // The machine's load average says whether other work shared the CPUs with the run.
  const lines = [`devtunnel bench:replicas — node ${results.machine.node}, ${results.machine.cpus} CPUs, 3 replicas + Redis ${results.machine.redis} on one machine, ${SECONDS} s × ${ROUNDS} rounds, medians; load average ${results.machine.loadAverageAtStart.toFixed(1)} at the start, ${loadavg()[0].toFixed(1)} at the end`, ''];
  lines.push('| section | what | measured | target | met |');
  lines.push('|---|---|---|---|---|');
  for (const r of results.rows) lines.push(`| ${r.section} | ${r.what} | ${r.value} | ${r.target} | ${r.verdict} |`);
  console.log(lines.join('\n'));
  mkdirSync(join(root, '.artifacts', 'bench'), { recursive: true });
  writeFileSync(join(root, '.artifacts', 'bench', 'replicas.json'), JSON.stringify(results, null, 2));
  writeFileSync(join(root, '.artifacts', 'bench', 'replicas.md'), lines.join('\n') + '\n');
}

async function main() {
  const version = /v=(\S+)/.exec(spawnSync(REDIS_BIN, ['--version'], { encoding: 'utf8' }).stdout ?? '')?.[1];
  results.machine = { node: process.version, cpus: cpus().length, redis: version ?? '?', date: new Date().toISOString(), seconds: SECONDS, rounds: ROUNDS, loadAverageAtStart: loadavg()[0] };
  const redis = await startRedis();
  const app = start([join(here, 'app.mjs')]);
  app.port = Number(await firstLine(app.stdout));
  const sections = { hop: () => hop(redis, app), failover: () => failover(redis, app.port), idle: () => idle(redis) };
  const failed = await runSections(sections, SKIP, (name, error) => row(name, `FAILED: ${error.message}`, '', '', false));
  print();
  redis.close();
  if (failed) throw new Error(`${failed} section(s) failed`);
}

if (process.argv[2] === 'fleet') {
  fleetMain().catch((error) => {
    console.error(error);
    process.exit(1);
  });
} else {
  main().then(
    () => {
      stopAll();
      process.exit(0);
    },
    (error) => {
      console.error(error);
      stopAll();
      process.exit(1);
    },
  );
}
