/**
 * The devtunnel wire protocol, version 1: the only code the client and the server share.
 *
 * It imports nothing (no `node:` modules, no undici) so that both sides, and any future
 * implementation, read the same definitions. docs/protocol.md describes the flows; this file is
 * the source of truth for names, shapes and the frame format.
 *
 * Frame: every poll answer (server → client) and every response upload (client → server) has the
 * body `[u32 big-endian head length][head: UTF-8 JSON][raw body bytes…]`. Bodies travel as raw
 * bytes, never base64 or JSON-embedded, so they stream with backpressure and cost nothing extra.
 */

export const PROTOCOL_VERSION = 1;

/** What this client can do beyond the v1 baseline (see {@link RegisterRequest.features}). */
export const CLIENT_FEATURES = Object.freeze(['upgrade', 'batch', 'stream']);

/**
 * What this server can do beyond the v1 baseline, announced in the registration answer. `batch`:
 * a poll answer may carry several messages, and `POST …/responses` takes several small answers.
 * `stream`: `GET …/stream` is a downstream of request frames with no end, and `POST …/stream` an
 * upstream of answer frames with no end (docs/protocol.md, "Streams").
 */
export const SERVER_FEATURES = Object.freeze(['batch', 'stream']);

/** Most messages in one poll answer, and most answers in one batch upload. */
export const MAX_BATCH = 32;
/**
 * Largest answer body that travels whole: the client reads such answers at once and may batch
 * them; the server refuses a larger body in a batch upload before reading it.
 */
export const MAX_WHOLE_BODY = 64 * 1024;
export const API_PREFIX = '/api/v1';

/** Header names used on the control channel (lower case, as Node and undici report them). */
export const HEADER = Object.freeze({
  /** Machine-readable error code on every error answer, browser-facing or API. */
  error: 'x-devtunnel-error',
  /** On a response upload: `1` asks the server to answer it like a poll (saves a round trip). */
  poll: 'x-devtunnel-poll',
  /**
   * On a downstream request: how many requests the client takes at once (its `maxInFlight`). The
   * server hands it no more than that, counting the ones polls carried; the rest wait in its queue.
   */
  window: 'x-devtunnel-window',
  /** On a tunnel check: the key of the downstream's first notice, which confirms that downstream. */
  downstream: 'x-devtunnel-downstream',
  /** The client's protocol version, sent on registration. */
  protocol: 'x-devtunnel-protocol',
  /** Request id added for the local app and echoed to the browser (kept when the caller set one). */
  requestId: 'x-request-id',
});

export const CONTENT_TYPE_FRAME = 'application/vnd.devtunnel.frame';

/** Maximum size of a frame head. Request heads are bounded by the tunnel port's 16 KiB header limit. */
export const MAX_HEAD_BYTES = 256 * 1024;

/** Paths of the control API, relative to the server URL. */
export const paths = Object.freeze({
  tunnels: `${API_PREFIX}/tunnels`,
  tunnel: (id: string) => `${API_PREFIX}/tunnels/${encodeURIComponent(id)}`,
  poll: (id: string) => `${API_PREFIX}/tunnels/${encodeURIComponent(id)}/poll`,
  response: (id: string, requestId: string) =>
    `${API_PREFIX}/tunnels/${encodeURIComponent(id)}/requests/${encodeURIComponent(requestId)}`,
  /** Several small answers in one upload (feature `batch`). */
  responses: (id: string) => `${API_PREFIX}/tunnels/${encodeURIComponent(id)}/responses`,
  /** Feature `stream`: GET is the downstream of request frames, POST the upstream of answers. */
  stream: (id: string) => `${API_PREFIX}/tunnels/${encodeURIComponent(id)}/stream`,
  /** After a 101: the browser's bytes, streamed to the client as a response body. */
  upstream: (id: string, requestId: string) =>
    `${API_PREFIX}/tunnels/${encodeURIComponent(id)}/requests/${encodeURIComponent(requestId)}/upstream`,
});

/** Header list as `[name, value]` pairs: keeps order, case and repeated headers (Set-Cookie). */
export type HeaderPairs = Array<[string, string]>;

