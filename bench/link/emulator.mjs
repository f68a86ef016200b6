// A user-space network link for benchmarks: TCP proxies on 127.0.0.1 ("legs") whose bytes cross
// one emulated line with a one-way delay per direction and an optional bandwidth cap per direction.
//
// The line is a pipe, not stop-and-wait: every chunk a socket reads is stamped with the time it
// will arrive (after waiting its turn on the direction's bottleneck, then the one-way delay) and
// queued, so a connection with many bytes in flight is limited by the cap or its window, never by
// the delay. All legs share the line's directions: two connections through a capped direction
// share its bandwidth, as a laptop's browser and its tunnel client share one uplink.
//
// `up` is the direction from the side that connects to a leg towards the leg's target (a browser
// to the cluster's gateway, a tunnel client to the tunnel server: both the laptop's uplink), `down`
// the other. Modelled: propagation delay, serialisation at the cap, a bounded bottleneck queue, the
// TCP handshake (a new connection's first byte leaves one round trip after connect), a window per
// connection. Not modelled: loss, slow start, TLS, TCP/IP header bytes (counts are payload bytes).
//
// Memory is bounded: a connection stops reading when its bytes queued on the line, plus those its
// destination socket has not flushed, pass `windowBytes`, or when the direction's bottleneck queue
// holds more than `queueMs` of sending; it reads again once they drain.
import { createServer, connect } from 'node:net';

/**
 * @typedef {object} LineSettings
 * @property {number} [rttMs] round-trip time; each direction gets half as its one-way delay (0)
 * @property {number} [upBitsPerSecond] cap of the `up` direction; 0 or absent: uncapped
 * @property {number} [downBitsPerSecond] cap of the `down` direction; 0 or absent: uncapped
 * @property {number} [queueMs] bottleneck queue of a capped direction, in time at its rate (50)
 * @property {number} [windowBytes] bytes in flight per connection and direction (4 MiB)
 */
const defaults = Object.freeze({ rttMs: 0, upBitsPerSecond: 0, downBitsPerSecond: 0, queueMs: 50, windowBytes: 4 * 1024 * 1024 });

const now = () => performance.now();
/**
 * How late this process's timers fire, on average (an exponential mean, ms, at most 1): a timer
 * is set that much early, so that chunks arrive on time on average. Node's timers count in whole
 * milliseconds of the event loop's clock, which makes them fire up to a millisecond late or early;
 * a busy machine makes them later still, which no compensation undoes (the check shows it).
 */
export const timers = { lateMs: 0.5 };
function noteLateness(ms) {
  timers.lateMs = Math.min(1, Math.max(0, timers.lateMs + 0.05 * (ms - timers.lateMs)));
}

/** One direction of the line: its delay, its cap and when its bottleneck is next free. */
function createDirection() {
  return { delayMs: 0, bitsPerSecond: 0, queueMs: defaults.queueMs, busyUntil: 0, blocked: new Set(), timer: undefined };
}

/**
 * @param {LineSettings} [settings]
 * @returns the line: `open(target)` adds a leg, `configure()` changes the settings for the bytes
 * read from then on, `bytes()` counts per leg and direction, `close()` ends everything.
 */
