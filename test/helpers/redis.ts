import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeRange } from './tunnel';

/**
 * A real Redis for the tests (Debian's `redis-server`; `.ci/run` installs it when missing), on a
 * free port with a temporary directory and an append-only file, so that a restart keeps what was
 * written, as a Redis with persistence does. `REDIS_SERVER` points at another binary (valkey-server).
 */
export interface TestRedis {
  port: number;
  url: string;
  stop(): Promise<void>;
  /** Starts it again on the same port and directory. */
  start(): Promise<void>;
  /** Empties it (FLUSHALL): a clean slate between tests. */
  flush(): Promise<void>;
}

const BIN = process.env.REDIS_SERVER ?? 'redis-server';

async function ready(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.write('PING\r\n');
        s.once('data', (d) => {
          s.destroy();
          resolve(d.toString().startsWith('+PONG'));
        });
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not answer within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startRedis(): Promise<TestRedis> {
  const { from: port } = await freeRange(1);
  const dir = mkdtempSync(join(tmpdir(), 'devtunnel-redis-'));
  let child: ChildProcess | undefined;
  const start = async () => {
    if (child && child.exitCode === null && child.signalCode === null) return;
    child = spawn(BIN, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--protected-mode', 'no'], { stdio: 'ignore' });
    child.once('error', () => {});
    await ready(port);
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    start,
    flush: () =>
      new Promise<void>((resolve, reject) => {
        const s = connect(port, '127.0.0.1');
        s.once('connect', () => s.write('FLUSHALL\r\n'));
        s.once('data', () => {
          s.destroy();
          resolve();
        });
        s.once('error', reject);
      }),
    async stop() {
      if (!child || child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}
