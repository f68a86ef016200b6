import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { request } from 'undici';
import { CONTENT_TYPE_FRAME, encodeHead, parseServerMessage, paths, readFrameHead, type ResponseHead } from '@devtunnel/core/protocol';
import { useHandDrivenServer } from '../helpers/by-hand';
import { CLIENT_BIN, ROOT, runBin, type Child } from '../helpers/child';
import { closeServer, listen } from '../helpers/net';
import { browser, fetchBuffer, startClient, startServer, stateDir, TOKEN, tunnelOn, waitFor, type Fetched } from '../helpers/tunnel';

/**
 * The laptop leg compressed (feature `encode`, docs/protocol.md "Encoded answers"): a real server,
 * a real client and a real local app on 127.0.0.1. The browser is undici's `request`, which never
 * decodes, so each test sees the bytes as the browser gets them.
 */

/** Text that compresses as JavaScript does (3-6 ×), different in every line. */
function script(bytes: number, seed = 0): Buffer {
  const lines: string[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const line = `export const value${seed}_${i} = { id: ${(i * 7919 + seed) % 100_003}, name: "item-${(i * 31).toString(36)}" };\n`;
    lines.push(line);
    size += line.length;
  }
  return Buffer.from(lines.join('')).subarray(0, bytes);
}

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** What the local app serves: each route one case of the rules. */
interface App {
  port: number;
  /** Headers of the requests the app saw, by path. */
  seen: Map<string, IncomingMessage['headers']>;
  /** The open event stream, once a browser asked for it. */
  events: Promise<ServerResponse>;
  /** A paused download: how much the app wrote, and whether it waits for the way to drain. */
  endless: { written: number; waiting: boolean; res: ServerResponse | undefined };
  close(): Promise<void>;
}

const JS_20K = script(20_000, 1);
const JS_5K = script(5_000, 2);
const JS_500 = script(500, 3);
const BIG = script(6 * 1024 * 1024, 4);
const PRE_GZIPPED = gzipSync(script(8_000, 5));

async function startApp(): Promise<App> {
  let eventStream!: (res: ServerResponse) => void;
  const app: Omit<App, 'port' | 'close'> = {
    seen: new Map(),
    events: new Promise((resolve) => (eventStream = resolve)),
    endless: { written: 0, waiting: false, res: undefined },
  };
  const server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    app.seen.set(url.pathname, req.headers);
    const js = { 'content-type': 'text/javascript; charset=utf-8' };
    switch (url.pathname) {
      case '/app.js':
      case '/strong.js': {
        // A dev server that compares its strong tag as a string, as many do.
        const etag = '"app-v1"';
        if (req.headers['if-none-match'] === etag) return void res.writeHead(304, { etag }).end();
        return void res.writeHead(200, { ...js, etag, 'content-length': JS_20K.length, vary: 'Origin' }).end(JS_20K);
      }
      case '/five.js':
        return void res.writeHead(200, { ...js, 'content-length': JS_5K.length }).end(JS_5K);
      case '/small.js':
        return void res.writeHead(200, { ...js, 'content-length': JS_500.length }).end(JS_500);
      case '/picture.png':
        return void res.writeHead(200, { 'content-type': 'image/png', 'content-length': JS_20K.length }).end(JS_20K);
      case '/no-transform.js':
        return void res.writeHead(200, { ...js, 'cache-control': 'no-cache, no-transform' }).end(JS_20K);
      case '/gzipped.json':
        return void res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': PRE_GZIPPED.length }).end(PRE_GZIPPED);
      case '/range.js': {
        const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
        if (!m) return void res.writeHead(200, { ...js, 'accept-ranges': 'bytes' }).end(JS_20K);
        const [from, to] = [Number(m[1]), Number(m[2])];
        return void res.writeHead(206, { ...js, 'content-range': `bytes ${from}-${to}/${JS_20K.length}`, 'content-length': to - from + 1 }).end(JS_20K.subarray(from, to + 1));
      }
      case '/big.js': {
        // Streamed (above the whole-answer size, no Content-Length), with backpressure.
        res.writeHead(200, js);
        let at = 0;
        const pump = () => {
          while (at < BIG.length) {
            const part = BIG.subarray(at, at + 64 * 1024);
            at += part.length;
            if (!res.write(part)) return void res.once('drain', pump);
          }
          res.end();
        };
        return pump();
      }
      case '/endless.js': {
        // Writes until the way is full, and again whenever it drains: never ends by itself. Text
        // that compresses little (base64), so that what the sockets on the way hold, encoded, stays
        // close to what the app wrote.
        res.writeHead(200, js);
        app.endless.res = res;
        const pump = () => {
          app.endless.waiting = false;
          while (!res.destroyed) {
            const part = Buffer.from(randomBytes(48 * 1024).toString('base64'));
            app.endless.written += part.length;
            if (!res.write(part)) {
              app.endless.waiting = true;
              return void res.once('drain', pump);
            }
          }
        };
        return pump();
      }
      case '/events':
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        res.flushHeaders();
        return eventStream(res);
      default:
        return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not here');
    }
  });
  const port = await listen(server);
  return {
    ...app,
    port,
    close: () => {
      app.endless.res?.destroy();
      return closeServer(server);
    },
  };
}

