import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createCancel, type Cancel } from '../cancel';
import type { Forwarder } from '../forward';
import type { Logger } from '../logger';
import type { InspectAddress } from '../options';
import { APP_CSS, INSPECTOR_CSP, keyPage, shellPage } from './assets';
import { APP_JS } from './page-script';
import { isProblem, replay, replayRequest, REPLAY_BODY_MAX } from './replay';
import type { Store } from './store';
import { detail, replayView, summary } from './view';

/**
 * The inspector's page and API on a loopback port. Only the developer who started the tunnel can
 * open it: the key in the URL that devtunnel printed sets an HttpOnly, SameSite=Strict cookie; the
 * Host header must name this address (a DNS-rebinding page names its own); requests another page
 * made are refused by Fetch Metadata and Origin; changes take JSON only; the CSP allows no inline
 * code and no framing.
 */

/** What the page says of the tunnel. */
export interface TunnelView {
  url: string | undefined;
  target: string;
  status: string;
}

export interface InspectorServerDeps {
  address: InspectAddress;
  store: Store;
  forwarder: Forwarder;
  log: Logger;
  describe(): TunnelView;
}

export interface InspectorServer {
  /** Listens (a taken port falls back to a free one); resolves with the URL, key included, or undefined when it cannot. */
  listen(): Promise<string | undefined>;
  readonly url: string | undefined;
  close(): Promise<void>;
}

/** Live pages at once; a batch of changes goes out this long after the first change. */
const MAX_STREAMS = 8;
const FLUSH_MS = 150;
/** A quiet live page still hears the tunnel's state and the counts this often. */
const HEARTBEAT_MS = 5_000;
/** A page that reads slower than changes come (a flood) is sent a fresh snapshot once it caught up. */
const STREAM_BACKLOG = 1024 * 1024;
/** Replays under way at once. */
const MAX_REPLAYS = 8;
const JSON_BODY_MAX = Math.ceil((REPLAY_BODY_MAX * 4) / 3) + 256 * 1024;

function headers(contentType: string): Record<string, string> {
  return {
    'content-type': contentType,
    'cache-control': 'no-store',
    'content-security-policy': INSPECTOR_CSP,
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'cross-origin-resource-policy': 'same-origin',
  };
}

function send(res: ServerResponse, status: number, contentType: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { ...headers(contentType), 'content-length': String(Buffer.byteLength(body)), ...extra });
  res.end(body);
}

const sendJson = (res: ServerResponse, status: number, value: unknown) => send(res, status, 'application/json; charset=utf-8', JSON.stringify(value));
const problem = (res: ServerResponse, status: number, code: string, message: string) => sendJson(res, status, { code, message });

function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return undefined;
}

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > JSON_BODY_MAX) return req.destroy(Object.assign(new Error('too large'), { status: 413 }));
      chunks.push(chunk);
    });
    req.once('end', () => {
      try {
        resolve(size === 0 ? {} : JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(Object.assign(new Error('The body is not JSON.'), { status: 400 }));
      }
    });
    req.once('error', reject);
  });
}

