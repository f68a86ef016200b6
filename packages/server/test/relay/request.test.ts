import { once } from 'node:events';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { Pool } from 'undici';
import { endToEndFlat, pairsFromRaw } from '@devtunnel/core/protocol';
import { relayRequest, type RelayCounts, type Relaying } from '../../src/relay/request';
import { closeServer, listen } from '../../../../test/helpers/net';

/**
 * The request relay between a real browser-side server and a real app, both node:http on
 * 127.0.0.1:0, through an undici Pool as the routes and the internal hop use it.
 */

const MiB = 1024 * 1024;

interface Relay {
  port: number;
  /** What the relay reported, per request in order. */
  failed: Error[];
  cut: Array<'browser' | 'upstream'>;
  counts: RelayCounts[];
  /** Makes the relay refuse the next answer's head. */
  refuseHead: boolean;
  /** Each request's relay and response, in order. */
  relays: Array<{ relaying: Relaying; res: ServerResponse }>;
}

const servers: Server[] = [];
const pools: Pool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.destroy()));
  await Promise.all(servers.splice(0).map(closeServer));
});

/** The app (`handler`) and, in front of it, a server relaying every request to it. */
async function relayTo(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Relay> {
  const app = createServer(handler);
  servers.push(app);
  const pool = new Pool(`http://127.0.0.1:${await listen(app)}`);
  pools.push(pool);
  const relay: Relay = { port: 0, failed: [], cut: [], counts: [], refuseHead: false, relays: [] };
  const front = createServer((req, res) => {
    const headers = endToEndFlat(pairsFromRaw(req.rawHeaders));
    const cl = req.headers['content-length'];
    if (cl !== undefined) headers.push('Content-Length', cl);
    const counts = { bytesIn: 0, bytesOut: 0 };
    relay.counts.push(counts);
    const relaying = relayRequest(pool, req, res, {
      path: req.url!,
      headers,
      hasBody: req.headers['transfer-encoding'] !== undefined || (cl ?? '0') !== '0',
      counts,
      head(_status, raw) {
        if (relay.refuseHead) throw new Error('refused');
        const flat = endToEndFlat(pairsFromRaw(raw));
        const i = raw.findIndex((h, n) => n % 2 === 0 && h.toLowerCase() === 'content-length');
        if (i !== -1) flat.push('Content-Length', raw[i + 1]!);
        return { headers: flat, length: i === -1 ? undefined : Number(raw[i + 1]) };
      },
      failed(error) {
        relay.failed.push(error);
        res.writeHead(502, { 'content-length': 0 }).end();
      },
      cut: (by) => relay.cut.push(by),
    });
    relay.relays.push({ relaying, res });
  });
  servers.push(front);
  relay.port = await listen(front);
  return relay;
}

/** A browser's request on a connection of its own. */
function browse(port: number, path: string, options: { method?: string; body?: Readable; headers?: Record<string, string> } = {}) {
  const req = request({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers, agent: false });
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  // A test that cuts the request itself does not wait for an answer.
  response.catch(() => {});
  if (options.body) options.body.pipe(req);
  else req.end();
  return { req, response };
}

async function text(res: IncomingMessage): Promise<string> {
  let s = '';
  for await (const chunk of res) s += String(chunk);
  return s;
}

/** Resolves when `res` (the app's) closes: true if it finished, false if its request was cut. */
const closed = (res: ServerResponse) => once(res, 'close').then(() => res.writableFinished);

test('the answer comes back as the app sent it, with the bytes counted both ways', async () => {
  const relay = await relayTo(async (req, res) => {
    let n = 0;
    for await (const chunk of req) n += (chunk as Buffer).length;
    res.writeHead(201, { 'x-app': 'yes' }).end(`got ${n}`);
  });
  const body = Buffer.alloc(3 * MiB, 7);
  const { response } = browse(relay.port, '/up', { method: 'POST', body: Readable.from([body]), headers: { 'content-length': String(body.length) } });
  const res = await response;
  expect([res.statusCode, res.headers['x-app'], await text(res)]).toEqual([201, 'yes', `got ${body.length}`]);
  expect(relay.counts).toEqual([{ bytesIn: body.length, bytesOut: `got ${body.length}`.length }]);
});

test('the browser leaving mid-body cancels the request at the app', async () => {
  let appRes!: Promise<boolean>;
  const relay = await relayTo((_req, res) => {
    appRes = closed(res);
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: first\n\n');
  });
  const { req, response } = browse(relay.port, '/events');
  const res = await response;
  await once(res, 'data');
  req.destroy();
  expect(await appRes).toBe(false);
  expect(relay.cut).toEqual(['browser']);
  expect(relay.failed).toEqual([]);
});

/** A relay to an app that takes a request and never answers: when it arrived, whether the app's response finished. */
async function relayToSilentApp() {
  let arrived!: () => void;
  const atApp = new Promise<void>((r) => (arrived = r));
  let appRes!: Promise<boolean>;
  const relay = await relayTo((_req, res) => {
    appRes = closed(res);
    arrived();
  });
  return { relay, atApp, appFinished: () => appRes };
}

test('the browser leaving before the head cancels the request at the app', async () => {
  const { relay, atApp, appFinished } = await relayToSilentApp();
  const { req } = browse(relay.port, '/hang');
  await atApp;
  req.destroy();
  expect(await appFinished()).toBe(false);
  expect([relay.cut, relay.failed]).toEqual([[], []]);
});

test('a failure before the head is the caller\'s to answer; one after it cuts the browser\'s connection', async () => {
  const relay = await relayTo((req, res) => {
    if (req.url === '/gone') return void req.socket.destroy();
    res.writeHead(200, { 'content-length': 100 });
    res.write('only ten..');
    setImmediate(() => req.socket.destroy());
  });
  const gone = await (await browse(relay.port, '/gone').response);
  expect(gone.statusCode).toBe(502);
  expect(relay.failed).toHaveLength(1);

  const short = await browse(relay.port, '/short').response;
  expect(short.statusCode).toBe(200);
  await expect(text(short)).rejects.toThrow();
  expect(relay.cut).toEqual(['upstream']);
});

test('a head the caller refuses is the caller\'s to answer, and the app\'s request is cut', async () => {
  let appRes!: Promise<boolean>;
  const relay = await relayTo((_req, res) => {
    appRes = closed(res);
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('a body that never ends');
  });
  relay.refuseHead = true;
  const res = await browse(relay.port, '/x').response;
  expect(res.statusCode).toBe(502);
  expect(relay.failed.map((e) => e.message)).toEqual(['refused']);
  expect(await appRes).toBe(false);
});

test('stopped by the caller: the app\'s request is cut, and the browser gets what the caller answers', async () => {
  const { relay, atApp, appFinished } = await relayToSilentApp();
  const { response } = browse(relay.port, '/held');
  await atApp;
  const { relaying, res } = relay.relays[0]!;
  relaying.stop();
  res.writeHead(503, { 'content-length': 0 }).end();
  expect((await response).statusCode).toBe(503);
  expect(await appFinished()).toBe(false);
  expect([relay.cut, relay.failed]).toEqual([[], []]);
});

test('HEAD, 204 and 304: no body, the length kept as the representation\'s', async () => {
  const relay = await relayTo((req, res) => {
    const status = Number(req.url!.slice(1)) || 200;
    res.writeHead(status, status === 204 ? {} : { 'content-length': 5, etag: '"v1"' });
    res.end(req.method === 'HEAD' || status !== 200 ? undefined : 'hello');
  });
  const head = await browse(relay.port, '/', { method: 'HEAD' }).response;
  expect([head.statusCode, head.headers['content-length'], await text(head)]).toEqual([200, '5', '']);
  const notModified = await browse(relay.port, '/304').response;
  expect([notModified.statusCode, notModified.headers['content-length'], await text(notModified)]).toEqual([304, '5', '']);
  const noContent = await browse(relay.port, '/204').response;
  expect([noContent.statusCode, await text(noContent)]).toEqual([204, '']);
});

/**
 * Backpressure, told by what one end is ahead of the other rather than by time: the reader reads
 * nothing while the writer makes progress, and only when the writer has been stuck for a moment
 * does it read until it has caught up. If the relay did not hold the writer back, the writer would
 * never be stuck and would get the whole body ahead. A stall seen by mistake (a slow machine) only
 * makes the reader read sooner: the bound can only be met more easily, never missed.
 */
const TOTAL = 128 * MiB;
const CHUNK = Buffer.alloc(64 * 1024, 1);
/** Half of TOTAL: several times what the socket buffers of two loopback connections held here (about 12 MiB). */
const LIMIT = 64 * MiB;

function stallWatch(onStall: () => void) {
  const timer = setTimeout(onStall, 50);
  return { progress: () => timer.refresh(), stop: () => clearTimeout(timer) };
}

test('backpressure on the answer: the app is never far ahead of a browser that does not read', async () => {
  let written = 0;
  let read = 0;
  let ahead = 0;
  let reader: IncomingMessage | undefined;
  const watch = stallWatch(() => reader?.resume());
  const relay = await relayTo((_req, res) => {
    res.writeHead(200, { 'content-length': TOTAL });
    const pump = () => {
      while (written < TOTAL) {
        written += CHUNK.length;
        ahead = Math.max(ahead, written - read);
        watch.progress();
        if (!res.write(CHUNK)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  reader = await browse(relay.port, '/big').response;
  reader.pause();
  reader.on('data', (chunk: Buffer) => {
    read += chunk.length;
    // Caught up: stop reading again, unless the app is done writing.
    if (written - read < 4 * MiB && written < TOTAL) reader!.pause();
  });
  await once(reader, 'end');
  watch.stop();
  expect(read).toBe(TOTAL);
  expect(ahead).toBeLessThan(LIMIT);
});

test('backpressure on the upload: the browser is never far ahead of an app that does not read', async () => {
  let sent = 0;
  let received = 0;
  let ahead = 0;
  let appReq: IncomingMessage | undefined;
  const watch = stallWatch(() => appReq?.resume());
  const relay = await relayTo((req, res) => {
    appReq = req;
    req.pause();
    req.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (sent - received < 4 * MiB && sent < TOTAL) req.pause();
    });
    req.on('end', () => res.end(String(received)));
  });
  const body = new Readable({
    read() {
      if (sent >= TOTAL) return void this.push(null);
      sent += CHUNK.length;
      ahead = Math.max(ahead, sent - received);
      watch.progress();
      this.push(CHUNK);
    },
  });
  const res = await browse(relay.port, '/upload', { method: 'POST', body, headers: { 'content-length': String(TOTAL) } }).response;
  expect(await text(res)).toBe(String(TOTAL));
  watch.stop();
  expect(ahead).toBeLessThan(LIMIT);
});
