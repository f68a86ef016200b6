import type { IncomingMessage } from 'node:http';
import { endToEndPairs, headerValue, pairsFromRaw, type HeaderPairs } from '@devtunnel/core/protocol';

/**
 * Replay from the cluster (docs/replay.md): the server keeps the last requests that reached a
 * tunnel or a route's real app, without what could let someone act as their sender, so that a
 * developer signed in on the dashboard can find one by its request id or trace id and send it to
 * their own tunnel again. Kept in memory only, bounded in count and bytes; off with `--capture 0`.
 *
 * Left out of every capture: the body (only requests without one can be replayed), `Cookie`,
 * `Authorization`, `Proxy-Authorization`, any header whose name says it holds a secret (token, key,
 * secret, password, session, auth, csrf, signature), and query parameters named so. What is left
 * is what the server's logs and the route's real app could see of a request anyway.
 */
export interface CapturedRequest {
  /** The request id (`X-Request-Id`) the logs and the laptop's inspector show. */
  id: string;
  /** The W3C trace id from `traceparent`, if the request had one. */
  traceId?: string;
  time: string;
  method: string;
  /** Path and query, secret-looking parameters removed. */
  url: string;
  /** The browser's headers as it sent them, secrets removed (pairs, in order). */
  headers: Array<[string, string]>;
  /** Where it went: the port, the route (if any), who served it (`tunnel ann`, `upstream`, `error`), the status. */
  port: number;
  route?: string;
  servedBy: string;
  status: number;
  /** Set on a replay: the id of the request it replays. */
  replayOf?: string;
  /** The request had a body, which is not kept: it cannot be replayed. */
  bodyLeftOut?: boolean;
}

export interface CaptureRing {
  /** Keeps a finished request (one that had a body is listed, marked, and cannot be replayed). */
  add(req: IncomingMessage, record: Pick<CapturedRequest, 'id' | 'port' | 'route' | 'servedBy' | 'status'>, now: number): void;
  /** Newest first; `find` matches a request id or trace id exactly, or a path's start. */
  list(find?: string): CapturedRequest[];
  get(id: string): CapturedRequest | undefined;
  readonly size: number;
}

/** Headers whose names say they carry a credential. */
const SECRET_NAME = /token|secret|passw|session|auth|csrf|xsrf|signature|api-?key|(^|-)key($|-)|cookie/i;
/** Query parameters named like credentials (Vite's `token`, OAuth's `code`, signed URLs' `sig`). */
const SECRET_PARAM = /token|secret|passw|session|auth|key|code|sig|credential/i;
/** Bounds: headers of one capture, and the whole ring. */
const MAX_CAPTURE_BYTES = 16 * 1024;
const MAX_TOTAL_BYTES = 4 * 1024 * 1024;

/** `url` without query parameters whose names look like credentials. */
export function withoutSecretParams(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  for (const name of [...params.keys()]) if (SECRET_PARAM.test(name)) params.delete(name);
  const rest = params.toString();
  return url.slice(0, q) + (rest ? `?${rest}` : '');
}

/**
 * The browser's end-to-end headers (the protocol's hop-by-hop rule, `Host` too: a replay goes to
 * the tunnel's port) without credentials, devtunnel's own headers or `baggage`.
 */
export function keptHeaders(raw: readonly string[]): Array<[string, string]> {
  return endToEndPairs(raw, 'host').filter(([name]) => {
    const lower = name.toLowerCase();
    return !SECRET_NAME.test(lower) && !lower.startsWith('x-devtunnel') && lower !== 'baggage';
  });
}

function traceIdOf(pairs: HeaderPairs): string | undefined {
  const value = headerValue(pairs, 'traceparent');
  return value === undefined ? undefined : /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(value.trim())?.[1];
}

/**
 * What `add` keeps: references to what the request already holds (its raw headers, its URL), no
 * copies and no parsing. The filtering above runs when someone lists or replays, not on the
 * request's path: on every request it cost the server a quarter more CPU (bench:cpu).
 */
interface Kept {
  record: Pick<CapturedRequest, 'id' | 'port' | 'route' | 'servedBy' | 'status'>;
  time: number;
  method: string;
  url: string;
  raw: string[];
  bytes: number;
}

function expand(k: Kept): CapturedRequest {
  const raw = k.raw;
  const pairs = pairsFromRaw(raw);
  const traceId = traceIdOf(pairs);
  const replayOf = headerValue(pairs, 'x-devtunnel-replay-of');
  const length = headerValue(pairs, 'content-length');
  const hasBody = (length !== undefined && Number(length) > 0) || headerValue(pairs, 'transfer-encoding') !== undefined;
  return {
    ...k.record,
    time: new Date(k.time).toISOString(),
    method: k.method,
    url: withoutSecretParams(k.url),
    headers: keptHeaders(raw),
    ...(traceId ? { traceId } : {}),
    ...(hasBody ? { bodyLeftOut: true } : {}),
    ...(replayOf !== undefined && /^[\w.-]{1,80}$/.test(replayOf) ? { replayOf } : {}),
  };
}

export function createCaptureRing(maxEntries: number): CaptureRing {
  /** A circular buffer: `next` is where the next one goes, the oldest when it is full. */
  const ring: Array<Kept | undefined> = new Array(Math.max(0, maxEntries));
  const byId = new Map<string, Kept>();
  let next = 0;
  let count = 0;
  let bytes = 0;

  function evict(at: number): void {
    const old = ring[at];
    if (!old) return;
    ring[at] = undefined;
    count--;
    bytes -= old.bytes;
    if (byId.get(old.record.id) === old) byId.delete(old.record.id);
  }

  /** Newest first. */
  function* newest(): Generator<Kept> {
    for (let i = 1; i <= ring.length; i++) {
      const k = ring[(next - i + ring.length) % ring.length];
      if (k) yield k;
    }
  }

  return {
    add(req, record, now) {
      if (maxEntries <= 0) return;
      const raw = req.rawHeaders;
      const url = req.url ?? '/';
      let size = url.length + 200;
      for (let i = 0; i < raw.length; i++) size += raw[i]!.length + 2;
      if (size > MAX_CAPTURE_BYTES) return;
      evict(next);
      const k: Kept = { record, time: now, method: req.method ?? 'GET', url, raw, bytes: size };
      ring[next] = k;
      next = (next + 1) % ring.length;
      count++;
      bytes += size;
      byId.set(record.id, k);
      // The byte bound: the oldest go first.
      for (let i = 0; bytes > MAX_TOTAL_BYTES && i < ring.length; i++) evict((next + i) % ring.length);
    },
    list(find) {
      const out: CapturedRequest[] = [];
      const f = find?.trim();
      for (const k of newest()) {
        const c = expand(k);
        if (!f || c.id === f || c.traceId === f.toLowerCase() || (f.startsWith('/') && c.url.startsWith(f))) out.push(c);
      }
      return out;
    },
    get: (id) => {
      const k = byId.get(id);
      return k ? expand(k) : undefined;
    },
    get size() {
      return count;
    },
  };
}
