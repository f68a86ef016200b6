import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { endToEndFlat, pairsFromRaw } from '@devtunnel/core/protocol';
import { HttpError } from '../../src/errors';
import { relayUpgrade } from '../../src/relay/upgrade';
import { closeServer, listen, refusedPort } from '../../../../test/helpers/net';

/**
 * The upgrade relay between a real browser-side server and a real app, both node:http on
 * 127.0.0.1:0; the browser is a raw socket, so every byte on its connection is seen.
 */

const servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map(closeServer));
});

interface Front {
  port: number;
  closed: Array<{ status: number; bytesIn: number; bytesOut: number }>;
  failed: Error[];
  /** Resolves when the relay reported the browser's connection closed. */
  whenClosed: Promise<void>;
}

/** A server relaying every upgrade to `appPort`. */
async function front(appPort: number): Promise<Front> {
  let onClosed!: () => void;
  const f: Front = { port: 0, closed: [], failed: [], whenClosed: new Promise((r) => (onClosed = r)) };
  const server = createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    sockets.push(socket);
    relayUpgrade(req, socket, head, {
      origin: new URL(`http://127.0.0.1:${appPort}`),
      path: req.url!,
      headers: endToEndFlat(pairsFromRaw(req.rawHeaders)),
      timeoutMs: 10_000,
      head(status, raw) {
        const flat = [...endToEndFlat(pairsFromRaw(raw)), 'X-Relayed', String(status)];
        const i = raw.findIndex((h, n) => n % 2 === 0 && h.toLowerCase() === 'content-length');
        return i === -1 ? flat : [...flat, 'Content-Length', raw[i + 1]!];
      },
      failed(error) {
        f.failed.push(error);
        return new HttpError('upstream_unreachable', 'The app cannot be reached.');
      },
      closed(result) {
        f.closed.push(result);
        onClosed();
      },
    });
  });
  servers.push(server);
  f.port = await listen(server);
  return f;
}

async function app(setup: (server: Server) => void): Promise<number> {
  const server = createServer();
  setup(server);
  servers.push(server);
  return listen(server);
}

/** A browser's raw connection that sent an upgrade request (and `extra` bytes right after it). */
async function browser(port: number, extra = ''): Promise<{ socket: Socket; received: () => string }> {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  await once(socket, 'connect');
  let text = '';
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  socket.on('error', () => {});
  socket.write(`GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\nX-Keep: 1\r\n\r\n${extra}`);
  return { socket, received: () => text };
}

/** Waits until `received()` contains `what`. */
async function until(socket: Socket, received: () => string, what: string): Promise<void> {
  while (!received().includes(what)) await once(socket, 'data');
}

test('a 101 opens a channel both ways, bytes sent with the request included; either end closing ends both', async () => {
  let appSocket!: Socket;
  const appPort = await app((server) =>
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      appSocket = socket;
      sockets.push(socket);
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\nX-App: ${req.headers['x-keep']}\r\n\r\nhello `);
      if (head.length) socket.write(`echo:${head.toString()}`);
      socket.on('data', (c: Buffer) => socket.write(`echo:${c.toString()}`));
      // As a WebSocket server does when its peer is gone.
      socket.on('end', () => socket.end());
    }),
  );
  const f = await front(appPort);
  const { socket, received } = await browser(f.port, 'early');
  await until(socket, received, 'echo:early');
  expect(received()).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\nX-App: 1\r\nX-Relayed: 101\r\n\r\nhello echo:early$/);
  socket.write('ping');
  await until(socket, received, 'echo:ping');
  // The browser goes: the app sees its side end, and the relay reports the connection over.
  socket.destroy();
  await Promise.all([once(appSocket, 'end'), f.whenClosed]);
  expect(f.closed).toEqual([{ status: 101, bytesIn: 'early'.length + 'ping'.length, bytesOut: expect.any(Number) }]);

  // The app goes: the browser's connection closes.
  const again = await browser(f.port);
  await until(again.socket, again.received, 'hello');
  const browserClosed = once(again.socket, 'close');
  appSocket.destroy();
  await browserClosed;
});

test('a refusal goes back as it is, its length included, then the connection closes', async () => {
  const appPort = await app((server) => server.on('request', (_req, res) => res.writeHead(426, { 'content-length': 4, 'x-why': 'old' }).end('nope')));
  const f = await front(appPort);
  const { socket, received } = await browser(f.port);
  await Promise.all([once(socket, 'close'), f.whenClosed]);
  expect(received()).toMatch(/^HTTP\/1\.1 426 Upgrade Required\r\nConnection: close\r\n/);
  expect(received()).toMatch(/\r\nx-why: old\r\n/i);
  expect(received()).toMatch(/\r\ncontent-length: 4\r\n/i);
  expect(received()).toMatch(/\r\n\r\nnope$/);
  expect(f.closed.map((c) => c.status)).toEqual([426]);
});

test('the browser leaving before the answer closes the connection to the app', async () => {
  let arrived!: (socket: Socket) => void;
  const atApp = new Promise<Socket>((r) => (arrived = r));
  const appPort = await app((server) =>
    server.on('upgrade', (_req, socket: Socket) => {
      sockets.push(socket);
      socket.resume();
      arrived(socket);
    }),
  );
  const f = await front(appPort);
  const { socket } = await browser(f.port);
  const appSocket = await atApp;
  socket.resetAndDestroy();
  await Promise.all([once(appSocket, 'end'), f.whenClosed]);
  expect(f.closed.map((c) => c.status)).toEqual([0]);
});

test('an app that cannot be reached: the coded error, then the connection closes', async () => {
  const deadPort = await refusedPort();
  const f = await front(deadPort);
  const { socket, received } = await browser(f.port);
  await once(socket, 'close');
  expect(received()).toMatch(/^HTTP\/1\.1 502 Bad Gateway\r\nConnection: close\r\n/);
  expect(received()).toContain('upstream_unreachable');
  expect(f.failed.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['ECONNREFUSED']);
});