/** The body as the browser reads it, decoded by its Content-Encoding. */
function decoded(res: Fetched): Buffer {
  const coding = res.headers['content-encoding'];
  if (coding === 'br') return brotliDecompressSync(res.body);
  if (coding === 'gzip') return gunzipSync(res.body);
  expect(coding).toBeUndefined();
  return res.body;
}

describe.each([
  ['on streams', 'auto'],
  ['on long polls', 'poll'],
] as const)('encoded answers, %s', (_name, transport) => {
  let app: App;
  let server: Awaited<ReturnType<typeof startServer>>;
  let client: Awaited<ReturnType<typeof startClient>>;
  let base: string;
  const dispatcher = browser();
  const get = (path: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET') => fetchBuffer(`${base}${path}`, { dispatcher, headers, method });

  beforeAll(async () => {
    app = await startApp();
    ({ server, client, base } = await tunnelOn(app.port, transport));
  });

  afterAll(async () => {
    await client?.close();
    await server?.close();
    await app?.close();
    await (dispatcher as { close(): Promise<void> }).close();
  });

  test('a browser that accepts br gets br bytes that decode to what the app sent, with Vary and a weak ETag', async () => {
    const res = await get('/app.js', { 'accept-encoding': 'gzip, deflate, br, zstd' });
    expect(res.status).toBe(200);
    expect(res.headers['content-encoding']).toBe('br');
    expect(res.headers.vary).toBe('Origin, Accept-Encoding');
    expect(res.headers.etag).toBe('W/"app-v1-dtz"');
    expect(Number(res.headers['content-length'])).toBe(res.body.length);
    expect(res.body.length).toBeLessThan(JS_20K.length / 3);
    expect(brotliDecompressSync(res.body).equals(JS_20K)).toBe(true);
    // The app itself saw the browser's own Accept-Encoding.
    expect(app.seen.get('/app.js')!['accept-encoding']).toBe('gzip, deflate, br, zstd');
  });

  test('one that accepts gzip only gets gzip; one that accepts neither gets identity with its length', async () => {
    const gz = await get('/app.js', { 'accept-encoding': 'gzip;q=1.0, br;q=0' });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gz.body).equals(JS_20K)).toBe(true);
    const neither: Array<Record<string, string>> = [{}, { 'accept-encoding': 'identity' }, { 'accept-encoding': 'deflate' }, { 'accept-encoding': '' }];
    for (const headers of neither) {
      const plain = await get('/app.js', headers);
      expect(plain.headers['content-encoding']).toBeUndefined();
      expect(plain.headers['content-length']).toBe(String(JS_20K.length));
      expect(plain.body.equals(JS_20K)).toBe(true);
    }
  });

  test('small answers travel as they are; from 1 KiB they are encoded for a browser that accepts it', async () => {
    const small = await get('/small.js', { 'accept-encoding': 'br' });
    expect([small.headers['content-encoding'], small.headers['content-length'], small.headers.vary]).toEqual([undefined, '500', undefined]);
    expect(small.body.equals(JS_500)).toBe(true);
    const five = await get('/five.js', { 'accept-encoding': 'br' });
    expect(five.headers['content-encoding']).toBe('br');
    expect(decoded(five).equals(JS_5K)).toBe(true);
    // Below 16 KiB, an answer the server would have to decode is not worth encoding.
    const plain = await get('/five.js');
    expect(plain.headers['content-length']).toBe(String(JS_5K.length));
    expect(plain.body.equals(JS_5K)).toBe(true);
  });

  test('answers the app encoded, images, no-transform: untouched', async () => {
    const pre = await get('/gzipped.json', { 'accept-encoding': 'br' });
    // Passed as the app sent it, even to a browser that did not ask for gzip: the app's choice.
    expect([pre.headers['content-encoding'], pre.headers.vary]).toEqual(['gzip', undefined]);
    expect(pre.body.equals(PRE_GZIPPED)).toBe(true);
    const png = await get('/picture.png', { 'accept-encoding': 'br' });
    expect(png.headers['content-encoding']).toBeUndefined();
    expect(png.body.equals(JS_20K)).toBe(true);
    const kept = await get('/no-transform.js', { 'accept-encoding': 'br' });
    expect(kept.headers['content-encoding']).toBeUndefined();
    expect(kept.body.equals(JS_20K)).toBe(true);
  });

  test('HEAD, 304 and ranges: untouched', async () => {
    const head = await get('/app.js', { 'accept-encoding': 'br' }, 'HEAD');
    expect([head.status, head.headers['content-encoding'], head.headers['content-length'], head.headers.etag, head.body.length]).toEqual([200, undefined, String(JS_20K.length), '"app-v1"', 0]);
    const range = await get('/range.js', { 'accept-encoding': 'br', range: 'bytes=100-199' });
    expect([range.status, range.headers['content-encoding'], range.headers['content-range']]).toEqual([206, undefined, `bytes 100-199/${JS_20K.length}`]);
    expect(range.body.equals(JS_20K.subarray(100, 200))).toBe(true);
  });

  test("a conditional request with the weak ETag reaches the app with its own tag, and gets 304", async () => {
    const first = await get('/strong.js', { 'accept-encoding': 'br' });
    expect(first.headers.etag).toBe('W/"app-v1-dtz"');
    const again = await get('/strong.js', { 'accept-encoding': 'br', 'if-none-match': first.headers.etag as string });
    expect(app.seen.get('/strong.js')!['if-none-match']).toBe('"app-v1"');
    expect([again.status, again.headers.etag, again.body.length]).toEqual([304, 'W/"app-v1-dtz"', 0]);
    // A tag the app does not know still gets the whole answer.
    expect((await get('/strong.js', { 'accept-encoding': 'br', 'if-none-match': 'W/"other-dtz"' })).status).toBe(200);
  });

  test.each(['br', 'gzip', undefined] as const)('a 6 MiB streamed answer round-trips intact (%s)', async (coding) => {
    const res = await get('/big.js', coding ? { 'accept-encoding': coding } : {});
    expect(res.headers['content-encoding']).toBe(coding);
    // The server computes framing: an encoded or decoded stream is chunked.
    expect(res.headers['content-length']).toBeUndefined();
    if (coding) expect(res.body.length).toBeLessThan(BIG.length / 3);
    expect(sha(decoded(res))).toBe(sha(BIG));
  });

  test('the inspector keeps what went up and shows it decoded', async () => {
    await get('/five.js?inspected', { 'accept-encoding': 'br' });
    await get('/big.js?inspected', { 'accept-encoding': 'gzip' });
    const inspector = new URL(client.inspector!);
    const call = async (path: string) => (await fetchBuffer(`${inspector.origin}${path}`, { dispatcher, headers: { authorization: `Bearer ${inspector.searchParams.get('key')}` } })).json<any>();
    type Kept = { seq: number; url: string; state: string };
    let list: Kept[] = [];
    await waitFor(async () => (list = (await call('/api/requests')).requests as Kept[]).filter((r) => r.url.endsWith('?inspected') && r.state === 'done').length === 2, 10_000, 'both in the inspector');
    const whole = await call(`/api/requests/${list.find((r) => r.url === '/five.js?inspected')!.seq}`);
    expect(whole.responseHeaders).toEqual(expect.arrayContaining([['content-encoding', 'br']]));
    expect(whole.responseBody).toMatchObject({ kind: 'text', cut: false, note: expect.stringMatching(/^br-encoded/) });
    expect(whole.responseBody.text).toBe(JS_5K.toString());
    const streamed = await call(`/api/requests/${list.find((r) => r.url === '/big.js?inspected')!.seq}`);
    expect(streamed.responseBody).toMatchObject({ kind: 'text', cut: true, note: expect.stringMatching(/^gzip-encoded/) });
    expect(BIG.toString().startsWith(streamed.responseBody.text)).toBe(true);
    expect(streamed.responseBody.text.length).toBeGreaterThan(64 * 1024);
  });

  test('an event stream is never encoded, and each event arrives as the app sends it', async () => {
    const res = await request(`${base}/events`, { dispatcher, headers: { 'accept-encoding': 'gzip, br' } });
    expect([res.statusCode, res.headers['content-type'], res.headers['content-encoding']]).toEqual([200, 'text/event-stream', undefined]);
    const stream = await app.events;
    const reader = res.body[Symbol.asyncIterator]();
    const next = async () => Buffer.from((await reader.next()).value as Uint8Array).toString();
    stream.write(`data: ${'first '.repeat(400)}\n\n`);
    let text = '';
    while (!text.endsWith('\n\n')) text += await next();
    expect(text).toBe(`data: ${'first '.repeat(400)}\n\n`);
    stream.write('data: second\n\n');
    expect(await next()).toBe('data: second\n\n');
    stream.end();
    expect((await reader.next()).done).toBe(true);
  });
});

