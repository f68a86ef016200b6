import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { request } from 'undici';
import WebSocket, { WebSocketServer, type RawData } from 'ws';
import { CLIENT_BIN, runBin } from '../helpers/child';
import { closeServer, listen } from '../helpers/net';
import { patientTimings, startClient, startServer, stateDir, TOKEN, waitFor } from '../helpers/tunnel';

/** A real `ws` server as the local app: echoes, and reports what it saw. */
async function startWsApp() {
  const server = createServer((_req, res) => res.end('plain http'));
  const seen: Array<{ url: string; protocol: string; origin: string | undefined; host: string | undefined }> = [];
  const closes: Array<{ code: number; reason: string }> = [];
  const wss = new WebSocketServer({
    server,
    handleProtocols: (protocols) => (protocols.has('vite-hmr') ? 'vite-hmr' : [...protocols][0] ?? false),
    verifyClient: ({ req }: { req: IncomingMessage }, done: (ok: boolean, code?: number, message?: string) => void) => {
      if (req.url?.startsWith('/forbidden')) return done(false, 403, 'Forbidden here');
      done(true);
    },
  });
  wss.on('connection', (ws, req) => {
    seen.push({ url: req.url!, protocol: ws.protocol, origin: req.headers.origin, host: req.headers.host });
    if (req.url === '/flood') {
      // 128 numbered messages of 1 MiB, sent as fast as the socket takes them (at most 16 MiB
      // waiting in the app), then "done": what a busy dev server does to a slow browser.
      let seq = 0;
      const pump = () => {
        while (seq < 128 && ws.readyState === WebSocket.OPEN && ws.bufferedAmount < 16 * 1024 * 1024) {
          const message = Buffer.alloc(1024 * 1024);
          message.writeUInt32BE(seq++, 0);
          ws.send(message);
        }
        if (ws.readyState !== WebSocket.OPEN) return;
        if (seq < 128) setTimeout(pump, 20);
        else ws.send('done');
      };
      pump();
    }
    ws.on('message', (data, isBinary) => {
      const text = isBinary ? undefined : data.toString();
      if (text?.startsWith('close:')) return ws.close(Number(text.slice(6)), 'app says bye');
      if (text === 'hash?') return;
      ws.send(data, { binary: isBinary });
    });
    ws.on('close', (code, reason) => closes.push({ code, reason: reason.toString() }));
  });
  const port = await listen(server);
  return {
    port,
    wss,
    seen,
    closes,
    async close() {
      for (const c of wss.clients) c.terminate();
      wss.close();
      await closeServer(server);
    },
  };
}

function open(url: string, protocols?: string | string[], options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, protocols, options);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`status ${res.statusCode}`), { status: res.statusCode, headers: res.headers })));
  });
}

function nextMessage(ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve, reject) => {
    ws.once('message', (data: RawData, isBinary: boolean) => resolve({ data: Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer), isBinary }));
    ws.once('close', () => reject(new Error('closed before a message')));
  });
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve({ code: 1006, reason: '' });
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

