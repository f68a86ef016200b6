// A small fault-injecting TCP proxy (toxiproxy's vocabulary; toxiproxy cannot be installed here):
// latency, slicing into tiny writes, resets and a black hole, switched at run time, per
// direction-less connection pair. Used by the soak between the tunnel client and the server.
import { createServer, connect } from 'node:net';

/**
 * @param {number} targetPort where connections go (127.0.0.1)
 * @returns {{ port: number, mode(name: 'pass' | 'latency' | 'slice' | 'reset' | 'blackhole'): void, close(): Promise<void>, stats: Record<string, number> }}
 */
export async function createChaosProxy(targetPort) {
  let mode = 'pass';
  const stats = { connections: 0, resets: 0 };
  const pairs = new Set();
  const random = (min, max) => min + Math.floor(Math.random() * (max - min + 1));

  /** Forwards one direction with the current toxics, keeping order and backpressure. */
  function pipe(from, to) {
    let chain = Promise.resolve();
    from.on('data', (chunk) => {
      const current = mode;
      if (current === 'blackhole') return; // bytes vanish; the peers' own timeouts must notice
      from.pause();
      chain = chain.then(async () => {
        if (current === 'latency') await new Promise((r) => setTimeout(r, random(20, 80)));
        if (current === 'slice') {
          for (let i = 0; i < chunk.length; ) {
            const n = random(1, 7);
            if (!to.destroyed) to.write(chunk.subarray(i, i + n));
            i += n;
            if (i % 64 < 7) await new Promise((r) => setImmediate(r));
          }
        } else if (!to.destroyed) {
          to.write(chunk);
        }
        if (!from.destroyed) from.resume();
      });
    });
    from.on('end', () => chain.then(() => to.end()));
  }

  const server = createServer((client) => {
    stats.connections++;
    const upstream = connect(targetPort, '127.0.0.1');
    const pair = { client, upstream };
    pairs.add(pair);
    const kill = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', kill).on('close', kill);
    upstream.on('error', kill).on('close', kill);
    pipe(client, upstream);
    pipe(upstream, client);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));

  return {
    port: server.address().port,
    stats,
    mode(next) {
      mode = next;
      if (next === 'reset') {
        // Reset every connection now (RST), then carry on passing new ones through.
        for (const { client, upstream } of pairs) {
          stats.resets++;
          client.resetAndDestroy?.() ?? client.destroy();
          upstream.resetAndDestroy?.() ?? upstream.destroy();
        }
        mode = 'pass';
      }
    },
    async close() {
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
