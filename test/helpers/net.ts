import { once } from 'node:events';
import type { Server } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';

/** Listens on 127.0.0.1 port 0 and returns the port. */
export async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/**
 * A port on 127.0.0.1 where nothing listens, for "connection refused" cases. It is taken below
 * the kernel's ephemeral range (which port 0 draws from), so no server another test starts
 * meanwhile can land on it, as it could on a port 0 listener that was just closed. Bounded tries.
 */
export async function refusedPort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const probe = createNetServer();
    const free = await new Promise<boolean>((resolve) => {
      probe.once('error', () => resolve(false));
      probe.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (free) await new Promise((resolve) => probe.close(resolve));
    if (free) return port;
  }
  throw new Error('no free port found in 20000-32000 after 50 tries');
}

export async function closeServer(server: Server): Promise<void> {
  if (!server.listening) return;
  const closed = once(server, 'close');
  server.close();
  server.closeAllConnections();
  await closed;
}

export interface RawResult {
  /** Everything the server sent. */
  text: string;
  /** Status codes of every response, in order. */
  statuses: number[];
  /** Whether the server closed the connection (rather than our timeout ending the wait). */
  closedByServer: boolean;
}

/**
 * Writes exact bytes to a port and collects what comes back until the server closes the
 * connection or `idleMs` pass without a byte (bounded either way). The default is long enough
 * for a loaded machine to answer through a tunnel; pass a short one for an exchange that ends by
 * going quiet on a kept-alive connection.
 */
export async function rawExchange(port: number, bytes: string | Buffer | Array<string | Buffer>, idleMs = 5_000): Promise<RawResult> {
  const socket: Socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const chunks: Buffer[] = [];
  let closedByServer = false;
  const done = new Promise<void>((resolve) => {
    let timer = setTimeout(finish, idleMs);
    function finish() {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    }
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      clearTimeout(timer);
      timer = setTimeout(finish, idleMs);
    });
    socket.on('end', () => {
      closedByServer = true;
      finish();
    });
    socket.on('close', () => {
      closedByServer ||= !socket.destroyed || chunks.length > 0;
      finish();
    });
    socket.on('error', () => finish());
  });
  for (const part of Array.isArray(bytes) ? bytes : [bytes]) socket.write(part);
  await done;
  const text = Buffer.concat(chunks).toString('latin1');
  const statuses = [...text.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]));
  return { text, statuses, closedByServer };
}
