import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export const ROOT = join(__dirname, '..', '..');
export const CLIENT_BIN = join(ROOT, 'packages/core/dist/cli.js');
export const SERVER_BIN = join(ROOT, 'packages/server/dist/cli.js');

export interface Child {
  process: ChildProcess;
  /** Lines printed on stdout so far. */
  lines: string[];
  stderr(): string;
  /** Every line so far, stdout's then stderr's (dev servers log to either). */
  output(): string[];
  /** Resolves with the first line matching, on stdout or stderr, within `timeoutMs`. */
  waitForLine(match: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Waits for the process to exit on its own (bounded) and returns its exit code. */
  exited(timeoutMs?: number): Promise<number | null>;
  /** Sends `signal` and waits for the exit code; a process still running after 10 s is killed. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Runs one of our built CLIs with the current Node, exactly as a user would. */
export function runBin(bin: string, args: string[], env: Record<string, string> = {}): Child {
  return watchChild(spawn(process.execPath, [bin, ...args], { env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** The same handle for a process spawned some other way (its own environment, cwd); stdout and stderr must be pipes. */
export function watchChild(child: ChildProcess): Child {
  const lines: string[] = [];
  const errLines: string[] = [];
  let err = '';
  const waiters = new Set<(line: string) => void>();
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    for (const w of [...waiters]) w(line);
  });
  createInterface({ input: child.stderr! }).on('line', (line) => {
    err += line + '\n';
    errLines.push(line);
    for (const w of [...waiters]) w(line);
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return {
    process: child,
    lines,
    stderr: () => err,
    output: () => [...lines, ...errLines],
    waitForLine(match, timeoutMs = 10_000) {
      const found = lines.find(match) ?? errLines.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(onLine);
          reject(new Error(`no matching line within ${timeoutMs} ms; stdout:\n${lines.join('\n')}\nstderr:\n${err}`));
        }, timeoutMs);
        const onLine = (line: string) => {
          if (!match(line)) return;
          clearTimeout(timer);
          waiters.delete(onLine);
          resolve(line);
        };
        waiters.add(onLine);
        void exited.then(() => {
          if (!waiters.has(onLine)) return;
          clearTimeout(timer);
          waiters.delete(onLine);
          reject(new Error(`process exited before a matching line; stdout:\n${lines.join('\n')}\nstderr:\n${err}`));
        });
      });
    },
    exited(timeoutMs = 10_000) {
      let timer: NodeJS.Timeout | undefined;
      const limit = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`still running after ${timeoutMs} ms; stdout:\n${lines.join('\n')}\nstderr:\n${err}`)), timeoutMs);
      });
      return Promise.race([exited, limit]).finally(() => clearTimeout(timer));
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const stuck = setTimeout(() => child.kill('SIGKILL'), 10_000);
      return exited.finally(() => clearTimeout(stuck));
    },
  };
}