describe('encoded answers: backpressure', () => {
  test.each([
    ['passed on', 'br'],
    ['decoded by the server', undefined],
  ] as const)('a browser that stops reading stops the app, the body %s', async (_name, accept) => {
    const headers: Record<string, string> = accept ? { 'accept-encoding': accept } : {};
    const app = await startApp();
    const server = await startServer();
    const client = await startClient(server, { port: app.port });
    const dispatcher = browser();
    try {
      // Raw node:http so that nothing reads ahead once the test stops reading.
      const res = await new Promise<IncomingMessage>((resolve, reject) => httpRequest(`http://127.0.0.1:${client.info.port}/endless.js`, { headers }, resolve).once('error', reject).end());
      expect(res.headers['content-encoding']).toBe(headers['accept-encoding']);
      await once(res, 'readable');
      res.pause();
      // The app writes until every buffer on the way is full, then waits for a drain that does not
      // come while the browser reads nothing: what it wrote is bounded by those buffers (sockets,
      // zlib's, the pipes'), not by the body, which has no end.
      let quiet = 0;
      let last = -1;
      await waitFor(
        () => {
          quiet = app.endless.waiting && app.endless.written === last ? quiet + 1 : 0;
          last = app.endless.written;
          return quiet >= 25;
        },
        60_000,
        'the app to wait for a drain that does not come',
      );
      expect(app.endless.written).toBeLessThan(64 * 1024 * 1024);
      res.destroy();
    } finally {
      await client.close();
      await server.close();
      await app.close();
      await (dispatcher as { close(): Promise<void> }).close();
    }
  }, 90_000);
});

