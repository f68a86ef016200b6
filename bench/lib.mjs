// What the benchmarks share: medians, child processes and their lines, /proc readings, and a
// round-robin balancer standing in for a Kubernetes Service.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect, createServer as createNetServer } from 'node:net';
import { createInterface } from 'node:readline';

export const log = (...a) => console.error(...a);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The upper middle value (of an even count, the larger of the middle two). */
export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The median proper: of an even count, the mean of the middle two. */
export const midpoint = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const h = Math.floor(s.length / 2);
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
};

/**
 * Runs each section of a benchmark that `skip` does not name. One that fails is logged and
 * reported through `failedRow(name, error)`; the others still run. Returns how many failed.
 */
export async function runSections(sections, skip, failedRow) {
  let failed = 0;
  for (const [name, run] of Object.entries(sections)) {
    if (skip.has(name)) continue;
    try {
      await run();
    } catch (error) {
      failed++;
      log(`section ${name} failed: ${error.stack ?? error}`);
      failedRow(name, error);
    }
  }
  return failed;
}

/**
 * Node child processes that end with this one: `start` spawns one (stdout piped, stderr shown),
 * `stop` signals every one still running, which also happens on exit, Ctrl-C and SIGTERM.
 */
export function createChildren(signal = 'SIGTERM') {
  const children = [];
  const stop = (how = signal) => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill(how);
  };
  process.on('exit', () => stop());
  process.on('SIGINT', () => process.exit(130));
  process.on('SIGTERM', () => process.exit(143));
  return {
    start(args, options = {}) {
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], ...options });
      children.push(child);
      return child;
    },
    /** A child spawned elsewhere, stopped with the others. */
    adopt: (child) => children.push(child),
    stop,
  };
}

/** The first line of `stream` that `match` accepts; rejects after `timeoutMs`. The stream keeps flowing. */
export function firstLine(stream, match = () => true, timeoutMs = 30_000, what = 'a line') {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: stream });
    const timer = setTimeout(() => {
      rl.close();
      stream.resume();
      reject(new Error(`timed out waiting for ${what}`));
    }, timeoutMs);
    rl.on('line', (l) => {
      if (!match(l)) return;
      clearTimeout(timer);
      rl.close();
      stream.resume();
      resolve(l);
    });
  });
}

/** Resident set size of a process now, in MiB. */
export function rss(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** CPU seconds (user + system) a process has used. */
export function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Pins a process, all its threads, to some CPUs (util-linux's taskset); false when that failed. */
export function pin(pid, cpuList) {
  return spawnSync('taskset', ['-a', '-p', '-c', cpuList, String(pid)], { stdio: 'ignore' }).status === 0;
}

/** One GET on a new connection; its status (0 when the connection failed), never throws. */
export function probe(host, port, path = '/') {
  return new Promise((resolve) => {
    const req = httpRequest({ host, port, path, agent: false, timeout: 5_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
      res.on('error', () => resolve(0));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(0));
    req.end();
  });
}

/**
 * A Kubernetes Service, as the tests' balancer (test/helpers/balancer.ts): each TCP connection to
 * the next replica in turn; `remove` and `add` take a replica out of the rotation and back.
 */
export function createBalancer(host, replicas) {
  const targets = [...replicas];
  const servers = [];
  const sockets = new Set();
  let next = 0;
  return {
    async expose(port) {
      const server = createNetServer((socket) => {
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
        if (targets.length === 0) return void socket.destroy();
        const upstream = connect(port, targets[next++ % targets.length]);
        sockets.add(upstream);
        upstream.once('close', () => sockets.delete(upstream));
        socket.on('error', () => upstream.destroy());
        upstream.on('error', () => socket.destroy());
        socket.pipe(upstream);
        upstream.pipe(socket);
      });
      servers.push(server);
      await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, resolve);
      });
    },
    remove: (h) => targets.includes(h) && targets.splice(targets.indexOf(h), 1),
    add: (h) => targets.includes(h) || targets.push(h),
    async close() {
      for (const s of sockets) s.destroy();
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    },
  };
}