/** Registration request body (`POST /api/v1/tunnels`, `Authorization: Bearer <token>`). */
export interface RegisterRequest {
  /**
   * Stable identity of one developer's tunnel for one local port, e.g. `ann@laptop:5173#k3j…`.
   * The random part stays on the laptop, so nobody else can claim the same identity.
   */
  clientId: string;
  /** Display name; `^[a-z0-9][a-z0-9-]{0,62}$`. */
  name?: string;
  /** The port this identity had last time; honoured when free or already held by it. */
  preferredPort?: number;
  /** The local port being tunnelled (informational). */
  localPort?: number;
  /** Client software version (informational). */
  version?: string;
  /**
   * Optional abilities of the client. `upgrade`: it can carry HTTP/1.1 upgrades (WebSocket). The
   * server sends upgrade requests only to clients that say so, and answers 501 for older ones.
   */
  features?: string[];
  /**
   * Random per client process (`ID_PATTERN`), the same for all its registrations. Tells a client
   * registering again (after a network loss, a server restart) from another process with the same
   * identity (two dev servers of one project): the newer process takes the tunnel over once, and
   * the one it replaced is refused from then on with 409 `tunnel_replaced` (docs/protocol.md,
   * "One identity, two clients").
   */
  instance?: string;
}

/** Timing values the client must use; all in milliseconds. */
export interface TunnelTiming {
  /** How long the server holds a poll before answering 204. */
  pollTimeoutMs: number;
  /** No poll for this long and the tunnel counts as offline. */
  leaseMs: number;
  /** Deadline for the local app to answer with headers; the client answers 504 after it. */
  localTimeoutMs: number;
  /** Idle limit on a body in either direction. */
  bodyIdleTimeoutMs: number;
}

/**
 * How long the client waits for a poll's answer before it gives the poll up: the server's poll
 * timeout plus slack for a slow network (25 s → 35 s). The server's own waits are laddered above it.
 */
export function clientPollDeadlineMs(pollTimeoutMs: number): number {
  return pollTimeoutMs + Math.max(1_000, Math.round(pollTimeoutMs * 0.4));
}

/** Registration answer (201). */
export interface RegisterResponse {
  protocol: number;
  id: string;
  /** Per-tunnel secret: `Authorization: Bearer <secret>` on every later call of this tunnel. */
  secret: string;
  name: string;
  /** The tunnel's own port on the server. */
  port: number;
  /** Where the tunnel answers, as far as the server knows (the cluster proxy may front it). */
  url: string;
  timing: TunnelTiming;
  /** Poll concurrency the server accepts per tunnel. */
  maxPolls: number;
  /** Optional abilities of the server (see {@link SERVER_FEATURES}); absent on older servers. */
  features?: string[];
}

/** Poll answer: one browser request for the client to replay. */
export interface RequestMessage {
  type: 'request';
  id: string;
  method: string;
  /** Path and query as received (origin-form). */
  url: string;
  headers: HeaderPairs;
  /** Body length when known, `null` for a chunked upload; 0 when there is no body. */
  bodyLength: number | null;
  /**
   * An HTTP/1.1 upgrade (WebSocket and others): `headers` keep `Connection: Upgrade` and
   * `Upgrade`; the client performs the upgrade against the local app. After a 101 the app's bytes
   * travel in the response upload, the browser's in `GET …/upstream` (docs/protocol.md).
   */
  upgrade?: true;
}

/** Poll answer: the browser went away; stop working on this request. */
export interface CancelMessage {
  type: 'cancel';
  id: string;
}

/**
 * On a downstream only (feature `stream`): the server's word on the streams themselves. The first
 * frame of every downstream is one, with a `key`; the client proves it received it (nothing on the
 * way holds frames back) by sending the key in `x-devtunnel-downstream` on a tunnel check, and only
 * then does the server hand requests to that downstream. Another notice follows when bytes of an
 * upstream arrived (`upstream: true`), which proves the same for uploads.
 */
export interface StreamMessage {
  type: 'stream';
  /** Whether the server is reading an upstream of this tunnel now. */
  upstream: boolean;
  /** On a downstream's first notice: what the client sends back to confirm it. */
  key?: string;
}

/** What a poll answer carries. */
export type ServerMessage = RequestMessage | CancelMessage;

/** What a downstream carries (feature `stream`): requests without a body, cancels, stream notices. */
export type DownstreamMessage = ServerMessage | StreamMessage;

/**
 * A frame with an empty head (four zero bytes) is a heartbeat: streams send one when they were
 * quiet for `pollTimeoutMs`, so that proxies keep them open and each side knows the other lives.
 */
export const HEARTBEAT: Uint8Array = new Uint8Array(4);

