import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * What a Kubernetes Service does in front of several replicas, for the tests: each TCP
 * connection goes to the next replica in turn (kube-proxy picks per connection too), on the same
 * port of the replica's own address. `expose(port)` starts listening on one more port.
 */
export interface Balancer {
  host: string;
  expose(port: number): Promise<void>;
  /** Replicas taken out (killed, draining), as endpoints leave a Service. */
  remove(host: string): void;
  add(host: string): void;
  close(): Promise<void>;
}

export function createBalancer(host: string, replicas: string[]): Balancer {
  const targets = [...replicas];
  const servers = new Map<number, Server>();
  const sockets = new Set<Socket>();
  let next = 0;
  return {
    host,
    async expose(port) {
      if (servers.has(port)) return;
      const server = createServer((socket) => {
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
        if (targets.length === 0) return void socket.destroy();
        const target = targets[next++ % targets.length]!;
        const upstream = connect(port, target);
        sockets.add(upstream);
        upstream.once('close', () => sockets.delete(upstream));
        socket.on('error', () => upstream.destroy());
        upstream.on('error', () => socket.destroy());
        socket.pipe(upstream);
        upstream.pipe(socket);
      });
      servers.set(port, server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve());
      });
    },
    remove(h) {
      const i = targets.indexOf(h);
      if (i !== -1) targets.splice(i, 1);
    },
    add(h) {
      if (!targets.includes(h)) targets.push(h);
    },
    async close() {
      for (const s of sockets) s.destroy();
      await Promise.all([...servers.values()].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    },
  };
}
