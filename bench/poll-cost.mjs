// What an idle tunnel costs two replicas, per long-poll renewal: Redis (Debian's redis-server, a
// free port, a temporary directory), two replicas of the built server on 127.0.0.1 and 127.0.0.2,
// POLL_TUNNELS (2000) tunnels registered on the first by hand, each holding one long poll sent to
// POLL_VIA (127.0.0.2: every poll takes the hop; 127.0.0.1: none does). After 30 s of warm-up, each
// replica's CPU over 30 s, and the renewals a second. One JSON line; docs/performance.md quotes it.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { cpuSeconds, createChildren, firstLine, log, sleep } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const TOKEN = 'bench-poll-token-0123456789abcdef';
const N = Number(process.env.POLL_TUNNELS ?? 2000);
const VIA = process.env.POLL_VIA ?? '127.0.0.2';
const { start, adopt } = createChildren('SIGKILL');
const base = 15_000 + Math.floor(Math.random() * 5) * 3_000;
const [redisPort, control, from] = [base, base + 1, base + 10];

const dir = mkdtempSync(join(tmpdir(), 'devtunnel-poll-cost-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] });
adopt(redis);
await firstLine(redis.stdout, (l) => /Ready to accept connections/.test(l), 10_000, 'redis-server');
redis.stdout.resume();

const replica = async (host) => {
  const child = start([join(root, 'packages/server/dist/cli.js'), '--host', host, '--port', String(control), '--tunnel-ports', `${from}-${from + N + 50}`, '--store', `redis://127.0.0.1:${redisPort}`, '--advertise-url', `http://${host}:${control}`, '--token', TOKEN]);
  await firstLine(child.stdout, (l) => l.includes('"server.listening"'), 30_000, `replica ${host}`);
  child.stdout.resume();
  return child;
};
const [holder, other] = await Promise.all([replica('127.0.0.1'), replica('127.0.0.2')]);

const agent = new Agent({ connections: null, keepAliveTimeout: 60_000 });
const tunnels = [];
for (let k = 0; k < N; k++) {
  const res = await request(`http://127.0.0.1:${control}/api/v1/tunnels`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ clientId: `idle-${k}@bench:1#k`, name: `idle-${k}` }), dispatcher: agent });
  tunnels.push(await res.body.json());
}
log(`poll-cost: ${N} tunnels registered; polls via ${VIA}`);
let renewals = 0;
for (const t of tunnels) {
  void (async () => {
    for (;;) {
      try {
        const r = await request(`http://${VIA}:${control}/api/v1/tunnels/${t.id}/poll`, { headers: { authorization: `Bearer ${t.secret}` }, dispatcher: agent });
        await r.body.dump();
        renewals++;
      } catch {
        await sleep(1_000);
      }
    }
  })();
}
await sleep(30_000);
const before = { holder: cpuSeconds(holder.pid), other: cpuSeconds(other.pid), renewals };
await sleep(30_000);
const pct = (pid, was) => +(((cpuSeconds(pid) - was) / 30) * 100).toFixed(1);
console.log(JSON.stringify({ tunnels: N, via: VIA, holderCpuPct: pct(holder.pid, before.holder), otherCpuPct: pct(other.pid, before.other), renewalsPerSecond: Math.round((renewals - before.renewals) / 30) }));
process.exit(0);
