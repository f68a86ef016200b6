import { fork, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { ROOT } from '../helpers/child';

/**
 * The link emulator of `npm run bench:link` (bench/link/emulator.mjs, run as bench/link/line.mjs
 * in a process of its own, as the bench runs it): what it carries arrives intact and in order both
 * ways, a reader that stops reading stops the line from reading (its memory stays bounded), and
 * ends and resets cross it. How fast it carries is the bench's own check, not a test's.
 */

interface Line {
  child: ChildProcess;
  call(op: string, args?: Record<string, unknown>): Promise<any>;
}

async function startLine(): Promise<Line> {
  const child = fork(join(ROOT, 'bench/link/line.mjs'), [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [ready] = (await once(child, 'message')) as [{ ready?: boolean }];
  expect(ready.ready).toBe(true);
  let next = 0;
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  child.on('message', (m: { id: number; result?: unknown; error?: string }) => {
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (m.error) p?.reject(new Error(m.error));
    else p?.resolve(m.result);
  });
  return {
    child,
    call: (op, args = {}) =>
      new Promise((resolve, reject) => {
        pending.set(++next, { resolve, reject });
        child.send({ id: next, op, ...args });
      }),
  };
}

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

async function connected(port: number): Promise<Socket> {
  const s = connect({ port, host: '127.0.0.1' });
  await once(s, 'connect');
  return s;
}

/** Everything a socket reads until its end, concatenated (not `for await`, which destroys the socket at the end). */
function readAll(s: Socket): Promise<Buffer> {
  const parts: Buffer[] = [];
  s.on('data', (c: Buffer) => parts.push(c));
  return new Promise((resolve, reject) => {
    s.once('end', () => resolve(Buffer.concat(parts)));
    s.once('error', reject);
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

/** Waits until `read()` returns the same value `times` times in a row, `everyMs` apart (bounded). */
async function settled(read: () => Promise<number>, times = 4, everyMs = 100): Promise<number> {
  let last = -1;
  let same = 0;
  for (let i = 0; i < 200; i++) {
    const v = await read();
    same = v === last ? same + 1 : 0;
    if (same >= times) return v;
    last = v;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error('the value never settled');
}

describe('link emulator (bench/link)', () => {
  let line: Line;
  const servers: Server[] = [];
  const sockets: Socket[] = [];

  beforeEach(async () => {
    line = await startLine();
  });
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    for (const s of servers.splice(0)) s.close();
    const exited = once(line.child, 'exit');
    line.child.disconnect();
    await exited;
  });

  it('carries bytes intact and in order both ways, over a delayed and capped line, on several connections at once', async () => {
    await line.call('configure', { settings: { rttMs: 10, upBitsPerSecond: 400e6, downBitsPerSecond: 200e6 } });
    const echo = acceptor((c) => c.pipe(c));
    const { port } = await line.call('open', { name: 'echo', port: await echo.listen() });
    const payloads = [randomBytes(3 * 1024 * 1024), randomBytes(777_777), randomBytes(1)];
    const echoed = await Promise.all(
      payloads.map(async (payload) => {
        const s = await connected(port);
        sockets.push(s);
        const back = readAll(s);
        // Written in uneven pieces, with an end (FIN) after the last one.
        for (let at = 0; at < payload.length; at += 65_521) if (!s.write(payload.subarray(at, at + 65_521))) await once(s, 'drain');
        s.end();
        return back;
      }),
    );
    echoed.forEach((b, i) => expect(sha(b)).toBe(sha(payloads[i]!)));
    const total = payloads.reduce((n, p) => n + p.length, 0);
    expect(await line.call('bytes')).toEqual({ echo: { up: total, down: total, connections: 3 } });
  });

  it('stops reading when the far end stops reading, keeping its memory bounded, and delivers everything once it reads again', async () => {
    await line.call('configure', { settings: { rttMs: 4, windowBytes: 1024 * 1024 } });
    const far = acceptor();
    const { port } = await line.call('open', { name: 'sink', port: await far.listen() });
    const s = await connected(port);
    sockets.push(s);
    s.write('first');
    const sink = await far.next();
    sink.pause();
    const rssBefore = rssMiB(line.child.pid!);
    const payload = randomBytes(64 * 1024 * 1024);
    // The sender queues all of it; the line reads only what its window and the far socket hold.
    s.write(payload);
    const carried = await settled(async () => (await line.call('bytes')).sink.up);
    // The window (1 MiB), plus what the kernel's loopback buffers took on both of its sockets.
    expect(carried).toBeLessThan(24 * 1024 * 1024);
    expect(rssMiB(line.child.pid!) - rssBefore).toBeLessThan(48);
    const received = readAll(sink);
    sink.resume();
    s.end();
    expect(sha(await received)).toBe(sha(Buffer.concat([Buffer.from('first'), payload])));
  });

  it('carries an end each way after the bytes before it', async () => {
    await line.call('configure', { settings: { rttMs: 20 } });
    // The far end answers once the near end has finished sending (a half-close), then ends too.
    const far = acceptor((c) => void readAll(c).then((got) => c.end(Buffer.concat([Buffer.from('got '), got]))));
    const { port } = await line.call('open', { name: 'half', port: await far.listen() });
    const s = await connected(port);
    sockets.push(s);
    const answer = readAll(s);
    s.end('hello');
    expect((await answer).toString()).toBe('got hello');
    await once(s, 'close');
  });

  it('carries a reset from either end', async () => {
    await line.call('configure', { settings: { rttMs: 20 } });
    const far = acceptor();
    const { port } = await line.call('open', { name: 'reset', port: await far.listen() });

    const near = await connected(port);
    sockets.push(near);
    near.on('error', () => {});
    near.write('x');
    const farSide = await far.next();
    const nearClosed = once(near, 'close');
    farSide.resetAndDestroy();
    await nearClosed;

    const near2 = await connected(port);
    sockets.push(near2);
    near2.write('y');
    const farSide2 = await far.next();
    // Read what arrives ('y' may be delivered before the reset on a slow machine): a paused
    // socket with unread bytes never reports the end of its input.
    farSide2.resume();
    // The far end is half-open capable: the end of its input is what shows the line let go.
    const farEnded = Promise.race([once(farSide2, 'end'), once(farSide2, 'close')]);
    near2.resetAndDestroy();
    await farEnded;
  });

  /** A server that hands over each connection it accepts, in order. */
  function acceptor(onConnection: (s: Socket) => void = () => {}) {
    const accepted: Socket[] = [];
    const waiting: Array<(s: Socket) => void> = [];
    const srv = createServer({ allowHalfOpen: true }, (c) => {
      sockets.push(c);
      c.on('error', () => {});
      onConnection(c);
      const w = waiting.shift();
      if (w) w(c);
      else accepted.push(c);
    });
    servers.push(srv);
    return {
      listen: () => listen(srv),
      next: () => new Promise<Socket>((resolve) => (accepted.length ? resolve(accepted.shift()!) : waiting.push(resolve))),
    };
  }
});
