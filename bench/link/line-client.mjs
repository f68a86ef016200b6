// Starts line.mjs in a child process and returns a promise-based handle on it.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** @returns {Promise<{ pid: number, open(name: string, port: number): Promise<number>, configure(settings: object): Promise<void>, bytes(): Promise<object>, resetBytes(): Promise<void>, close(): Promise<void> }>} */
export async function startLine() {
  const child = fork(join(here, 'line.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const pending = new Map();
  let next = 0;
  child.on('message', (m) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if ('error' in m) p.reject(new Error(m.error));
    else p.resolve(m.result);
  });
  child.on('exit', (code) => {
    for (const p of pending.values()) p.reject(new Error(`the line process exited (${code})`));
    pending.clear();
  });
  const [ready] = await once(child, 'message');
  if (!ready?.ready) throw new Error('the line process did not start');
  const call = (op, args = {}) =>
    new Promise((resolve, reject) => {
      const id = ++next;
      pending.set(id, { resolve, reject });
      child.send({ id, op, ...args });
    });
  let closed = false;
  return {
    pid: child.pid,
    open: async (name, port) => (await call('open', { name, port })).port,
    configure: (settings) => call('configure', { settings }),
    bytes: () => call('bytes'),
    resetBytes: () => call('resetBytes'),
    async close() {
      if (closed) return;
      closed = true;
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      await call('close').catch(() => {});
      await exited;
    },
  };
}
