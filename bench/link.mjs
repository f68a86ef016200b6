// `npm run bench:link`: a 1,000-module Vite page loaded like a browser over an emulated link
// (bench/link/emulator.mjs, in a process of its own), as a ratio to the same page served by an app
// inside the cluster behind the same gateway, in the same round. docs/performance.md explains it.
//
//   direct          loader → Vite                                    (no link: a reference)
//   cluster-served  loader ⇢ line ⇢ gateway → Vite                   (the app in the cluster)
//   tunnel          loader ⇢ line ⇢ gateway → tunnel server ⇠ line ⇠ tunnel client → Vite
//   tunnel (poll)   the same with `--transport poll` (long polls only)
//   ssh -R          loader ⇢ line ⇢ gateway → sshd's forwarded port ⇠ line ⇠ ssh -R → Vite
//
// The browser and the tunnel client are one laptop: both legs cross the same line, with the round
// trip set, and share its bandwidth when it is capped. A capped case caps both directions at 50
// Mbit/s (a symmetric line), so the page is capped on its way to the browser in every arm: in
// cluster-served once (down), through the tunnel twice (up to the cluster, then down again).
//
// Environment: LINK_ROUNDS (3), LINK_QUICK=1 (RTT 20, small modules, 6 and 64 connections),
// LINK_FULL=1 (every combination: RTT × size × cap × connections × first/second load, long),
// LINK_SKIP (comma list of arms to leave out: direct,tunnel,poll,ssh), LINK_CLIENT_ARGS (extra
// devtunnel flags for both tunnel clients), LINK_CAP_MBPS (50), LINK_QUEUE_MS (bottleneck queue, 50),
// LINK_PROFILE (a directory: the tunnel clients and server write V8 CPU profiles there on exit).
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { bulkDown, bulkUp, pingPong, startEndpoints } from './link/check.mjs';
import { startLine } from './link/line-client.mjs';
import { loadPage } from './link/loader.mjs';
import { MODULES, writeProject } from './link/page.mjs';
import { startSshTunnel } from './link/ssh.mjs';
import { cpuSeconds, createChildren, firstLine, log, midpoint as median } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const require = createRequire(import.meta.url);
const bin = (pkg) => join(dirname(require.resolve(`${pkg}/package.json`)), 'dist', 'cli.js');
const ROUNDS = Number(process.env.LINK_ROUNDS ?? 3);
const QUICK = process.env.LINK_QUICK === '1';
const FULL = process.env.LINK_FULL === '1';
const SKIP = new Set((process.env.LINK_SKIP ?? '').split(',').filter(Boolean));
const CAP = Number(process.env.LINK_CAP_MBPS ?? 50) * 1e6;
const QUEUE_MS = Number(process.env.LINK_QUEUE_MS ?? 50);
const clientArgs = (process.env.LINK_CLIENT_ARGS ?? '').split(' ').filter(Boolean);
const profile = process.env.LINK_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', process.env.LINK_PROFILE] : [];
const TOKEN = 'bench-link-token-0123456789abcdef';
const LOAD_TIMEOUT_MS = 180_000;
const { start } = createChildren('SIGTERM');
const MB = 1e6;