/** Head of a response upload (`POST .../requests/:requestId`). */
export interface ResponseHead {
  status: number;
  headers: HeaderPairs;
  /** Body length when the local app declared one; `null` to let the server stream it chunked. */
  bodyLength: number | null;
  /** The request this answers; only in a batch upload, where the path names no request. */
  id?: string;
  /**
   * Set instead of a real response when the client could not get one from the local app. The
   * server renders the error itself, so every error page comes from one place.
   */
  error?: { code: ErrorCode; message: string };
}

/**
 * Every error a user can meet, browser-facing or API. Stable: tests, logs, dashboards and users
 * match on these; messages may change.
 */
export const ERROR_CODES = Object.freeze({
  tunnel_offline: 503,
  tunnel_busy: 503,
  queue_full: 503,
  local_app_refused: 502,
  local_app_error: 502,
  local_app_timeout: 504,
  client_disconnected: 502,
  tunnel_timeout: 504,
  bad_response: 502,
  upgrade_not_supported: 501,
  too_many_upgrades: 503,
  method_not_supported: 405,
  headers_too_large: 431,
  request_timeout: 408,
  unauthorized: 401,
  forbidden: 403,
  rate_limited: 429,
  too_many_polls: 429,
  port_range_full: 503,
  unknown_tunnel: 404,
  tunnel_closed: 410,
  tunnel_replaced: 409,
  unknown_request: 404,
  request_answered: 409,
  browser_gone: 410,
  invalid_request: 400,
  not_found: 404,
  payload_too_large: 413,
  server_shutting_down: 503,
  internal_error: 500,
} as const);

export type ErrorCode = keyof typeof ERROR_CODES;

/** Error body of the control API and of browser-facing JSON errors. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1) plus the framing headers each hop computes for itself.
 * Stripped in both directions, together with every header a `Connection` header names.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
  // `Expect: 100-continue` is answered by the hop that receives it (RFC 9110 §10.1.1).
  'expect',
  'http2-settings',
]);

/** Lower-case names that `Connection` headers list (RFC 9110 §7.6.1); undefined when there is none. */
function namedByConnection(at: (i: number) => string | undefined, count: number): Set<string> | undefined {
  let named: Set<string> | undefined;
  for (let i = 0; i < count; i++) {
    const name = at(2 * i)!;
    if (name.length !== 10 || name.toLowerCase() !== 'connection') continue;
    named ??= new Set();
    for (const token of at(2 * i + 1)!.split(',')) {
      const t = token.trim().toLowerCase();
      if (t) named.add(t);
    }
  }
  return named;
}

const dropped = (name: string, named: Set<string> | undefined): boolean => {
  const lower = name.toLowerCase();
  return HOP_BY_HOP.has(lower) || (named !== undefined && named.has(lower));
};

/**
 * Copy of `headers` without hop-by-hop and framing headers, nor any header listed in a
 * `Connection` header (RFC 9110 §7.6.1). Names keep their case; order is preserved.
 */
export function stripHopByHop(headers: HeaderPairs): HeaderPairs {
  const named = namedByConnection((i) => headers[i >> 1]![i & 1], headers.length);
  const out: HeaderPairs = [];
  for (const pair of headers) if (!dropped(pair[0], named)) out.push(pair);
  return out;
}

/**
 * {@link stripHopByHop} for Node's flat `rawHeaders` (`[name, value, name, value…]`), giving pairs;
 * `also` (lower case) is dropped as well. One pass, no intermediate copy: it runs per request.
 */
export function endToEndPairs(raw: readonly string[], also?: string): HeaderPairs {
  const named = namedByConnection((i) => raw[i], raw.length >> 1);
  const out: HeaderPairs = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    if (dropped(name, named) || (also !== undefined && name.length === also.length && name.toLowerCase() === also)) continue;
    out.push([name, raw[i + 1]!]);
  }
  return out;
}

/** {@link stripHopByHop}, flat (`[name, value, name, value…]`, as Node's `writeHead` takes them). */
export function endToEndFlat(headers: HeaderPairs): string[] {
  const named = namedByConnection((i) => headers[i >> 1]![i & 1], headers.length);
  const out: string[] = [];
  for (const [name, value] of headers) if (!dropped(name, named)) out.push(name, value);
  return out;
}

/** Turns Node's flat `rawHeaders` (`[name, value, name, value…]`) into pairs. */
export function pairsFromRaw(raw: readonly string[]): HeaderPairs {
  const out: HeaderPairs = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}

/** First value of a header, case-insensitive. */
export function headerValue(headers: HeaderPairs, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [n, v] of headers) if (n.toLowerCase() === lower) return v;
  return undefined;
}

