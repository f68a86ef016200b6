// Checks the emulated line against what it was set to: a ping-pong measures the round trip, a bulk
// transfer each direction's rate. Run before the bench's measurements and printed above its table.
import { once } from 'node:events';
import { createServer, connect } from 'node:net';

const listen = async (server) => {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server.address().port;
};

/** An echo server, and a sink that counts what arrives and times its first and last bytes. */
export async function startEndpoints() {
  const echo = createServer({ noDelay: true }, (s) => s.on('error', () => {}).pipe(s));
  const sinks = new Set();
  const sink = createServer({ noDelay: true }, (s) => {
    const seen = { bytes: 0, first: 0, firstBytes: 0, last: 0 };
    s.on('data', (c) => {
      const t = performance.now();
      if (!seen.bytes) (seen.first = t), (seen.firstBytes = c.length);
      seen.bytes += c.length;
      seen.last = t;
      for (const w of sinks) w(seen);
    });
    s.on('error', () => {});
  });
  // A source: sends the number of bytes the connection's first line asks for, then ends.
  const source = createServer({ noDelay: true }, (s) => {
    s.on('error', () => {});
    s.once('data', (c) => {
      let left = Number(c.toString().trim());
      const block = Buffer.alloc(64 * 1024, 'z');
      const pump = () => {
        while (left > 0) {
          const part = left >= block.length ? block : block.subarray(0, left);
          left -= part.length;
          if (!s.write(part)) return void s.once('drain', pump);
        }
        s.end();
      };
      pump();
    });
  });
  return {
    ports: { echo: await listen(echo), sink: await listen(sink), source: await listen(source) },
    /** Resolves with the sink's record once `n` bytes arrived on one of its connections. */
    sinkReceived: (n) =>
      new Promise((resolve) => {
        const w = (seen) => seen.bytes >= n && (sinks.delete(w), resolve(seen));
        sinks.add(w);
      }),
    close: () => Promise.all([echo, sink, source].map((s) => (s.closeAllConnections?.(), new Promise((r) => s.close(r))))),
  };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function connected(port) {
  const s = connect({ port, host: '127.0.0.1', noDelay: true });
  await once(s, 'connect');
  return s;
}

/** Median and least round trip of `count` one-byte ping-pongs on one connection (after one to warm it). */
export async function pingPong(port, count = 30) {
  const s = await connected(port);
  const rtts = [];
  for (let i = 0; i <= count; i++) {
    const t = performance.now();
    s.write('p');
    await once(s, 'data');
    if (i) rtts.push(performance.now() - t);
  }
  s.destroy();
  return { median: median(rtts), min: Math.min(...rtts) };
}

/** Bits per second of `bytes` sent up (client → target), timed at the far end from first to last byte. */
export async function bulkUp(port, endpoints, bytes) {
  const arrived = endpoints.sinkReceived(bytes);
  const s = await connected(port);
  const block = Buffer.alloc(64 * 1024, 'u');
  for (let left = bytes; left > 0; left -= block.length) {
    if (!s.write(left >= block.length ? block : block.subarray(0, left))) await once(s, 'drain');
  }
  const seen = await arrived;
  s.destroy();
  return ((seen.bytes - seen.firstBytes) * 8 * 1000) / (seen.last - seen.first);
}

/** Bits per second of `bytes` sent down (target → client), timed at the client from first to last byte. */
export async function bulkDown(port, bytes) {
  const s = await connected(port);
  s.write(`${bytes}\n`);
  let got = 0;
  let first = 0;
  let firstBytes = 0;
  let last = 0;
  for await (const c of s) {
    const t = performance.now();
    if (!got) (first = t), (firstBytes = c.length);
    got += c.length;
    last = t;
  }
  if (got !== bytes) throw new Error(`bulk down: ${got} of ${bytes} bytes arrived`);
  return ((got - firstBytes) * 8 * 1000) / (last - first);
}