/** The environment of the processes on the laptop's side: no proxy between them and the line. */
function laptopEnv(extra = {}) {
  const env = { ...process.env, ...extra };
  for (const k of ['HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'all_proxy']) delete env[k];
  return env;
}

/**
 * The cases, each a line setting and a page load. The default set covers the targets of issue 19
 * and each dimension at least once, in under ten minutes on 2 CPUs; LINK_FULL runs the cross
 * product (32 cases, about 45 minutes).
 */
function cases() {
  const all = [];
  for (const rtt of [20, 60])
    for (const size of ['small', 'large'])
      for (const cap of [0, CAP])
        for (const connections of [6, 64])
          for (const load of ['first', 'second']) all.push({ rtt, size, cap, connections, load });
  const pick = (c) => {
    if (FULL) return true;
    if (QUICK) return c.rtt === 20 && c.size === 'small' && !c.cap && (c.load === 'first' || c.connections === 64);
    // Every target of issue 19, and the 11 MB page without a cap; a case at RTT 60 with 6
    // connections alone takes a minute a round.
    if (c.size === 'small') return !c.cap && (c.load === 'first' ? true : c.rtt === 20 && c.connections === 64);
    return c.rtt === 20 && c.connections === 64 && c.load === 'first';
  };
  return all.filter(pick).map((c) => ({ ...c, id: caseName(c) }));
}

function caseName({ rtt, size, cap, connections, load }) {
  const parts = [`RTT ${rtt}`, size === 'small' ? 'small' : '11 MB', `${connections} conn`];
  if (cap) parts.push(`${cap / 1e6} Mbit/s`);
  if (load === 'second') parts.push('2nd load');
  return parts.join(' · ');
}

async function main() {
  const started = performance.now();
  const machine = { node: process.version, cpus: cpus().length, date: new Date().toISOString(), vite: require('vite/package.json').version, clientArgs, rounds: ROUNDS, quick: QUICK, full: FULL, capBitsPerSecond: CAP, queueMs: QUEUE_MS };
  log(`bench:link: Vite ${machine.vite}, Node ${machine.node}, ${machine.cpus} CPUs, ${ROUNDS} rounds${QUICK ? ', quick' : ''}${FULL ? ', full' : ''}`);

  const dir = join(root, '.artifacts', 'tmp', 'bench-link');
  const pages = writeProject(dir);
  const vite = start([join(root, 'node_modules/vite/bin/vite.js'), dir, '--port', '0', '--host', '127.0.0.1', '--clearScreen', 'false', '--logLevel', 'info'], { env: laptopEnv({ DEVTUNNEL: '0' }) });
  const vitePort = Number(/127\.0\.0\.1:(\d+)/.exec(await firstLine(vite.stdout, (l) => /Local:.*127\.0\.0\.1:\d+/.test(l), 60_000, 'Vite'))[1]);
  const viteUrl = `http://127.0.0.1:${vitePort}`;

  const line = await startLine();
  // Idle while the processes start and warm up: a configured line only for the checks and cases.
  await line.configure({ rttMs: 0 });
  const arms = {};
  if (!SKIP.has('direct')) arms.direct = { url: viteUrl };
  arms['cluster-served'] = await behindGateway(line, 'cluster-served', vitePort);

  // One tunnel server for both tunnels (the idle one holds its polls and costs nothing), its
  // tunnel ports on a random range below the ephemeral ports (other benches may be running).
  const from = 10_000 + Math.floor(Math.random() * 1_000) * 20;
  const server = start([...profile, bin('@devtunnel/server'), '--host', '127.0.0.1', '--port', '0', '--tunnel-ports', `${from}-${from + 19}`, '--token', TOKEN]);
  const controlPort = JSON.parse(await firstLine(server.stdout, (l) => l.includes('"server.listening"'), 30_000, 'the tunnel server')).port;
  for (const [arm, transport] of [['tunnel', 'auto'], ['poll', 'poll']]) {
    if (SKIP.has(arm)) continue;
    const legPort = await line.open(`laptop-${arm}`, controlPort);
    const stateDir = join(root, '.artifacts', 'bench-link-state', arm);
    const client = start([...profile, bin('@devtunnel/core'), '--server', `http://127.0.0.1:${legPort}`, '--port', String(vitePort), '--host', '127.0.0.1', '--name', `bench-link-${arm}`, '--identity', `bench-link-${arm}`, '--state-dir', stateDir, '--transport', transport, '--json', ...clientArgs], { env: laptopEnv({ DEVTUNNEL_TOKEN: TOKEN }) });
    const { port } = JSON.parse(await firstLine(client.stdout, (l) => l.includes('"registered"'), 30_000, `the ${arm} client`));
    arms[arm] = { ...(await behindGateway(line, arm, port)), laptopLeg: `laptop-${arm}`, pid: client.pid };
  }
  let sshNote = 'ssh -R: skipped (LINK_SKIP)';
  if (!SKIP.has('ssh')) {
    const ssh = await startSshTunnel({ line, localPort: vitePort, dir: join(root, '.artifacts', 'tmp', 'bench-link-ssh') });
    sshNote = ssh.note;
    if (ssh.remotePort) arms.ssh = { ...(await behindGateway(line, 'ssh', ssh.remotePort)), laptopLeg: 'laptop-ssh', close: ssh.close };
    else log(ssh.note);
  }
  const names = Object.keys(arms);

  const check = await checkLine(line);
  log(check.text);

  // Vite transforms every module on its first request (its compile time, not the link's): load
  // each page directly first, then once through every arm with no delay on the line, which warms
  // the gateways and the tunnel and fills each arm's browser cache for the second-load cases.
  await line.configure({ rttMs: 0, queueMs: QUEUE_MS });
  const pageBytes = {};
  const gzipBytes = {};
  const caches = {};
  const warming = performance.now();
  for (const [size, path] of Object.entries(pages)) {
    const t = performance.now();
    await loadPage(viteUrl, path, { connections: 64 });
    log(`Vite compiled the ${size} page in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    const measureCache = new Map();
    const s = await loadPage(viteUrl, path, { connections: 64, cache: measureCache });
    pageBytes[size] = s.bodyBytes;
    gzipBytes[size] = [...measureCache.values()].reduce((sum, e) => sum + gzipSync(e.text).length, 0);
    log(`${size} page: ${s.modules} modules, ${s.requests} requests, ${(s.bodyBytes / MB).toFixed(2)} MB (each gzipped: ${(gzipBytes[size] / MB).toFixed(2)} MB)`);
    for (const name of names) {
      caches[`${name}:${size}`] = new Map();
      await loadPage(arms[name].url, path, { connections: 64, cache: caches[`${name}:${size}`] });
    }
  }
  log(`warmed up in ${((performance.now() - warming) / 1000).toFixed(0)} s`);

  const list = cases();
  const lineCpuBefore = cpuSeconds(line.pid);
  machine.loadAverageBefore = loadavg()[0];
  const runs = Object.fromEntries(list.map((c) => [c.id, Object.fromEntries(names.map((n) => [n, []]))]));
  for (let round = 0; round < ROUNDS; round++) {
    const t = performance.now();
    const order = rotate(list, round);
    for (const [i, c] of order.entries()) {
      await line.configure({ rttMs: c.rtt, upBitsPerSecond: c.cap, downBitsPerSecond: c.cap, queueMs: QUEUE_MS });
      for (const name of rotate(names, round + i)) runs[c.id][name].push(await measure(line, arms[name], name, c, pages, caches));
      log(`  ${c.id}: ${names.map((n) => `${n} ${runs[c.id][n].at(-1).error ? 'FAILED' : (runs[c.id][n].at(-1).ms / 1000).toFixed(2)}`).join(', ')} s`);
    }
    log(`round ${round + 1}/${ROUNDS}: ${((performance.now() - t) / 1000).toFixed(0)} s`);
  }
  await line.configure({ rttMs: 0 });
  machine.loadAverageAfter = loadavg()[0];
  machine.lineCpuSeconds = cpuSeconds(line.pid) - lineCpuBefore;

  const rows = list.map((c) => summarize(c, runs[c.id], names, pageBytes[c.size]));
  const seconds = (performance.now() - started) / 1000;
  const text = render({ check, rows, names, pageBytes, gzipBytes, seconds, sshNote, machine });
  console.log(text);
  const out = join(root, '.artifacts', 'bench');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'link.json'), JSON.stringify({ machine, seconds, check: check.results, pages: { modules: MODULES, bytes: pageBytes, gzipBytes }, sshNote, cases: list, rows, runs }, null, 2));
  writeFileSync(join(out, 'link.txt'), text + '\n');
  log(`written: .artifacts/bench/link.json, .artifacts/bench/link.txt (${seconds.toFixed(0)} s in all)`);

  for (const arm of Object.values(arms)) arm.close?.();
  await line.close();
}

/** A rotation of `xs` by `k`: each round starts at a different case, and each case at a different arm. */
function rotate(xs, k) {
  const n = k % xs.length;
  return [...xs.slice(n), ...xs.slice(0, n)];
}

/** The gateway (bench/link/gateway.mjs, a one-hop http-proxy) in front of `port`, and the browser's leg to it. */
async function behindGateway(line, name, port) {
  const gateway = start([join(here, 'link', 'gateway.mjs'), String(port)]);
  const gatewayPort = Number(await firstLine(gateway.stdout, () => true, 30_000, `the ${name} gateway`));
  const legPort = await line.open(`browser-${name}`, gatewayPort);
  return { url: `http://127.0.0.1:${legPort}`, browserLeg: `browser-${name}`, gatewayPid: gateway.pid };
}

/** One page load of one arm in one case, with the bytes each leg of the line carried. */
async function measure(line, arm, name, c, pages, caches) {
  await line.resetBytes();
  const cache = c.load === 'second' ? caches[`${name}:${c.size}`] : undefined;
  let timer;
  try {
    const stats = await Promise.race([
      loadPage(arm.url, pages[c.size], { connections: c.connections, cache }),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no page after ${LOAD_TIMEOUT_MS / 1000} s`)), LOAD_TIMEOUT_MS))),
    ]);
    if (stats.modules < MODULES + 1) throw new Error(`${stats.modules} modules loaded`);
    const bytes = await line.bytes();
    const browser = bytes[arm.browserLeg] ?? { up: 0, down: 0 };
    const laptop = arm.laptopLeg ? bytes[arm.laptopLeg] : undefined;
    if (laptop && laptop.up === 0) throw new Error(`nothing crossed ${arm.laptopLeg}: the client does not use the line`);
    return { ms: stats.ms, requests: stats.requests, notModified: stats.notModified, wireBytes: stats.wireBytes, bodyBytes: stats.bodyBytes, encodings: stats.encodings, browser, laptop };
  } catch (error) {
    log(`${c.id}, ${name}: FAILED: ${error.message}`);
    return { error: error.message };
  } finally {
    clearTimeout(timer);
  }
}

/** Medians per arm; ratios to cluster-served as the median of each round's ratio. */
function summarize(c, runs, names, pageBytes) {
  const base = runs['cluster-served'];
  const row = { case: c.id, ...c, pageBytes, arms: {} };
  for (const name of names) {
    const r = runs[name];
    const ok = r.filter((x) => !x.error);
    const ratios = r.map((x, i) => (x.error || base[i]?.error ? NaN : x.ms / base[i].ms)).filter(Number.isFinite);
    row.arms[name] = {
      failed: r.length - ok.length,
      seconds: ok.length ? median(ok.map((x) => x.ms)) / 1000 : null,
      ratio: ratios.length ? median(ratios) : null,
      ratioMin: ratios.length ? Math.min(...ratios) : null,
      ratioMax: ratios.length ? Math.max(...ratios) : null,
      browserUpBytes: ok.length ? median(ok.map((x) => x.browser.up)) : null,
      browserDownBytes: ok.length ? median(ok.map((x) => x.browser.down)) : null,
      laptopUpBytes: ok.length && ok[0].laptop ? median(ok.map((x) => x.laptop.up)) : null,
      laptopDownBytes: ok.length && ok[0].laptop ? median(ok.map((x) => x.laptop.down)) : null,
    };
  }
  return row;
}

/** The line against its settings: round trips, both capped directions, and an uncapped bulk transfer. */
async function checkLine(line) {
  const endpoints = await startEndpoints();
  const echo = await line.open('check-echo', endpoints.ports.echo);
  const sink = await line.open('check-sink', endpoints.ports.sink);
  const source = await line.open('check-source', endpoints.ports.source);
  const results = { rtt: [] };
  try {
    await line.configure({ rttMs: 0 });
    results.loopbackMs = (await pingPong(echo)).median;
    for (const rtt of [20, 60]) {
      await line.configure({ rttMs: rtt, queueMs: QUEUE_MS });
      const { median: measuredMs, min: minMs } = await pingPong(echo);
      results.rtt.push({ setMs: rtt, measuredMs, minMs });
    }
    await line.configure({ rttMs: 20, upBitsPerSecond: CAP, downBitsPerSecond: CAP, queueMs: QUEUE_MS });
    const bulk = 8 * MB;
    results.cap = { setBitsPerSecond: CAP, bytes: bulk, upBitsPerSecond: await bulkUp(sink, endpoints, bulk), downBitsPerSecond: await bulkDown(source, bulk), rttWhileIdleMs: (await pingPong(echo)).median };
    await line.configure({ rttMs: 60 });
    const big = 64 * MB;
    results.uncapped = { rttMs: 60, bytes: big, upBitsPerSecond: await bulkUp(sink, endpoints, big), downBitsPerSecond: await bulkDown(source, big) };
  } finally {
    await line.configure({ rttMs: 0 });
    await endpoints.close();
  }
  const mbps = (b) => `${(b / 1e6).toFixed(1)} Mbit/s`;
  const lines = [
    `Emulator check (a ping-pong and bulk transfers through the line; loopback without delay: ${results.loopbackMs.toFixed(2)} ms):`,
    ...results.rtt.map((r) => `  RTT set ${r.setMs} ms: measured ${r.measuredMs.toFixed(1)} ms (median of 30 ping-pongs; least ${r.minMs.toFixed(1)} ms)`),
    `  cap set ${mbps(CAP)} each way, RTT 20: ${(results.cap.bytes / MB).toFixed(0)} MB up ${mbps(results.cap.upBitsPerSecond)}, down ${mbps(results.cap.downBitsPerSecond)}; RTT once idle ${results.cap.rttWhileIdleMs.toFixed(1)} ms`,
    `  uncapped, RTT 60: ${(results.uncapped.bytes / MB).toFixed(0)} MB up ${mbps(results.uncapped.upBitsPerSecond)}, down ${mbps(results.uncapped.downBitsPerSecond)} (stop-and-wait with 64 KiB chunks would carry ${mbps((65536 * 8 * 1000) / 60)})`,
  ];
  return { results, text: lines.join('\n') };
}

const LABELS = { direct: 'direct s', 'cluster-served': 'cluster-served s', tunnel: 'tunnel ×', poll: 'tunnel (poll) ×', ssh: 'ssh -R ×' };

function render({ check, rows, names, pageBytes, gzipBytes, seconds, sshNote, machine }) {
  const ratioArms = names.filter((n) => n !== 'direct' && n !== 'cluster-served');
  const upArms = ratioArms.filter((n) => rows.some((r) => r.arms[n].laptopUpBytes != null));
  const header = ['case', ...names.map((n) => LABELS[n]), ...upArms.map((n) => `${n === 'poll' ? 'poll' : n} up ÷ page`)];
  const cell = (a, n) => {
    if (!a) return '';
    if (a.failed && a.seconds == null) return 'FAILED';
    const fail = a.failed ? ` (${a.failed} failed)` : '';
    if (n === 'direct' || n === 'cluster-served') return a.seconds.toFixed(2) + fail;
    return `${a.ratio.toFixed(2)} (${a.ratioMin.toFixed(2)}-${a.ratioMax.toFixed(2)})${fail}`;
  };
  const body = rows.map((r) => [r.case, ...names.map((n) => cell(r.arms[n], n)), ...upArms.map((n) => (r.arms[n].laptopUpBytes == null ? '' : (r.arms[n].laptopUpBytes / r.pageBytes).toFixed(2)))]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const fmt = (cells) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  const table = [fmt(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(fmt)].join('\n');
  return [
    check.text,
    '',
    `Pages: ${MODULES} modules + main.js + Vite's client; small ${(pageBytes.small / MB).toFixed(2)} MB (gzip ${(gzipBytes.small / MB).toFixed(2)}), 11 MB page ${(pageBytes.large / MB).toFixed(2)} MB (gzip ${(gzipBytes.large / MB).toFixed(2)}), as Vite serves them.`,
    `Medians of ${machine.rounds} round${machine.rounds === 1 ? '' : 's'}; × = the median of each round's ratio to cluster-served (min-max); up ÷ page = bytes the laptop's leg carried up per load ÷ the page's bytes. ${sshNote}`,
    '',
    table,
    '',
    `${machine.cpus} CPUs (load average ${machine.loadAverageBefore.toFixed(1)} before the rounds, ${machine.loadAverageAfter.toFixed(1)} after), Node ${machine.node}, Vite ${machine.vite}; the line process used ${machine.lineCpuSeconds.toFixed(0)} CPU s over the rounds; ${seconds.toFixed(0)} s in all.`,
  ].join('\n');
}

main().then(
  () => process.exit(0),
  (error) => {
    log(error.stack ?? error);
    process.exit(1);
  },
);