export function createInspectorServer(deps: InspectorServerDeps): InspectorServer {
  const { address, store, forwarder, log, describe } = deps;
  const key = randomBytes(16).toString('hex');
  const keyBytes = Buffer.from(key);
  const streams = new Map<ServerResponse, { behind: boolean }>();
  const replays = new Set<Cancel>();
  let origin = '';
  let cookieName = '';
  /** Host header values that name this inspector. */
  let hosts = new Set<string>();
  let url: string | undefined;
  let flushTimer: NodeJS.Timeout | undefined;
  let heartbeat: NodeJS.Timeout | undefined;
  let closing: Promise<void> | undefined;
  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      log.debug(`devtunnel: inspector: ${(error as Error).message}`);
      const status = (error as { status?: number }).status ?? 500;
      if (!res.headersSent) problem(res, status, status < 500 ? 'bad_request' : 'internal_error', (error as Error).message);
      else res.destroy();
    });
  });

  const isKey = (given: string | undefined) => {
    if (given === undefined) return false;
    const bytes = Buffer.from(given);
    return bytes.length === keyBytes.length && timingSafeEqual(bytes, keyBytes);
  };

  function authorized(req: IncomingMessage): boolean {
    const auth = req.headers.authorization;
    return isKey(cookie(req, cookieName)) || (auth !== undefined && auth.startsWith('Bearer ') && isKey(auth.slice(7)));
  }

  /**
   * Refuses what another page made the browser send: a Host that is not this address (DNS
   * rebinding), a cross-site or same-site request by Fetch Metadata (`Sec-Fetch-Site`; `none` is
   * the developer opening the URL), an Origin that is not this one.
   */
  function foreign(req: IncomingMessage): string | undefined {
    if (!hosts.has((req.headers.host ?? '').toLowerCase())) return `This inspector answers only as ${origin}: the Host header names another site.`;
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none') return 'Requests made by other sites are refused.';
    const from = req.headers.origin;
    if (from !== undefined && from.toLowerCase() !== `http://${req.headers.host!.toLowerCase()}`) return 'Requests from other origins are refused.';
    return undefined;
  }

  function snapshot(): string {
    return JSON.stringify({ tunnel: describe(), stats: store.stats(), requests: store.list().map(summary) });
  }

  function flush(): void {
    flushTimer = undefined;
    const { records, cleared } = store.takeChanged();
    const data = `event: changes\ndata: ${JSON.stringify({ cleared, tunnel: describe(), stats: store.stats(), requests: records.map(summary) })}\n\n`;
    for (const [res, state] of streams) {
      if (res.writableLength > STREAM_BACKLOG) state.behind = true;
      else if (state.behind) {
        state.behind = false;
        res.write(`event: snapshot\ndata: ${snapshot()}\n\n`);
      } else res.write(data);
    }
  }

  function live(req: IncomingMessage, res: ServerResponse): void {
    if (streams.size >= MAX_STREAMS) return problem(res, 503, 'too_many_pages', `At most ${MAX_STREAMS} inspector pages at once: close one.`);
    req.socket.setTimeout(0);
    res.writeHead(200, { ...headers('text/event-stream; charset=utf-8'), connection: 'keep-alive' });
    res.write(`retry: 2000\nevent: snapshot\ndata: ${snapshot()}\n\n`);
    streams.set(res, { behind: false });
    if (streams.size === 1) {
      // Changes are tracked only while a page is open: nobody watching costs nothing here.
      store.watch(() => (flushTimer ??= setTimeout(flush, FLUSH_MS)));
      heartbeat = setInterval(() => (flushTimer ??= setTimeout(flush, 0)), HEARTBEAT_MS);
    }
    res.once('close', () => {
      streams.delete(res);
      if (streams.size > 0) return;
      store.watch(undefined);
      clearTimeout(flushTimer);
      clearInterval(heartbeat);
      flushTimer = heartbeat = undefined;
    });
  }

  async function replayOne(req: IncomingMessage, res: ServerResponse, seq: number): Promise<void> {
    const record = store.get(seq);
    if (!record) return problem(res, 404, 'not_kept', 'That request is no longer kept: newer ones pushed it out, or the list was cleared.');
    if (replays.size >= MAX_REPLAYS) return problem(res, 429, 'too_many_replays', `At most ${MAX_REPLAYS} replays at once: wait for one to answer.`);
    const request = replayRequest(record, await readJson(req));
    if (isProblem(request)) return problem(res, request.code === 'invalid_replay' ? 400 : 409, request.code, request.message);
    const cancel = createCancel();
    replays.add(cancel);
    try {
      sendJson(res, 200, replayView(await replay(forwarder, store, record, request, cancel)));
    } finally {
      replays.delete(cancel);
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const refused = foreign(req);
    if (refused) return send(res, 403, 'text/plain; charset=utf-8', `devtunnel inspector: ${refused}\n`);
    const { pathname: path, searchParams } = new URL(req.url ?? '/', origin);
    const method = req.method ?? 'GET';
    // The script and style hold no data: no key needed.
    if (method === 'GET' && path === '/app.js') return send(res, 200, 'text/javascript; charset=utf-8', APP_JS);
    if (method === 'GET' && path === '/app.css') return send(res, 200, 'text/css; charset=utf-8', APP_CSS);
    if (method === 'GET' && path === '/favicon.ico') return void res.writeHead(204, { 'cache-control': 'max-age=86400' }).end();
    if (method === 'GET' && path === '/' && searchParams.has('key')) {
      if (!isKey(searchParams.get('key') ?? undefined)) return send(res, 401, 'text/html; charset=utf-8', keyPage(origin));
      // The key leaves the address bar (and the history of what the page loads next) for a cookie
      // no script can read and no other site's request carries.
      res.writeHead(303, { location: '/', 'set-cookie': `${cookieName}=${key}; Path=/; HttpOnly; SameSite=Strict`, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
      return void res.end();
    }
    if (!authorized(req)) {
      if (method === 'GET' && path === '/') return send(res, 401, 'text/html; charset=utf-8', keyPage(origin));
      return problem(res, 401, 'key_needed', `Open the address devtunnel printed (${origin}/?key=…), or send Authorization: Bearer <key>.`);
    }
    if (method === 'POST' && !/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
      return problem(res, 415, 'json_only', 'Send changes as application/json.');
    }
    const one = /^\/api\/requests\/(\d{1,15})(\/replay)?$/.exec(path);
    if (method === 'GET' && path === '/') return send(res, 200, 'text/html; charset=utf-8', shellPage());
    if (method === 'GET' && path === '/events') return live(req, res);
    if (method === 'GET' && path === '/api/requests') return send(res, 200, 'application/json; charset=utf-8', snapshot());
    if (method === 'GET' && path === '/api/stats') return sendJson(res, 200, store.stats());
    if (method === 'GET' && one && !one[2]) {
      const record = store.get(Number(one[1]));
      return record ? sendJson(res, 200, detail(record)) : problem(res, 404, 'not_kept', 'That request is no longer kept: newer ones pushed it out, or the list was cleared.');
    }
    if (method === 'POST' && one?.[2]) return replayOne(req, res, Number(one[1]));
    if (method === 'POST' && path === '/api/clear') {
      store.clear();
      res.writeHead(204, { 'cache-control': 'no-store' });
      return void res.end();
    }
    problem(res, 404, 'not_found', `Nothing at ${method} ${path}.`);
  }

  function bound(): string {
    const { port, address: ip } = server.address() as AddressInfo;
    const host = ip.includes(':') ? `[${ip}]` : ip;
    origin = `http://${host}:${port}`;
    // Cookies ignore ports (RFC 6265 §8.5): one name per port keeps two inspectors apart.
    cookieName = `devtunnel_inspector_${port}`;
    hosts = new Set([`${host}:${port}`, `localhost:${port}`]);
    return `${origin}/?key=${key}`;
  }

  return {
    listen() {
      return new Promise((resolve) => {
        const attempt = (port: number) => {
          const failed = (error: NodeJS.ErrnoException) => {
            if (error.code === 'EADDRINUSE' && port !== 0) {
              log.warn(`devtunnel: the inspector's address ${address.host}:${port} is taken: it listens on a free port instead.`);
              return attempt(0);
            }
            log.warn(`devtunnel: the inspector cannot listen on ${address.host}:${port} (${error.code ?? error.message}): the tunnel runs without it.`);
            resolve(undefined);
          };
          server.once('error', failed);
          server.listen(port, address.host, () => {
            server.off('error', failed);
            // Closed while it bound: nobody will close it later.
            if (closing) return void server.close(() => resolve(undefined));
            url = bound();
            resolve(url);
          });
        };
        attempt(address.port);
      });
    },
    get url() {
      return url;
    },
    close() {
      closing ??= (async () => {
        for (const cancel of replays) cancel.abort();
        for (const res of streams.keys()) res.end();
        if (!server.listening) return;
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await closed;
      })();
      return closing;
    },
  };
}