describe('encoded answers: switched off, and older peers', () => {
  let app: App;
  const dispatcher = browser();
  beforeAll(async () => {
    app = await startApp();
  });
  afterAll(async () => {
    await app.close();
    await (dispatcher as { close(): Promise<void> }).close();
  });

  test('with compress: false nothing is encoded', async () => {
    const server = await startServer();
    const client = await startClient(server, { port: app.port, compress: false });
    try {
      for (const path of ['/app.js', '/big.js']) {
        const res = await fetchBuffer(`http://127.0.0.1:${client.info.port}${path}`, { dispatcher, headers: { 'accept-encoding': 'br, gzip' } });
        expect([res.headers['content-encoding'], res.headers.vary]).toEqual([undefined, path === '/app.js' ? 'Origin' : undefined]);
        expect(res.body.equals(path === '/app.js' ? JS_20K : BIG)).toBe(true);
      }
      expect((await fetchBuffer(`http://127.0.0.1:${client.info.port}/app.js`, { dispatcher })).headers.etag).toBe('"app-v1"');
    } finally {
      await client.close();
      await server.close();
    }
  });

  test.each([
    ['--no-compress', ['--no-compress'], {}],
    ['DEVTUNNEL_COMPRESS=false', [], { DEVTUNNEL_COMPRESS: 'false' }],
    ['the default', [], {}],
  ] as const)('the CLI with %s', async (name, args, env) => {
    const server = await startServer();
    const cli = runBin(CLIENT_BIN, ['--server', server.url, '--port', String(app.port), '--host', '127.0.0.1', '--state-dir', stateDir(), '--no-inspect', '--json', ...args], { DEVTUNNEL_TOKEN: TOKEN, ...env });
    try {
      const { url } = JSON.parse(await cli.waitForLine((l) => l.includes('"registered"'))) as { url: string };
      const res = await fetchBuffer(`${url}/app.js`, { dispatcher, headers: { 'accept-encoding': 'br' } });
      expect(res.headers['content-encoding']).toBe(name === 'the default' ? 'br' : undefined);
    } finally {
      await cli.stop('SIGINT');
      await server.close();
    }
  });

  test('a server without the feature never gets an encoded answer', async () => {
    const server = await startServer();
    // An older server: the same one, its registration answer without `encode`.
    const older = createServer((req, res) => {
      const upstream = httpRequest(`${server.url}${req.url}`, { method: req.method, headers: req.headers }, (answer) => {
        const registration = req.method === 'POST' && req.url === paths.tunnels && answer.statusCode === 201;
        if (!registration) {
          res.writeHead(answer.statusCode!, answer.headers);
          return void answer.pipe(res);
        }
        const chunks: Buffer[] = [];
        answer.on('data', (c: Buffer) => chunks.push(c));
        answer.on('end', () => {
          const body = JSON.parse(Buffer.concat(chunks).toString()) as { features: string[] };
          body.features = body.features.filter((f) => f !== 'encode');
          const text = JSON.stringify(body);
          res.writeHead(201, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
        });
      });
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    });
    const olderPort = await listen(older);
    const client = await startClient({ url: `http://127.0.0.1:${olderPort}` }, { port: app.port, transport: 'poll' });
    try {
      for (const path of ['/app.js', '/big.js']) {
        const res = await fetchBuffer(`http://127.0.0.1:${client.info.port}${path}`, { dispatcher, headers: { 'accept-encoding': 'br, gzip' } });
        expect(res.headers['content-encoding']).toBeUndefined();
        expect(res.body.equals(path === '/app.js' ? JS_20K : BIG)).toBe(true);
      }
    } finally {
      await client.close();
      older.closeAllConnections();
      await closeServer(older);
      await server.close();
    }
  });
});

describe('encoded answers from a client played by hand', () => {
  const hand = useHandDrivenServer('encoder');
  const { control, register, browse } = hand;

  async function pollOne(session: { id: string; secret: string }): Promise<string> {
    const res = await request(`${hand.server.url}${paths.poll(session.id)}`, { dispatcher: control, headers: { authorization: `Bearer ${session.secret}` } });
    expect(res.statusCode).toBe(200);
    const message = parseServerMessage(await readFrameHead(res.body));
    await res.body.dump();
    return message.id;
  }

  const upload = (session: { id: string; secret: string }, path: string, body: Buffer | Readable, extra: Record<string, string> = {}) =>
    request(`${hand.server.url}${path}`, {
      dispatcher: control,
      method: 'POST',
      headers: { authorization: `Bearer ${session.secret}`, 'content-type': CONTENT_TYPE_FRAME, ...extra },
      body,
    }).then(async (res) => {
      await res.body.dump();
      return res.statusCode;
    });

  const head = (extra: Partial<ResponseHead>): ResponseHead => ({ status: 200, headers: [['content-type', 'text/javascript'], ['content-encoding', 'gzip']], bodyLength: null, ...extra });

  test('a whole body that does not decode: the browser gets 502 bad_response, never garbage', async () => {
    const session = await register(['batch', 'encode']);
    const answer = browse(session, '/x.js');
    const id = await pollOne(session);
    const garbage = Buffer.from('this is not gzip at all, whatever the head says');
    expect(await upload(session, paths.responses(session.id), Buffer.concat([encodeHead(head({ id, bodyLength: garbage.length, coding: 'gzip' })), garbage]))).toBe(204);
    expect(await answer).toMatchObject({ status: 502, code: 'bad_response' });
  });

  test('a streamed body that does not decode: the browser connection is cut, the upload refused', async () => {
    const session = await register(['batch', 'encode']);
    const cut = new Promise<{ status: number; error: unknown }>((resolve) => {
      httpRequest(`http://127.0.0.1:${session.port}/y.js`, (res) => {
        res.on('data', () => {});
        res.once('end', () => resolve({ status: res.statusCode!, error: undefined }));
        res.once('error', (error) => resolve({ status: res.statusCode!, error }));
        res.once('aborted', () => resolve({ status: res.statusCode!, error: new Error('aborted') }));
      })
        .once('error', (error) => resolve({ status: 0, error }))
        .end();
    });
    const id = await pollOne(session);
    const good = gzipSync(script(50_000));
    async function* body() {
      yield encodeHead(head({ coding: 'gzip' }));
      yield good.subarray(0, 2000);
      yield Buffer.from('garbage in the middle of a gzip stream, which zlib refuses');
    }
    expect(await upload(session, paths.response(session.id, id), Readable.from(body()))).toBe(400);
    const outcome = await cut;
    expect(outcome.status).toBe(200);
    expect(outcome.error).toBeDefined();
  });

  test('an older client (no coding in its heads) has its answers passed as they are, its own Content-Encoding too', async () => {
    const session = await register(['batch']);
    const answer = fetchBuffer(`http://127.0.0.1:${session.port}/z.json`, { dispatcher: hand.browsers });
    const id = await pollOne(session);
    const body = gzipSync('{"made":"by the app"}');
    expect(await upload(session, paths.responses(session.id), Buffer.concat([encodeHead(head({ id, bodyLength: body.length })), body]))).toBe(204);
    const res = await answer;
    expect([res.status, res.headers['content-encoding']]).toEqual([200, 'gzip']);
    expect(res.body.equals(body)).toBe(true);
  });
});

describe('encoded answers through a real Vite dev server', () => {
  let vite: Child;
  let server: Awaited<ReturnType<typeof startServer>>;
  let client: Awaited<ReturnType<typeof startClient>>;
  const dispatcher = browser();

  beforeAll(async () => {
    const root = mkdtempSync(join(tmpdir(), 'devtunnel-vite-encode-'));
    cpSync(join(ROOT, 'test/fixtures/vite-hmr'), root, { recursive: true });
    writeFileSync(join(root, 'large.js'), script(30_000, 9).toString());
    vite = runBin(join(ROOT, 'test/helpers/vite-server.mjs'), [root]);
    const { port } = JSON.parse(await vite.waitForLine((l) => l.startsWith('{'), 20_000)) as { port: number };
    server = await startServer();
    client = await startClient(server, { port });
  }, 30_000);

  afterAll(async () => {
    await client?.close();
    await server?.close();
    await vite?.stop('SIGTERM');
    await (dispatcher as { close(): Promise<void> }).close();
  });

  test.each(['/large.js', '/@vite/client'])('%s: br to the browser, and a conditional request with its ETag gets 304 from Vite', async (path) => {
    const url = `http://127.0.0.1:${client.info.port}${path}`;
    const accept = { 'accept-encoding': 'gzip, deflate, br, zstd' };
    const first = await fetchBuffer(url, { dispatcher, headers: accept });
    expect([first.status, first.headers['content-encoding']]).toEqual([200, 'br']);
    // Vite's own Vary (Origin), with Accept-Encoding merged in.
    expect(first.headers.vary).toMatch(/(^|, )Accept-Encoding$/);
    const text = brotliDecompressSync(first.body).toString();
    if (path === '/large.js') expect(text).toContain('export const value9_0');
    else expect(text).toContain('wsToken');
    const etag = first.headers.etag as string;
    expect(etag).toMatch(/^W\//);
    const again = await fetchBuffer(url, { dispatcher, headers: { ...accept, 'if-none-match': etag } });
    expect([again.status, again.body.length]).toEqual([304, 0]);
  });
});