/** Tunnel names: what a user may choose, safe in URLs, logs, HTML and DNS labels. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Client ids: printable ASCII without spaces, bounded. */
export const CLIENT_ID_PATTERN = /^[\x21-\x7e]{1,200}$/;

/** Request and tunnel ids: 128-bit random, hex. */
export const ID_PATTERN = /^[0-9a-f]{32}$/;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The bytes that open a frame: length prefix and JSON head. The raw body follows. */
export function encodeHead(head: DownstreamMessage | ResponseHead): Uint8Array {
  return encodeFrames([head]);
}

/** Where frames are assembled before their one copy out; grows to the largest batch seen. */
let scratch = new Uint8Array(64 * 1024);

/**
 * Several frames in one buffer, in order: each object becomes a head (length prefix and JSON), each
 * `Uint8Array` is copied as it is (a body). One allocation for a whole batch of frames.
 */
export function encodeFrames(parts: ReadonlyArray<DownstreamMessage | ResponseHead | Uint8Array>): Uint8Array {
  const texts: Array<string | Uint8Array> = new Array(parts.length);
  let most = 0;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const text = part instanceof Uint8Array ? part : JSON.stringify(part);
    texts[i] = text;
    // UTF-8 takes at most three bytes per UTF-16 code unit.
    most += typeof text === 'string' ? 4 + text.length * 3 : text.length;
  }
  if (most > scratch.length) scratch = new Uint8Array(Math.max(most, scratch.length * 2));
  let at = 0;
  for (const text of texts) {
    if (typeof text !== 'string') {
      scratch.set(text, at);
      at += text.length;
      continue;
    }
    const { written } = encoder.encodeInto(text, scratch.subarray(at + 4));
    scratch[at] = written >>> 24;
    scratch[at + 1] = (written >>> 16) & 0xff;
    scratch[at + 2] = (written >>> 8) & 0xff;
    scratch[at + 3] = written & 0xff;
    at += 4 + written;
  }
  return scratch.slice(0, at);
}

export class FrameError extends Error {
  readonly code = 'bad_frame';
}

/**
 * Incremental reader for a frame head. Feed it chunks until it returns the head; whatever
 * followed the head in the last chunk is returned as `rest` (the start of the body).
 * Holds at most {@link MAX_HEAD_BYTES}.
 */
export function createHeadReader(limit = MAX_HEAD_BYTES) {
  let pending: Uint8Array | undefined;
  let need = -1;
  return {
    push(chunk: Uint8Array): { head: unknown; rest: Uint8Array } | undefined {
      let buf: Uint8Array = chunk;
      if (pending) {
        const joined = new Uint8Array(pending.length + chunk.length);
        joined.set(pending, 0);
        joined.set(chunk, pending.length);
        buf = joined;
        pending = undefined;
      }
      if (need < 0) {
        if (buf.length < 4) {
          pending = buf;
          return undefined;
        }
        need = new DataView(buf.buffer, buf.byteOffset, 4).getUint32(0, false);
        if (need > limit) throw new FrameError(`frame head of ${need} bytes exceeds ${limit}`);
        buf = buf.subarray(4);
      }
      if (buf.length < need) {
        pending = buf;
        return undefined;
      }
      let head: unknown;
      try {
        head = JSON.parse(decoder.decode(buf.subarray(0, need)));
      } catch {
        throw new FrameError('frame head is not valid JSON');
      }
      return { head, rest: buf.subarray(need) };
    },
  };
}

const EMPTY = new Uint8Array(0);

export interface FrameReaderOptions {
  /** Length of the body that follows `head` (validate it here; throw {@link FrameError}). */
  bodyLength(head: unknown): number;
  /** One complete frame. `body` may share memory with the pushed chunks: copy it to keep it. */
  onFrame(head: unknown, body: Uint8Array): void;
  /** Largest head accepted. */
  limit?: number;
}

/**
 * Synchronous, incremental reader of an endless stream of frames (feature `stream`): feed it the
 * stream's chunks as they come; it calls `onFrame` for each complete frame and skips heartbeats.
 * No promise or listener per frame, and a body split over many small chunks is copied once.
 * Throws {@link FrameError} on a malformed frame: the rest of that stream means nothing.
 */