describe('WebSockets and other upgrades through the tunnel', () => {
  let app: Awaited<ReturnType<typeof startWsApp>>;
  let server: Awaited<ReturnType<typeof startServer>>;
  let client: Awaited<ReturnType<typeof startClient>>;
  let ws: string;
  const cleanup: Array<() => Promise<unknown> | unknown> = [];

  beforeAll(async () => {
    app = await startWsApp();
    server = await startServer();
    client = await startClient(server, { port: app.port });
    ws = `ws://127.0.0.1:${client.info.port}`;
  });
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!();
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
    await app?.close();
  });

  async function socket(path = '/', protocols?: string | string[], options?: WebSocket.ClientOptions) {
    const s = await open(`${ws}${path}`, protocols, options);
    cleanup.push(() => s.terminate());
    return s;
  }

  test('text and binary messages both ways; path, query, subprotocol, Origin and Host arrive intact', async () => {
    const s = await socket('/hmr/path?token=abc123', ['vite-hmr', 'other'], { origin: 'https://shop.test.example.com', headers: { host: 'shop.test.example.com' } });
    expect(s.protocol).toBe('vite-hmr');
    expect(app.seen.at(-1)).toEqual({ url: '/hmr/path?token=abc123', protocol: 'vite-hmr', origin: 'https://shop.test.example.com', host: 'shop.test.example.com' });
    s.send('hello');
    expect(await nextMessage(s)).toEqual({ data: Buffer.from('hello'), isBinary: false });
    const bytes = randomBytes(1000);
    s.send(bytes);
    expect(await nextMessage(s)).toEqual({ data: bytes, isBinary: true });
  });

  test('a second tunnel on the same server (its port handed over to the one HTTP server) carries WebSockets too', async () => {
    const second = await startClient(server, { port: app.port, name: 'second-ws' });
    cleanup.push(() => second.close());
    expect(second.info.port).not.toBe(client.info.port);
    const s = await open(`ws://127.0.0.1:${second.info.port}/on-the-second`);
    cleanup.push(() => s.terminate());
    expect(app.seen.at(-1)?.url).toBe('/on-the-second');
    s.send('through the second port');
    expect(await nextMessage(s)).toEqual({ data: Buffer.from('through the second port'), isBinary: false });
  });

  test('a 10 MB message each way keeps its hash', async () => {
    const s = await socket('/big');
    const big = randomBytes(10 * 1024 * 1024);
    s.send(big);
    const echo = await nextMessage(s);
    expect(echo.data.length).toBe(big.length);
    expect(createHash('sha256').update(echo.data).digest('hex')).toBe(createHash('sha256').update(big).digest('hex'));
  });

  test('100 concurrent sockets, each with its own conversation', async () => {
    // A server of its own with patient request deadlines: 100 upgrades wait for polls at once, and
    // a loaded machine must not meet the 3 s deadline, which is not what this test checks.
    const patient = await startServer(patientTimings);
    cleanup.push(() => patient.close());
    const many = await startClient(patient, { port: app.port });
    cleanup.push(() => many.close());
    const sockets = await Promise.all(
      Array.from({ length: 100 }, async (_, i) => {
        const s = await open(`ws://127.0.0.1:${many.info.port}/many/${i}`);
        cleanup.push(() => s.terminate());
        return s;
      }),
    );
    const replies = await Promise.all(
      sockets.map((s, i) => {
        const reply = nextMessage(s);
        s.send(`message ${i}`);
        return reply;
      }),
    );
    replies.forEach((r, i) => expect(r.data.toString()).toBe(`message ${i}`));
    expect(patient.tunnels().find((t) => t.port === many.info.port)).toMatchObject({ state: 'connected' });
  });

  test('close codes travel both ways', async () => {
    const a = await socket('/close-from-browser');
    const appSaw = new Promise<{ code: number; reason: string }>((resolve) => {
      const before = app.closes.length;
      const timer = setInterval(() => {
        if (app.closes.length > before) {
          clearInterval(timer);
          resolve(app.closes.at(-1)!);
        }
      }, 10);
    });
    a.close(4001, 'browser says bye');
    expect(await appSaw).toEqual({ code: 4001, reason: 'browser says bye' });

    const b = await socket('/close-from-app');
    const browserSaw = closed(b);
    b.send('close:4002');
    expect(await browserSaw).toEqual({ code: 4002, reason: 'app says bye' });
  });

  test('a refused upgrade reaches the browser as the app sent it', async () => {
    await expect(open(`${ws}/forbidden`)).rejects.toMatchObject({ status: 403 });
  });

  test('a quiet socket outlives every HTTP idle limit of the tunnel', async () => {
    // The fast test ladder has a 3 s body idle limit, 1 s headers timeout, 5 s keep-alive.
    const s = await socket('/idle');
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    s.send('still here');
    expect((await nextMessage(s)).data.toString()).toBe('still here');
  }, 15_000);

  test('a browser that stops reading for longer than any upload timer: the app is held back, and nothing is lost when it reads again', async () => {
    const s = await socket('/flood');
    const raw = (s as unknown as { _socket: Socket })._socket;
    raw.pause();
    // Longer than the client's 10 s limit for an upload the server has stopped reading.
    await new Promise((resolve) => setTimeout(resolve, 12_000));
    const got: number[] = [];
    const finished = new Promise<string>((resolve) => {
      s.on('message', (data: RawData, isBinary: boolean) => {
        if (!isBinary) return resolve(data.toString());
        got.push((data as Buffer).readUInt32BE(0));
      });
      s.once('close', (code) => resolve(`closed ${code}`));
    });
    raw.resume();
    expect(await finished).toBe('done');
    expect(got).toEqual(Array.from({ length: 128 }, (_, i) => i));
  }, 40_000);

  test('any upgrade protocol, not only WebSocket: after the 101 it is bytes', async () => {
    const raw = createServer();
    raw.on('upgrade', (_req, sock: Socket) => {
      sock.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo/1\r\n\r\n');
      sock.pipe(sock);
    });
    const rawPort = await listen(raw);
    cleanup.push(() => closeServer(raw));
    const other = await startClient(server, { port: rawPort });
    cleanup.push(() => other.close());
    const sock = await new Promise<Socket>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: other.info.port, headers: { connection: 'Upgrade', upgrade: 'echo/1' } });
      req.on('upgrade', (res, s: Socket) => {
        expect(res.statusCode).toBe(101);
        expect(res.headers.upgrade).toBe('echo/1');
        resolve(s);
      });
      req.on('response', (res) => reject(new Error(`status ${res.statusCode}`)));
      req.on('error', reject);
      req.end();
    });
    cleanup.push(() => sock.destroy());
    sock.write('ping-bytes');
    const [echo] = (await once(sock, 'data')) as [Buffer];
    expect(echo.toString()).toBe('ping-bytes');
  });
});

