import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
import type { Cancel } from './cancel';
import { codingFor, encodedHeaders, encodeStream, encodeWhole, isEncodable, MIN_ENCODE_BYTES, MIN_LEG_ONLY_BYTES, remarkedHeaders, unmarkTags } from './encode';
import { call, discard, lengthOf, type CallAnswer } from './http-call';
import { headerList, MAX_WHOLE_BODY, pairsFromRaw, type ContentCoding, type ErrorCode, type HeaderPairs, type RequestMessage, type ResponseHead } from './protocol';

/**
 * Replays one tunnelled request against the local app and returns the response head plus its body
 * stream, or an error head the server turns into the page the browser sees. It never throws for
 * a failure of the local app; it throws only when the request was cancelled.
 */
export interface LocalTarget {
  host: string;
  port: number;
  https: boolean;
  rewriteHost: boolean;
  /** Hosts the local app accepts; others get `Host` rewritten (see `TunnelOptions.allowedHosts`). */
  allowedHosts: readonly string[] | undefined;
}

export interface LocalResponse {
  head: ResponseHead;
  /** The body as a stream (large or of unknown length), or… */
  body: Readable | null;
  /** …the whole body, read already because it is small: it goes up in one write with the head. */
  bytes?: Buffer;
  /** When `bytes` are encoded for the leg (`head.coding`): the body as the app sent it (the speculator scans it). */
  plain?: Buffer;
}


/** The local app accepted an upgrade: its 101 head, its socket, and bytes it already sent. */
export interface Upgraded {
  head: ResponseHead;
  socket: Socket;
  rest: Buffer;
}

export interface Forwarder {
  /** `body`: the browser's upload as it streams in, or whole when the poll answer held it all. */
  forward(message: RequestMessage, body: Readable | AsyncIterable<Uint8Array> | Uint8Array | null, cancel: Cancel): Promise<LocalResponse>;
  /** Performs an upgrade against the local app: upgraded, or its refusal as an ordinary response. */
  upgrade(message: RequestMessage, signal: AbortSignal): Promise<Upgraded | LocalResponse>;
  /** Points the forwarder at another local address (a dev server restarted on another port). */
  retarget(target: Partial<Pick<LocalTarget, 'host' | 'port' | 'https'>>): void;
  close(): Promise<void>;
}

export interface ForwarderTimeouts {
  /** Deadline for the local app's response headers. */
  localTimeoutMs: number;
  /** Idle limit between body chunks. */
  bodyIdleTimeoutMs: number;
}

/** Connecting to an app on the same machine is instant, or something is wrong. */
const CONNECT_TIMEOUT_MS = 10_000;

/** Statuses that never carry a body (RFC 9110 §6.4.1), whatever the headers say. */
const NO_BODY_STATUS = new Set([204, 304]);

/** An IPv6 literal in brackets, as URLs and Host headers write it. */
const bracketed = (host: string) => (host.includes(':') ? `[${host}]` : host);

/** The local app's origin, as requests are sent to it and messages name it. */
export function originOf(target: Pick<LocalTarget, 'host' | 'port' | 'https'>): string {
  return `${target.https ? 'https' : 'http'}://${bracketed(target.host)}:${target.port}`;
}

function errorHead(code: ErrorCode, message: string): LocalResponse {
  return { head: { status: 502, headers: [], bodyLength: 0, error: { code, message } }, body: null };
}

/** Maps undici/network failures of the local hop to a code and a message that says what to do. */
function classify(error: unknown, target: LocalTarget, timeouts: ForwarderTimeouts): LocalResponse {
  const e = error as { code?: string; cause?: { code?: string }; message?: string };
  const code = e.code ?? e.cause?.code;
  const where = originOf(target);
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EADDRNOTAVAIL') {
    return errorHead('local_app_refused', `Nothing answers at ${where} on the developer's machine (${code}). Start the local app, or check the port given to devtunnel.`);
  }
  if (code === 'UND_ERR_CONNECT_TIMEOUT') {
    return errorHead('local_app_timeout', `The local app at ${where} did not accept a connection within ${CONNECT_TIMEOUT_MS / 1000} s. Is the machine overloaded, or a firewall dropping the port?`);
  }
  if (code === 'UND_ERR_HEADERS_TIMEOUT') {
    return errorHead('local_app_timeout', `The local app at ${where} did not answer within ${Math.round(timeouts.localTimeoutMs / 1000)} s. It may be stuck or still compiling.`);
  }
  return errorHead('local_app_error', `The local app at ${where} failed to answer: ${e.message ?? String(error)}${code ? ` (${code})` : ''}.`);
}