export function createLine(settings = {}) {
  const directions = { up: createDirection(), down: createDirection() };
  const legs = new Map();
  let windowBytes = defaults.windowBytes;
  let rttMs = 0;
  let closed = false;

  function configure(next = {}) {
    const s = { ...defaults, ...next };
    for (const [k, v] of Object.entries(s)) {
      if (!(k in defaults)) throw new Error(`createLine: unknown setting ${k}`);
      if (typeof v !== 'number' || !(v >= 0)) throw new Error(`createLine: ${k} must be a number ≥ 0, got ${v}`);
    }
    rttMs = s.rttMs;
    windowBytes = Math.max(64 * 1024, s.windowBytes);
    directions.up.delayMs = directions.down.delayMs = s.rttMs / 2;
    directions.up.bitsPerSecond = s.upBitsPerSecond;
    directions.down.bitsPerSecond = s.downBitsPerSecond;
    directions.up.queueMs = directions.down.queueMs = s.queueMs;
  }
  configure(settings);

  /** Wakes the connections a direction's full bottleneck queue stopped, once it has drained. */
  function unblockLater(direction) {
    if (direction.timer) return;
    const wait = direction.busyUntil - direction.queueMs - now();
    direction.timer = setTimeout(() => {
      direction.timer = undefined;
      if (direction.busyUntil - now() > direction.queueMs) return unblockLater(direction);
      const waiting = [...direction.blocked];
      direction.blocked.clear();
      for (const pipe of waiting) pipe.resumeIfAllowed();
    }, Math.max(0, wait));
  }

  /**
   * One direction of one connection: reads `from`, writes `to` when each chunk is due. The end of
   * `from` (a FIN) travels the same way, after the bytes before it.
   */
  function createPipe(from, to, direction, counter, notBefore) {
    const queue = [];
    let queued = 0;
    let lastAt = 0;
    let timer;
    let firesAt = 0;
    let paused = false;

    function overLimit() {
      if (queued + to.writableLength > windowBytes) return true;
      return direction.bitsPerSecond > 0 && direction.busyUntil - now() > direction.queueMs;
    }
    function pause() {
      if (paused) return;
      paused = true;
      from.pause();
      if (direction.bitsPerSecond > 0 && direction.busyUntil - now() > direction.queueMs) {
        direction.blocked.add(pipe);
        unblockLater(direction);
      }
    }
    function resumeIfAllowed() {
      if (!paused || from.destroyed) return;
      if (overLimit()) {
        paused = false;
        return pause();
      }
      paused = false;
      from.resume();
    }
    function deliver() {
      timer = undefined;
      noteLateness(now() - firesAt);
      flush();
    }
    function flush() {
      const t = now() + timers.lateMs;
      while (queue.length && queue[0].at <= t) {
        const { chunk } = queue.shift();
        if (chunk === null) {
          to.end();
          continue;
        }
        queued -= chunk.length;
        if (!to.destroyed) to.write(chunk);
      }
      schedule();
      if (paused && to.writableLength <= windowBytes) resumeIfAllowed();
    }
    function schedule() {
      if (timer || !queue.length) return;
      const wait = queue[0].at - now() - timers.lateMs;
      // Due already: now, not after a timer's minimum of 1 ms (an uncapped line with no delay
      // then adds next to nothing to loopback).
      if (wait <= 0) return flush();
      firesAt = now() + wait;
      timer = setTimeout(deliver, wait);
    }
    function enqueue(chunk) {
      const t = now();
      let departs = Math.max(t, notBefore);
      if (direction.bitsPerSecond > 0 && chunk) {
        departs = Math.max(departs, direction.busyUntil) + (chunk.length * 8 * 1000) / direction.bitsPerSecond;
        direction.busyUntil = departs;
      }
      // Never ahead of an earlier chunk of the same connection, even after the delay was lowered.
      lastAt = Math.max(departs + direction.delayMs, lastAt);
      queue.push({ chunk, at: lastAt });
      schedule();
    }
    from.on('data', (chunk) => {
      counter.bytes += chunk.length;
      queued += chunk.length;
      enqueue(chunk);
      if (overLimit()) pause();
    });
    from.on('end', () => enqueue(null));
    to.on('drain', () => paused && resumeIfAllowed());
    const pipe = {
      resumeIfAllowed,
      stop() {
        clearTimeout(timer);
        queue.length = 0;
        direction.blocked.delete(pipe);
      },
    };
    return pipe;
  }

  /**
   * A leg: a listener on 127.0.0.1, port 0, whose connections are carried over the line to
   * `target` (a port on 127.0.0.1, or { host, port }). Resolves to { port, close() }.
   */
  async function open(target, name = `leg${legs.size}`) {
    if (closed) throw new Error('createLine: the line is closed');
    if (legs.has(name)) throw new Error(`createLine: a leg named ${name} is open already`);
    const to = typeof target === 'number' ? { host: '127.0.0.1', port: target } : target;
    const counts = { up: { bytes: 0 }, down: { bytes: 0 }, connections: 0 };
    const sockets = new Set();
    const server = createServer({ allowHalfOpen: true, noDelay: true }, (near) => {
      counts.connections++;
      const far = connect({ ...to, allowHalfOpen: true, noDelay: true });
      sockets.add(near).add(far);
      // A real connection's first byte leaves after the handshake, one round trip after connect().
      // (The far side could send one and a half round trips after connect(); only a server that
      // speaks first, such as sshd, ever does.)
      const t = now();
      const up = createPipe(near, far, directions.up, counts.up, t + rttMs);
      const down = createPipe(far, near, directions.down, counts.down, t + 1.5 * rttMs);
      let gone = 0;
      const cleanup = () => {
        up.stop();
        down.stop();
        near.destroy();
        far.destroy();
      };
      for (const s of [near, far]) {
        // A reset or an error on either side resets the other: no half-dead connections.
        s.on('error', cleanup);
        s.on('close', () => {
          sockets.delete(s);
          if (++gone === 1 && (s.errored || !s.readableEnded)) cleanup();
          if (gone === 2) cleanup();
        });
      }
    });
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const leg = {
      port: server.address().port,
      counts,
      close() {
        for (const s of sockets) s.destroy();
        return new Promise((resolve) => server.close(() => resolve()));
      },
    };
    legs.set(name, leg);
    return { port: leg.port, close: leg.close };
  }

  return {
    open,
    configure,
    /** Payload bytes per leg and direction since the start or the last `resetBytes()`. */
    bytes() {
      return Object.fromEntries([...legs].map(([name, l]) => [name, { up: l.counts.up.bytes, down: l.counts.down.bytes, connections: l.counts.connections }]));
    },
    resetBytes() {
      for (const l of legs.values()) l.counts.up.bytes = l.counts.down.bytes = l.counts.connections = 0;
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const d of Object.values(directions)) clearTimeout(d.timer);
      await Promise.all([...legs.values()].map((l) => l.close()));
    },
  };
}
