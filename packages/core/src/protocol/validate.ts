import { ERROR_CODES, type ErrorCode } from './error-codes';
import { FrameError } from './frames';
import { CLIENT_ID_PATTERN, ID_PATTERN, MAX_PROMISES, MAX_PUSH_BODY, NAME_PATTERN } from './constants';
import { CONTENT_CODINGS, isContentCoding } from './content-coding';
import type { DownstreamMessage, HeaderPairs, PushInfo, RegisterRequest, RequestMessage, ResponseHead, ServerMessage, StreamMessage } from './messages';

/** What arrives from the other side is checked here before anything uses it. */

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
  if (h.coding !== undefined) {
    if (!isContentCoding(h.coding)) throw new FrameError(`response coding ${JSON.stringify(h.coding)} is not one of ${CONTENT_CODINGS.join(', ')}`);
    head.coding = h.coding;
  }
  if (h.promise !== undefined) head.promise = parsePromise(h.promise);
  if (h.push !== undefined) {
    head.push = parsePush(h.push);
    if (head.id !== undefined) throw new FrameError('a push answers no request: it has no id');
    if (head.push.none || head.push.drop || head.push.validator) {
      if (head.bodyLength !== 0) throw new FrameError('a push without a body has bodyLength 0');
    } else if (head.status !== 200 || !isInt(head.bodyLength, 0, MAX_PUSH_BODY)) {
      throw new FrameError(`a push is a 200 with a bodyLength of at most ${MAX_PUSH_BODY}`);
    }
  }
  return head;
}

/** Origin-form and nothing else: a path, an optional query, no fragment, no spaces or controls. */
const PUSH_URL = /^\/(?!\/)[\x21-\x7e]{0,4095}$/;
const IDENTITY = /^[A-Za-z0-9_-]{22}$/;
const TOKEN_NAME = /^[a-z0-9-]{1,64}$/;

function parsePromise(value: unknown): string[] {
  if (!Array.isArray(value) || value.length > MAX_PROMISES || !value.every((u) => typeof u === 'string' && PUSH_URL.test(u) && !u.includes('#'))) {
    throw new FrameError(`promise must be at most ${MAX_PROMISES} origin-form URLs`);
  }
  return value as string[];
}

/** A push's description (feature `push`), every field checked. Throws {@link FrameError}. */
export function parsePush(value: unknown): PushInfo {
  const p = value as Partial<PushInfo> | null;
  if (!p || typeof p !== 'object') throw new FrameError('push must be an object');
  if (!isInt(p.gen, 0, Number.MAX_SAFE_INTEGER)) throw new FrameError('push gen must be a non-negative integer');
  if (p.drop === true) return { url: '/', identity: '', variant: '', vary: [], gen: p.gen, drop: true };
  if (typeof p.url !== 'string' || !PUSH_URL.test(p.url) || p.url.includes('#')) throw new FrameError('push url must be origin-form (/path?query)');
  if (typeof p.identity !== 'string' || !IDENTITY.test(p.identity)) throw new FrameError('push identity must be 22 base64url characters');
  if (typeof p.variant !== 'string' || p.variant.length > 100) throw new FrameError('push variant must be a short string');
  const vary = p.vary ?? [];
  if (!Array.isArray(vary) || vary.length > 8 || !vary.every((v) => Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && TOKEN_NAME.test(v[0]) && (v[1] === null || (typeof v[1] === 'string' && v[1].length <= 8192)))) {
    throw new FrameError('push vary must be at most 8 [lower-case name, value or null] pairs');
  }
  const push: PushInfo = { url: p.url, identity: p.identity, variant: p.variant, vary, gen: p.gen };
  if (p.none === true) push.none = true;
  else if (p.validator === true) {
    push.validator = true;
    if (p.alike !== undefined) {
      if (!Array.isArray(p.alike) || p.alike.length > MAX_PROMISES || !p.alike.every((v) => Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && PUSH_URL.test(v[0]) && !v[0].includes('#') && typeof v[1] === 'string' && /^(W\/)?"[\x21\x23-\x7e\x80-\uffff]{0,200}"$/.test(v[1]))) {
        throw new FrameError(`push alike must be at most ${MAX_PROMISES} [origin-form URL, entity-tag] pairs`);
      }
      push.alike = p.alike;
    }
  }
  return push;
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
  // Informational only: a value out of shape is dropped, never a reason to refuse the request.
  if (isInt(m.waitedMs, 0, 86_400_000)) message.waitedMs = m.waitedMs as number;
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

/** A registration body that breaks the contract; the message names the field and the rule. */
export class RegistrationError extends Error {
  readonly code = 'invalid_registration';
}

/** Validates a registration body (`POST /api/v1/tunnels`). Throws {@link RegistrationError}. */
export function parseRegisterRequest(body: unknown): RegisterRequest {
  const b = body as Partial<RegisterRequest> | null;
  if (!b || typeof b !== 'object') throw new RegistrationError('The registration body must be a JSON object.');
  if (typeof b.clientId !== 'string' || !CLIENT_ID_PATTERN.test(b.clientId)) {
    throw new RegistrationError('clientId must be 1-200 printable ASCII characters without spaces.');
  }
  if (b.name !== undefined && (typeof b.name !== 'string' || !NAME_PATTERN.test(b.name))) {
    throw new RegistrationError('name must be lower-case letters, digits and dashes, starting with a letter or digit, at most 63 characters.');
  }
  for (const key of ['preferredPort', 'localPort'] as const) {
    const v = b[key];
    if (v !== undefined && v !== null && !isInt(v, 1, 65535)) throw new RegistrationError(`${key} must be a port number.`);
  }
  if (b.features !== undefined && (!Array.isArray(b.features) || b.features.length > 32 || !b.features.every((f) => typeof f === 'string' && /^[a-z0-9-]{1,32}$/.test(f)))) {
    throw new RegistrationError('features must be a short list of lower-case names.');
  }
  if (b.version !== undefined && (typeof b.version !== 'string' || !/^[\w.+-]{1,40}$/.test(b.version))) {
    throw new RegistrationError('version must be a short version string.');
  }
  if (b.instance !== undefined && (typeof b.instance !== 'string' || !ID_PATTERN.test(b.instance))) {
    throw new RegistrationError('instance must be 32 lower-case hex digits.');
  }
  if (b.route !== undefined && (typeof b.route !== 'string' || !NAME_PATTERN.test(b.route))) {
    throw new RegistrationError('route must be a route name: lower-case letters, digits and dashes, at most 63 characters.');
  }
  return b as RegisterRequest;
}