export function createFrameReader(options: FrameReaderOptions): { push(chunk: Uint8Array): void; readonly buffered: number } {
  const limit = options.limit ?? MAX_HEAD_BYTES;
  let chunks: Uint8Array[] = [];
  let first = 0;
  let size = 0;
  /** What is read next: the length prefix (-1), a head of `need` bytes (0), or a body (1). */
  let state: -1 | 0 | 1 = -1;
  let need = 4;
  let head: unknown;

  /** Removes and returns the next `n` bytes (n ≤ size): a view when they lie in one chunk. */
  function take(n: number): Uint8Array {
    if (n === 0) return EMPTY;
    size -= n;
    const c = chunks[first]!;
    if (c.length > n) {
      chunks[first] = c.subarray(n);
      return c.subarray(0, n);
    }
    if (c.length === n) {
      first++;
      if (first === chunks.length) {
        chunks = [];
        first = 0;
      }
      return c;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const part = chunks[first]!;
      const used = Math.min(part.length, n - filled);
      out.set(used === part.length ? part : part.subarray(0, used), filled);
      filled += used;
      if (used === part.length) first++;
      else chunks[first] = part.subarray(used);
    }
    if (first === chunks.length) {
      chunks = [];
      first = 0;
    } else if (first > 1024) {
      chunks = chunks.slice(first);
      first = 0;
    }
    return out;
  }

  return {
    push(chunk) {
      if (chunk.length === 0) return;
      chunks.push(chunk);
      size += chunk.length;
      while (size >= need) {
        if (state === -1) {
          const b = take(4);
          const n = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
          if (n === 0) continue; // a heartbeat
          if (n > limit) throw new FrameError(`frame head of ${n} bytes exceeds ${limit}`);
          state = 0;
          need = n;
        } else if (state === 0) {
          const bytes = take(need);
          try {
            head = JSON.parse(decoder.decode(bytes));
          } catch {
            throw new FrameError('frame head is not valid JSON');
          }
          state = 1;
          need = options.bodyLength(head);
        } else {
          const body = take(need);
          state = -1;
          need = 4;
          options.onFrame(head, body);
        }
      }
    },
    get buffered() {
      return size;
    },
  };
}

const isInt = (v: unknown, min: number, max: number): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

function isHeaderPairs(v: unknown): v is HeaderPairs {
  return (
    Array.isArray(v) &&
    v.every((p) => Array.isArray(p) && p.length === 2 && typeof p[0] === 'string' && typeof p[1] === 'string')
  );
}

/** Validates a response head received from a client. Throws {@link FrameError}. */
export function parseResponseHead(value: unknown): ResponseHead {
  const h = value as Partial<ResponseHead> | null;
  if (!h || typeof h !== 'object') throw new FrameError('response head must be an object');
  if (h.error !== undefined) {
    const e = h.error as { code?: unknown; message?: unknown };
    if (typeof e?.code !== 'string' || !(e.code in ERROR_CODES) || typeof e.message !== 'string') {
      throw new FrameError('response head has a malformed error');
    }
    const failed: ResponseHead = { status: ERROR_CODES[e.code as ErrorCode], headers: [], bodyLength: 0, error: { code: e.code as ErrorCode, message: e.message } };
    if (typeof h.id === 'string') failed.id = h.id;
    return failed;
  }
  // RFC 9110 §15: three-digit codes; 1xx are interim and never a final answer here, but for 101
  // Switching Protocols, which the server accepts only in answer to an upgrade request.
  if (!isInt(h.status, 200, 599) && h.status !== 101) throw new FrameError(`response status ${String(h.status)} is not a final status`);
  if (!isHeaderPairs(h.headers)) throw new FrameError('response headers must be [name, value] pairs');
  if (h.bodyLength !== null && !isInt(h.bodyLength, 0, Number.MAX_SAFE_INTEGER)) {
    throw new FrameError('response bodyLength must be a non-negative integer or null');
  }
  const head: ResponseHead = { status: h.status, headers: h.headers, bodyLength: h.bodyLength ?? null };
  if (typeof h.id === 'string') head.id = h.id;
  return head;
}

/** Validates a message received on a poll. Throws {@link FrameError}. */
export function parseServerMessage(value: unknown): ServerMessage {
  const m = value as { [k: string]: unknown } | null;
  if (!m || typeof m !== 'object' || typeof m.id !== 'string') throw new FrameError('message must have an id');
  if (m.type === 'cancel') return { type: 'cancel', id: m.id };
  if (m.type !== 'request') throw new FrameError(`unknown message type ${String(m.type)}`);
  if (typeof m.method !== 'string' || typeof m.url !== 'string' || !isHeaderPairs(m.headers)) {
    throw new FrameError('request message is malformed');
  }
  const bodyLength = m.bodyLength ?? null;
  if (bodyLength !== null && !isInt(bodyLength, 0, Number.MAX_SAFE_INTEGER)) {
    throw new FrameError('request bodyLength must be a non-negative integer or null');
  }
  const message: RequestMessage = { type: 'request', id: m.id, method: m.method, url: m.url, headers: m.headers, bodyLength };
  if (m.upgrade === true) message.upgrade = true;
  return message;
}