function toPairs(headers: Record<string, string | string[] | undefined>): HeaderPairs {
  const out: HeaderPairs = [];
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) out.push([name, v]);
    else out.push([name, value]);
  }
  return out;
}

/**
 * `encode`: whether answers may go up encoded now (the option `compress` and the server's feature
 * `encode`, encode.ts); read per request. Without it nothing is encoded (the doctor's forwarder).
 */
export function createForwarder(target: LocalTarget, timeouts: () => ForwarderTimeouts, encode: () => boolean = () => false): Forwarder {
  const dispatcher: Dispatcher = new Agent({
    keepAliveTimeout: 4_000,
    connect: {
      // Your own dev server's certificate is usually self-signed; this hop never leaves the machine.
      rejectUnauthorized: false,
      // `localhost` may resolve to ::1 first while the app listens on 127.0.0.1 (or the reverse):
      // try both address families (RFC 8305 "Happy Eyeballs").
      autoSelectFamily: true,
      timeout: CONNECT_TIMEOUT_MS,
    },
  });
  let origin = '';
  let localHost = '';
  function aim(): void {
    origin = originOf(target);
    localHost = target.port === (target.https ? 443 : 80) ? bracketed(target.host) : `${bracketed(target.host)}:${target.port}`;
  }
  aim();

  // A browser sends the same Host on every request: the allow-list is checked once per value.
  let lastHost: string | undefined;
  let lastRewrite = false;
  function rewrites(host: string): boolean {
    if (target.rewriteHost) return true;
    if (!target.allowedHosts) return false;
    if (host !== lastHost) {
      lastHost = host;
      lastRewrite = !isHostAllowed(host, target.allowedHosts);
    }
    return lastRewrite;
  }

  /** `marks.unmarked`: a conditional header named a tag this client weakened (encode.ts). */
  function flatHeaders(message: RequestMessage, marks?: { unmarked: boolean }): string[] {
    const flat: string[] = [];
    for (const [name, value] of message.headers) {
      // The original Host stays in X-Forwarded-Host, which the server always sets.
      if (name.length === 4 && name.toLowerCase() === 'host' && rewrites(value)) {
        flat.push(name, localHost);
      } else if ((name.length === 13 || name.length === 8) && /^if-(?:none-)?match$/i.test(name)) {
        // The local app compares its own tags: the weak ones made for encoded answers go back.
        const unmarked = unmarkTags(value);
        if (unmarked !== undefined && marks) marks.unmarked = true;
        flat.push(name, unmarked ?? value);
      } else {
        flat.push(name, value);
      }
    }
    return flat;
  }

  // A browser sends the same Accept-Encoding on every request: it is read once per value.
  let lastAccept: string | undefined;
  let lastCoding = codingFor(undefined);
  function codingOf(message: RequestMessage): { coding: ContentCoding; legOnly: boolean } {
    const accept = headerList(message.headers, 'accept-encoding');
    if (accept !== lastAccept) {
      lastAccept = accept;
      lastCoding = codingFor(accept);
    }
    return lastCoding;
  }

  /**
   * The answer as it goes up: encoded (encode.ts) when the tunnel may, the type compresses and the
   * body is large enough for how it will be used; else as the local app sent it.
   */
  function answer(message: RequestMessage, status: number, headers: HeaderPairs, res: CallAnswer): LocalResponse {
    const bytes = res.bytes;
    if (bytes) {
      if (bytes.length >= MIN_ENCODE_BYTES && encode() && isEncodable(status, headers)) {
        const { coding, legOnly } = codingOf(message);
        if (!legOnly || bytes.length >= MIN_LEG_ONLY_BYTES) {
          const encoded = encodeWhole(bytes, coding);
          // Text that does not compress (already minified and tiny, random ids) goes as it is.
          if (encoded.length < bytes.length) return { head: { status, headers: encodedHeaders(headers, coding), bodyLength: encoded.length, coding }, body: null, bytes: encoded, plain: bytes };
        }
      }
      return { head: { status, headers, bodyLength: bytes.length }, body: null, bytes };
    }
    const body = res.body!;
    const length = lengthOf(res.headers);
    // A streamed body is larger than a whole one (MAX_WHOLE_BODY), or of unknown length.
    if (encode() && isEncodable(status, headers)) {
      const { coding } = codingOf(message);
      const encoded = encodeStream(body, coding, length);
      encoded.on('error', () => {});
      return { head: { status, headers: encodedHeaders(headers, coding), bodyLength: null, coding }, body: encoded };
    }
    // The body may fail (a malformed chunk) before its upload starts reading it: an unheard
    // error would crash the host process. Whoever reads it later still gets the error.
    body.on('error', () => {});
    return { head: { status, headers, bodyLength: length }, body };
  }

  return {
    async forward(message, body, cancel) {
      const marks = { unmarked: false };
      const flat = flatHeaders(message, marks);
      if (message.bodyLength !== null && message.bodyLength > 0) flat.push('content-length', String(message.bodyLength));
      const t = timeouts();
      let res: CallAnswer;
      try {
        res = await call(dispatcher, {
          origin,
          path: message.url,
          method: message.method,
          headers: flat,
          body: message.bodyLength === 0 ? null : body,
          cancel,
          headersTimeout: t.localTimeoutMs,
          bodyTimeout: t.bodyIdleTimeoutMs,
          // Most dev-server answers (modules, JSON) arrive whole: one buffer, one upload write.
          bufferUpTo: MAX_WHOLE_BODY,
        });
      } catch (error) {
        if (cancel.aborted) throw error;
        return classify(error, target, t);
      }
      // RFC 9110 §15: a final status is 200-599.
      if (res.statusCode < 200 || res.statusCode > 599) {
        if (res.body) discard(res.body);
        return errorHead('local_app_error', `The local app at ${origin} answered with status ${res.statusCode}, which is not a valid HTTP status.`);
      }
      const headers = toPairs(res.headers);
      if (message.method === 'HEAD' || NO_BODY_STATUS.has(res.statusCode)) {
        // Let the server keep the local app's Content-Length on HEAD/304 (it describes the
        // representation, not this message), while it sends no body.
        return { head: { status: res.statusCode, headers: res.statusCode === 304 && marks.unmarked ? remarkedHeaders(headers) : headers, bodyLength: 0 }, body: null };
      }
      return answer(message, res.statusCode, headers, res);
    },
    upgrade(message, signal) {
      // node:http, not undici: it hands over the socket after a 101 and the answer otherwise.
      return new Promise((resolve) => {
        const t = timeouts();
        let settled = false;
        const settle = (value: Upgraded | LocalResponse) => {
          if (settled) return;
          settled = true;
          resolve(value);
        };
        const req = (target.https ? httpsRequest : httpRequest)({
          host: target.host,
          port: target.port,
          method: message.method,
          path: message.url,
          headers: flatHeaders(message),
          signal,
          rejectUnauthorized: false,
          setHost: false,
          // Passed on to net.connect (Happy Eyeballs, as for plain requests); missing from the types.
          ...({ autoSelectFamily: true } as object),
        });
        req.setTimeout(t.localTimeoutMs, () => req.destroy(Object.assign(new Error('no answer to the upgrade'), { code: 'UND_ERR_HEADERS_TIMEOUT' })));
        req.once('upgrade', (res: IncomingMessage, socket: Socket, rest: Buffer) => {
          socket.setTimeout(0);
          socket.setNoDelay(true);
          settle({ head: { status: 101, headers: pairsFromRaw(res.rawHeaders), bodyLength: null }, socket, rest });
        });
        req.once('response', (res: IncomingMessage) => {
          // A refusal (400, 403, 426…): returned to the browser as it is.
          req.setTimeout(0);
          settle({ head: { status: res.statusCode ?? 502, headers: pairsFromRaw(res.rawHeaders), bodyLength: lengthOf(res.headers) }, body: res });
        });
        req.once('error', (error) => {
          if (signal.aborted) return settle(errorHead('local_app_error', 'cancelled'));
          settle(classify(error, target, t));
        });
        req.end();
      });
    },
    retarget(next) {
      Object.assign(target, Object.fromEntries(Object.entries(next).filter(([, v]) => v !== undefined)));
      aim();
    },
    async close() {
      await dispatcher.destroy();
    },
  };
}

/**
 * Whether a `Host` value passes an allow-list with Vite's and webpack-dev-server's rules: an exact
 * host name, or `.example.com` for the domain and all its subdomains; IP literals and `localhost`
 * (and `*.localhost`) always pass (RFC 6761 §6.3).
 */
export function isHostAllowed(hostHeader: string, allowed: readonly string[]): boolean {
  const host = hostHeader.startsWith('[') ? hostHeader.slice(1, hostHeader.indexOf(']')) : hostHeader.replace(/:\d+$/, '');
  const name = host.toLowerCase();
  if (isIP(name) || name === 'localhost' || name.endsWith('.localhost')) return true;
  return allowed.some((entry) => {
    const e = entry.toLowerCase();
    return e.startsWith('.') ? name === e.slice(1) || name.endsWith(e) : name === e;
  });
}

/** True when `result` is an accepted upgrade rather than a response. */
export function isUpgraded(result: Upgraded | LocalResponse): result is Upgraded {
  return 'socket' in result;
}
