import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { closeServer, listen } from './net';

/**
 * The local app of the tests (the original project's scenarios): echoes method, URL, headers and
 * the body's size and sha256; `?delay=N` waits N ms, `?status=N` answers N, `?redirect=URL`
 * redirects; `/chunked` streams a chunked body; `/bytes?n=N` sends N deterministic bytes;
 * `/hang` never answers; `/upload` answers after reading the whole body.
 */
export interface EchoApp {
  port: number;
  server: Server;
  /** Requests seen, in order. */
  hits: Array<{ method: string; url: string }>;
  /**
   * Resolves when the request for `url` (path and query, as sent: give each test's request a
   * query of its own) is closed by its client before being answered.
   */
  abortedRequest(url: string): Promise<void>;
  /**
   * `GET /events?tag=T` answers `text/event-stream` with its headers flushed and no byte of body,
   * then waits: this resolves with that stream once it arrived, for the test to write events to
   * and end (webpack-hot-middleware and other SSE endpoints work so).
   */
  eventStream(tag: string): Promise<ServerResponse>;
  close(): Promise<void>;
}

export interface EchoBody {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  rawHeaders: string[];
  bodyBytes: number;
  sha256: string;
}

/** Deterministic bytes, so both ends can hash them without storing them. */
export function patternBytes(offset: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = (offset + i) * 31 % 251;
  return b;
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function startEchoApp(): Promise<EchoApp> {
  const hits: EchoApp['hits'] = [];
  const waiters = new Map<string, () => void>();
  const aborted = new Set<string>();
  const streams = new Map<string, ServerResponse>();
  const streamWaiters = new Map<string, (res: ServerResponse) => void>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    hits.push({ method: req.method!, url: req.url! });
    const url = new URL(req.url!, 'http://local');
    res.once('close', () => {
      if (!res.writableFinished) {
        aborted.add(req.url!);
        waiters.get(req.url!)?.();
      }
    });
    if (url.pathname === '/hang') return;
    if (url.pathname === '/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.flushHeaders();
      const tag = url.searchParams.get('tag') ?? '';
      streams.set(tag, res);
      streamWaiters.get(tag)?.(res);
      return;
    }
    if (url.pathname === '/bytes') {
      const n = Number(url.searchParams.get('n') ?? 0);
      const hash = createHash('sha256');
      res.writeHead(200, { 'content-type': 'application/octet-stream', ...(url.searchParams.has('chunked') ? {} : { 'content-length': n }) });
      let sent = 0;
      const pump = () => {
        while (sent < n) {
          const part = patternBytes(sent, Math.min(64 * 1024, n - sent));
          hash.update(part);
          sent += part.length;
          if (!res.write(part)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
      return;
    }
    if (url.pathname === '/chunked') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      let i = 0;
      const tick = () => {
        if (i === 5) return void res.end('end\n');
        res.write(`part ${i++}\n`);
        setImmediate(tick);
      };
      tick();
      return;
    }
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (c: Buffer) => {
      bytes += c.length;
      hash.update(c);
    });
    req.on('end', () => {
      const respond = () => {
        const status = Number(url.searchParams.get('status') ?? 200);
        const redirect = url.searchParams.get('redirect');
        if (redirect) {
          res.writeHead(302, { location: redirect });
          return void res.end();
        }
        if (status === 204 || status === 304) {
          res.writeHead(status, { etag: '"v1"' });
          return void res.end();
        }
        const body: EchoBody = { method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, bodyBytes: bytes, sha256: hash.digest('hex') };
        const text = JSON.stringify(body);
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(req.method === 'HEAD' ? undefined : text);
      };
      const delay = Number(url.searchParams.get('delay') ?? 0);
      if (delay > 0) setTimeout(respond, delay);
      else respond();
    });
  });
  const port = await listen(server);
  return {
    port,
    server,
    hits,
    eventStream(tag) {
      const open = streams.get(tag);
      if (open) return Promise.resolve(open);
      return new Promise((resolve) => streamWaiters.set(tag, resolve));
    },
    abortedRequest(target) {
      if (aborted.has(target)) return Promise.resolve();
      return new Promise((resolve) => waiters.set(target, resolve));
    },
    close: () => closeServer(server),
  };
}