/**
 * Validates a message received on a downstream (feature `stream`): a {@link ServerMessage} without
 * a body, or a {@link StreamMessage}. Throws {@link FrameError}.
 */
export function parseDownstreamMessage(value: unknown): DownstreamMessage {
  const m = value as { type?: unknown; upstream?: unknown } | null;
  if (m && typeof m === 'object' && m.type === 'stream') {
    const notice: StreamMessage = { type: 'stream', upstream: m.upstream === true };
    if (typeof (m as { key?: unknown }).key === 'string') notice.key = (m as { key: string }).key;
    return notice;
  }
  const message = parseServerMessage(value);
  if (message.type === 'request' && message.bodyLength !== 0) throw new FrameError('a request on a downstream cannot carry a body');
  return message;
}

/** The part of a Node `Readable` that {@link readFrameHead} uses (structural, so no import). */
export interface FrameSource {
  read(): Uint8Array | null;
  unshift(chunk: Uint8Array): void;
  on(event: string, listener: (...args: any[]) => void): unknown;
  off(event: string, listener: (...args: any[]) => void): unknown;
  readonly readableEnded: boolean;
}

/**
 * Feeds a stream's chunks to `take` until it returns a value, puts back the bytes `take` did not
 * use, and resolves with the value. The shared loop of {@link readFrameHead} and
 * {@link readExactly}; `ended` says what an end of stream before that means.
 */
function readUntil<S extends FrameSource, T>(
  stream: S,
  take: (chunk: Uint8Array) => { value: T; rest: Uint8Array } | undefined,
  ended: () => { value: T } | Error,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const done = (fn: () => void) => {
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onEnd);
      fn();
    };
    function onReadable() {
      let chunk: Uint8Array | null;
      while ((chunk = stream.read()) !== null) {
        let got: { value: T; rest: Uint8Array } | undefined;
        try {
          got = take(chunk);
        } catch (error) {
          return done(() => reject(error));
        }
        if (got) {
          const { value, rest } = got;
          return done(() => {
            if (rest.length > 0) stream.unshift(rest);
            resolve(value);
          });
        }
      }
    }
    function onEnd() {
      const outcome = ended();
      done(() => (outcome instanceof Error ? reject(outcome) : resolve(outcome.value)));
    }
    function onError(error: unknown) {
      done(() => reject(error));
    }
    if (stream.readableEnded) return onEnd();
    stream.on('readable', onReadable);
    stream.on('end', onEnd);
    stream.on('close', onEnd);
    stream.on('error', onError);
  });
}

/**
 * Reads a frame head from the start of a stream and puts back whatever followed it, so the same
 * stream then yields exactly the raw body. No copy of the body, no extra stream. With `endOk`, a
 * stream that ends cleanly before a new head (between the frames of a batch) resolves undefined.
 */
export function readFrameHead<S extends FrameSource>(stream: S, limit = MAX_HEAD_BYTES, endOk = false): Promise<unknown> {
  const reader = createHeadReader(limit);
  let started = false;
  return readUntil(
    stream,
    (chunk) => {
      if (chunk.length > 0) started = true;
      const got = reader.push(chunk);
      return got && { value: got.head, rest: got.rest };
    },
    () => (endOk && !started ? { value: undefined } : new FrameError('the stream ended before the frame head was complete')),
  );
}

/**
 * Reads exactly `n` bytes from a stream (a small body inside a batch) and puts back whatever
 * followed them. Rejects if the stream ends first.
 */
export function readExactly<S extends FrameSource>(stream: S, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  if (n === 0) return Promise.resolve(out);
  let filled = 0;
  return readUntil(
    stream,
    (chunk) => {
      const used = Math.min(n - filled, chunk.length);
      out.set(chunk.subarray(0, used), filled);
      filled += used;
      return filled === n ? { value: out, rest: chunk.subarray(used) } : undefined;
    },
    () => new FrameError(`the stream ended ${n - filled} bytes before the body was complete`),
  );
}
