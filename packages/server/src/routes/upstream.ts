import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { Pool } from 'undici';
import { endToEndFlat, pairsFromRaw, type HeaderPairs } from '@devtunnel/core/protocol';
import { sendError } from '../error-response';
import { HttpError } from '../errors';
import type { ResolvedServerOptions } from '../options';
import { relayRequest } from '../relay/request';
import { relayUpgrade } from '../relay/upgrade';
import { forwardHeaders, requestTarget } from '../tunnel-port/request';
import type { ResolvedRoute } from './config';
import { SERVED_BY } from './selection';

/**
 * A route's real app: the requests that select no live tunnel go there, streamed both ways,
 * upgrades (WebSocket) included. The framing is this server's, as on the tunnel path: the request
 * was checked by the tunnel ports' steps before it got here; hop-by-hop headers are dropped both
 * ways and the forwarding headers added by the same policy (tunnel-port/request.ts); the answer's
 * status must be a final one and its body as long as it says (undici checks, on a strict parser),
 * else the browser gets a coded 502 or, once the head went out, a cut connection.
 *
 * undici's Pool rather than http-proxy: it is already the client's dependency, kept by Node's
 * own team, keeps connections alive per upstream without an Agent to tune, has headers and body
 * idle timeouts, and gives the raw answer head, so every rule here is ours (http-proxy passes
 * duplicate Host headers and leaves sockets open after an upstream cut). The relaying itself
 * (streams, backpressure, aborts, upgrades) is relay/request.ts and relay/upgrade.ts, which the
 * internal hop between replicas shares; what is decided here is the answer's head and the errors.
 */

/** Whether the upstream answers, as the dashboard shows it. */
export interface UpstreamHealth {
  state: 'up' | 'down' | 'unknown';
  /** When it was last known (a probe, or a request that reached it or failed to). */
  checkedAt: number | undefined;
  /** Why it is down. */
  error: string | undefined;
}

/** How a request sent to the upstream ended, for the log and the metrics. */
export interface UpstreamOutcome {
  status: number;
  code: string | undefined;
  bytesIn: number;
  bytesOut: number;
  requestId: string;
  upgrade: boolean;
  /** The browser's side ended before the answer did. */
  incomplete: boolean;
}

export interface Upstream {
  readonly health: UpstreamHealth;
  /** Requests and upgraded connections under way (a drain waits for the requests). */
  readonly inFlight: number;
  /** Sends a request to the real app and its answer back; `done` once, when it is over. */
  forward(req: IncomingMessage, res: ServerResponse, done: (outcome: UpstreamOutcome) => void): void;
  /** Upgrades a connection through the real app (WebSocket…); `done` when it closes. */
  upgrade(req: IncomingMessage, socket: Socket, head: Buffer, done: (outcome: UpstreamOutcome) => void): void;
  /** Checks now whether the app accepts a connection (a TCP connect, no request). */
  probe(): Promise<void>;
  /** Ends every connection it carries, upgraded ones included, and the pool. */
  close(): Promise<void>;
}

/** How long a probe's connection may take. */
const PROBE_TIMEOUT_MS = 3_000;

const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);
/** Node refusing, in `writeHead`, a name or value that could split the response (CR, LF, NUL…). */
const INVALID_HEAD_CODES = new Set(['ERR_INVALID_CHAR', 'ERR_INVALID_HTTP_TOKEN', 'ERR_HTTP_INVALID_HEADER_VALUE']);

/** The code of a failed call: its own, or its cause's (undici wraps the socket's error). */
function codeOf(error: unknown): string {
  const e = error as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  return e.code ?? e.cause?.code ?? '';
}