describe('upgraded connections when something disappears', () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  beforeEach(async () => {
    server = await startServer({ disconnectGraceMs: 100 });
  });
  afterEach(async () => {
    await server.close();
  });

  test('the local app dies: the browser socket closes', async () => {
    const app = await startWsApp();
    const client = await startClient(server, { port: app.port });
    try {
      const s = await open(`ws://127.0.0.1:${client.info.port}/doomed`);
      const gone = closed(s);
      for (const c of app.wss.clients) c.terminate();
      expect((await gone).code).toBe(1006);
    } finally {
      await client.close();
      await app.close();
    }
  });

  test('the tunnel client is killed: the browser socket closes', async () => {
    const app = await startWsApp();
    const child = runBin(CLIENT_BIN, ['--server', server.url, '--port', String(app.port), '--host', '127.0.0.1', '--state-dir', stateDir(), '--json'], { DEVTUNNEL_TOKEN: TOKEN });
    try {
      const { port } = JSON.parse(await child.waitForLine((l) => l.includes('"registered"'))) as { port: number };
      const s = await open(`ws://127.0.0.1:${port}/doomed`);
      s.send('x');
      await nextMessage(s);
      const gone = closed(s);
      await child.stop('SIGKILL');
      expect((await gone).code).toBe(1006);
      // The upgraded connection closed at once (its upload broke); the tunnel follows after the grace.
      await waitFor(() => server.tunnels().find((t) => t.port === port)?.state === 'offline', 5_000, 'offline');
    } finally {
      await child.stop('SIGKILL');
      await app.close();
    }
  });

  test('the browser disappears: the local socket closes', async () => {
    const app = await startWsApp();
    const client = await startClient(server, { port: app.port });
    try {
      const s = await open(`ws://127.0.0.1:${client.info.port}/vanishing`);
      const [local] = [...app.wss.clients];
      const localGone = new Promise((resolve) => local!.once('close', resolve));
      s.terminate(); // no close frame: the TCP connection just goes
      await localGone;
    } finally {
      await client.close();
      await app.close();
    }
  });

  test('a client too old to carry upgrades: 501 upgrade_not_supported, at once', async () => {
    // A v1 client from before upgrades registers without `features`.
    const res = await request(`${server.url}/api/v1/tunnels`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ clientId: 'old@laptop:1#0123456789abcdef', name: 'old-client' }),
    });
    const { port } = (await res.body.json()) as { port: number };
    await expect(open(`ws://127.0.0.1:${port}/hmr`)).rejects.toMatchObject({ status: 501, headers: expect.objectContaining({ 'x-devtunnel-error': 'upgrade_not_supported' }) });
  });

  test('the per-tunnel cap refuses one upgrade too many with 503 too_many_upgrades', async () => {
    const capped = await startServer({ maxUpgrades: 2 });
    const app = await startWsApp();
    const client = await startClient(capped, { port: app.port });
    try {
      const url = `ws://127.0.0.1:${client.info.port}/capped`;
      const a = await open(url);
      const b = await open(url);
      await expect(open(url)).rejects.toMatchObject({ status: 503, headers: expect.objectContaining({ 'x-devtunnel-error': 'too_many_upgrades' }) });
      a.terminate();
      b.terminate();
    } finally {
      await client.close();
      await capped.close();
      await app.close();
    }
  });
});

/**
 * A reverse proxy in front of the control API that refuses every upgrade, as corporate proxies
 * that do not allow WebSocket do. The tunnel's byte channel must still work: it uses only
 * ordinary HTTP/1.1 requests between client and server.
 */
describe('through a proxy that refuses WebSocket', () => {
  test('WebSockets still work end to end', async () => {
    const server = await startServer();
    const upgradesSeen: string[] = [];
    const proxy: Server = createServer((req, res) => {
      const upstream = httpRequest({ host: '127.0.0.1', port: server.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode!, r.headers);
        r.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    });
    proxy.on('upgrade', (req: IncomingMessage, sock: Socket) => {
      upgradesSeen.push(req.url!);
      sock.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    });
    const proxyPort = await listen(proxy);
    const app = await startWsApp();
    const client = await startClient({ url: `http://127.0.0.1:${proxyPort}` }, { port: app.port });
    try {
      const s = await open(`ws://127.0.0.1:${client.info.port}/through-a-strict-proxy`);
      s.send('over plain http');
      expect((await nextMessage(s)).data.toString()).toBe('over plain http');
      s.terminate();
      expect(upgradesSeen).toEqual([]);
    } finally {
      await client.close();
      await server.close();
      await closeServer(proxy);
      await app.close();
    }
  });
});