/** The coded error a failed upstream call becomes; the message names the route and what to do. */
function upstreamError(route: ResolvedRoute, error: unknown): HttpError {
  const e = error as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  const code = codeOf(error);
  if (TIMEOUT_CODES.has(code)) {
    return new HttpError('upstream_timeout', `The real app of route "${route.name}" (${route.upstream}) did not answer in time (${code}).`);
  }
  if (CONNECT_CODES.has(code) || !(code.startsWith('HPE_') || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' || INVALID_HEAD_CODES.has(code))) {
    return new HttpError('upstream_unreachable', `The real app of route "${route.name}" (${route.upstream}) cannot be reached: ${(e.cause ?? e).message || code}${code ? ` (${code})` : ''}. Check that its Service is up, and the route's URL.`, { retryAfter: 5 });
  }
  return new HttpError('bad_response', `The real app of route "${route.name}" (${route.upstream}) sent a response that is not valid HTTP/1.1 (${code}).`);
}

/** The answer head for the browser: end-to-end headers, our framing, who served it. */
function browserHead(raw: readonly string[], requestId: string, noBody: boolean, status: number): { flat: string[]; length: number | undefined } {
  const pairs: HeaderPairs = pairsFromRaw(raw);
  let length: number | undefined;
  let hasId = false;
  for (const [name, value] of pairs) {
    const lower = name.toLowerCase();
    // undici's parser refused differing lengths already; a repeated equal one is sent once.
    if (lower === 'content-length' && /^\d{1,15}$/.test(value.trim())) length = Number(value.trim());
    else if (lower === 'x-request-id') hasId = true;
  }
  const flat = endToEndFlat(pairs);
  // On HEAD and 304 the length describes the representation, not this message (RFC 9110 §8.6).
  if (length !== undefined && status !== 204) flat.push('Content-Length', String(length));
  if (!hasId) flat.push('X-Request-Id', requestId);
  flat.push(SERVED_BY, 'upstream');
  return { flat, length: noBody ? undefined : length };
}

export function createUpstream(route: ResolvedRoute, options: ResolvedServerOptions): Upstream {
  const pool = new Pool(route.upstream, {
    headersTimeout: options.deadlineMs,
    bodyTimeout: options.bodyIdleTimeoutMs,
    connectTimeout: Math.min(10_000, options.deadlineMs),
  });
  const health: UpstreamHealth = { state: 'unknown', checkedAt: undefined, error: undefined };
  let inFlight = 0;
  /** Upgraded connections: Node's HTTP server no longer tracks them, so close() ends them here. */
  const upgraded = new Set<Socket>();
  const now = options.now;
  const up = () => {
    health.state = 'up';
    health.checkedAt = now();
    health.error = undefined;
  };
  const down = (error: HttpError) => {
    health.state = 'down';
    health.checkedAt = now();
    health.error = error.message;
  };
  /**
   * What a failed call says of the app: a refused or silent connection, that it is down; a broken
   * answer, that it is up (it answered); anything else (our own request refused by undici), nothing.
   */
  const failedWith = (coded: HttpError, error: unknown) => {
    const code = codeOf(error);
    if (CONNECT_CODES.has(code) || TIMEOUT_CODES.has(code)) down(coded);
    else if (coded.code === 'bad_response') up();
  };
  const { hostname, port: urlPort, protocol } = route.upstreamUrl;
  const host = hostname.replace(/^\[|\]$/g, '');
  const port = Number(urlPort) || (protocol === 'https:' ? 443 : 80);

  function forward(req: IncomingMessage, res: ServerResponse, done: (o: UpstreamOutcome) => void): void {
    const { headers, requestId } = forwardHeaders(req);
    const flat: string[] = [];
    for (const [name, value] of headers) flat.push(name, value);
    const cl = req.headers['content-length'];
    const chunked = req.headers['transfer-encoding'] !== undefined;
    if (cl !== undefined && !chunked) flat.push('Content-Length', cl);
    const outcome: UpstreamOutcome = { status: 0, code: undefined, bytesIn: 0, bytesOut: 0, requestId, upgrade: false, incomplete: false };
    inFlight++;
    relayRequest(pool, req, res, {
      path: requestTarget(req),
      headers: flat,
      hasBody: chunked || (cl !== undefined && cl !== '0'),
      counts: outcome,
      head(status, raw) {
        up();
        if (status > 599) throw Object.assign(new Error(`status ${status}`), { code: 'HPE_INVALID_STATUS' });
        const noBody = req.method === 'HEAD' || status === 204 || status === 304;
        const head = browserHead(raw, requestId, noBody, status);
        return { headers: head.flat, length: head.length };
      },
      failed(error) {
        const coded = upstreamError(route, error);
        outcome.code = coded.code;
        failedWith(coded, error);
        sendError(req, res, coded, { close: !req.complete, context: `route ${route.name}`, headers: { [SERVED_BY]: 'error' } });
      },
      cut(by) {
        // Too late for a status: the answer broke (shorter than declared, the app went away).
        outcome.code ??= by === 'browser' ? 'browser_gone' : 'upstream_unreachable';
      },
    });
    // After the relay's own listener, which tells a browser that left (cut) first.
    res.once('close', () => {
      inFlight--;
      outcome.status = res.headersSent ? res.statusCode : 499;
      outcome.incomplete = !res.writableFinished;
      done(outcome);
    });
  }

  function upgrade(req: IncomingMessage, socket: Socket, head: Buffer, done: (o: UpstreamOutcome) => void): void {
    const { headers, requestId } = forwardHeaders(req);
    const flat: string[] = [];
    for (const [name, value] of headers) flat.push(name, value);
    const outcome: UpstreamOutcome = { status: 0, code: undefined, bytesIn: 0, bytesOut: 0, requestId, upgrade: true, incomplete: false };
    upgraded.add(socket);
    relayUpgrade(req, socket, head, {
      origin: route.upstreamUrl,
      path: requestTarget(req),
      headers: flat,
      timeoutMs: options.deadlineMs,
      head(status, raw) {
        up();
        if (status === 101) return [...endToEndFlat(pairsFromRaw(raw)), SERVED_BY, 'upstream'];
        return browserHead(raw, requestId, status === 204 || status === 304, status).flat;
      },
      failed(error) {
        const coded = upstreamError(route, error);
        outcome.code = coded.code;
        failedWith(coded, error);
        return coded;
      },
      errorExtra: `${SERVED_BY}: error\r\n`,
      closed({ status, bytesIn, bytesOut }) {
        upgraded.delete(socket);
        Object.assign(outcome, { status, bytesIn, bytesOut });
        done(outcome);
      },
    });
  }

  function probe(): Promise<void> {
    return new Promise((resolve) => {
      const s = connect({ host, port });
      const settle = (error?: NodeJS.ErrnoException) => {
        s.destroy();
        if (error) down(upstreamError(route, error));
        else up();
        resolve();
      };
      s.setTimeout(PROBE_TIMEOUT_MS, () => settle(Object.assign(new Error('no connection within 3 s'), { code: 'ETIMEDOUT' })));
      s.once('connect', () => settle());
      s.once('error', settle);
    });
  }

  return {
    health,
    get inFlight() {
      return inFlight;
    },
    forward,
    upgrade,
    probe,
    async close() {
      for (const socket of upgraded) socket.destroy();
      await pool.destroy();
    },
  };
}
