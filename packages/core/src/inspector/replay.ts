import type { Cancel } from '../cancel';
import type { Forwarder } from '../forward';
import { discard } from '../http-call';
import { stripHopByHop, type HeaderPairs, type RequestMessage } from '../protocol';
import { BODY_CAP, captureWhole, emptyCapture, isCut, keep, keptBytes } from './body';
import { headerBytes } from './capture';
import type { Captured, Replay, Store } from './store';

/**
 * A kept request sent to the local app again, as it was or edited, through the same forwarder as
 * the tunnel's requests (same Host rules, same timeouts); its answer kept beside the request.
 * Only ever the local app: the edit chooses a path, never a host.
 */

/** Replays kept per request (the oldest goes), and the largest body a replay sends. */
export const REPLAYS_KEPT = 3;
export const REPLAY_BODY_MAX = 1024 * 1024;
/** A replay's answer still streaming this long after its head is cut there (an event stream never ends). */
const REPLAY_BODY_MS = 5_000;

/** What the page may change; anything left out is as captured. */
export interface ReplayEdit {
  method?: string;
  /** Path and query, e.g. `/api/cart?id=3`. */
  url?: string;
  headers?: HeaderPairs;
  /** The body as text (UTF-8)… */
  body?: string;
  /** …or as base64, for bytes. */
  bodyBase64?: string;
}

export interface ReplayRequest {
  method: string;
  url: string;
  headers: HeaderPairs;
  body: Buffer | null;
}

/** Why a replay cannot be sent: a stable code and what to do. */
export interface ReplayProblem {
  code: 'not_replayable' | 'invalid_replay' | 'body_cut';
  message: string;
}

/** RFC 9110 §5.6.2 token (methods, header names). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Field values: no CR, LF or NUL (RFC 9110 §5.5). */
const FIELD_VALUE = /^[^\r\n\0]*$/;

const invalid = (message: string): ReplayProblem => ({ code: 'invalid_replay', message });

/** The request a replay sends, from the kept one and the page's edit, or why there is none. */
export function replayRequest(record: Captured, edit: unknown): ReplayRequest | ReplayProblem {
  if (record.upgrade) return { code: 'not_replayable', message: 'An upgrade (a WebSocket) cannot be replayed: its messages went both ways over a connection of its own.' };
  if (!edit || typeof edit !== 'object' || Array.isArray(edit)) return invalid('The replay must be a JSON object: { method, url, headers, body }, each optional.');
  const e = edit as ReplayEdit;
  const method = e.method ?? record.method;
  if (typeof method !== 'string' || method.length > 32 || !TOKEN.test(method)) return invalid(`The method must be a token such as GET or POST (got ${JSON.stringify(method)}).`);
  const url = e.url ?? record.url;
  if (typeof url !== 'string' || !url.startsWith('/') || url.startsWith('//') || url.length > 8192 || /[\s\0-\x1f\x7f]/.test(url)) {
    return invalid(`The path must start with / and hold no spaces, such as /api/cart?id=3: a replay goes to the local app only (got ${JSON.stringify(url)}).`);
  }
  const given = e.headers ?? record.requestHeaders;
  if (!Array.isArray(given) || given.length > 200) return invalid('The headers must be a list of [name, value] pairs, at most 200.');
  for (const pair of given) {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string' || !TOKEN.test(pair[0]) || !FIELD_VALUE.test(pair[1])) {
      return invalid(`Each header must be [name, value], the name a token and the value without line breaks (got ${JSON.stringify(pair)}).`);
    }
  }
  // Framing and hop-by-hop headers are the forwarder's to set, as for the tunnel's requests.
  const headers = stripHopByHop(given);
  let body: Buffer | null;
  if (e.body !== undefined || e.bodyBase64 !== undefined) {
    if (e.body !== undefined && typeof e.body !== 'string') return invalid('The body must be text (body) or base64 (bodyBase64).');
    if (e.bodyBase64 !== undefined && typeof e.bodyBase64 !== 'string') return invalid('bodyBase64 must be a base64 string.');
    body = e.body !== undefined ? Buffer.from(e.body, 'utf8') : Buffer.from(e.bodyBase64!, 'base64');
  } else if (record.requestBody && isCut(record.requestBody)) {
    return { code: 'body_cut', message: `The body was cut at ${record.requestBody.kept} of ${record.requestBody.size} bytes when it was kept: sent as it was, it would be another request. Edit the body, or send it empty.` };
  } else if (record.requestLength !== 0 && record.requestBody === undefined) {
    return { code: 'body_cut', message: 'The body of this request had not arrived when it was kept. Edit the body, or send it empty.' };
  } else body = record.requestBody && record.requestBody.size > 0 ? keptBytes(record.requestBody) : null;
  if (body && body.length > REPLAY_BODY_MAX) return invalid(`A replay sends at most ${REPLAY_BODY_MAX / 1024} KiB of body (got ${body.length} bytes).`);
  return { method, url, headers, body: body && body.length > 0 ? body : null };
}

export const isProblem = (value: ReplayRequest | ReplayProblem): value is ReplayProblem => 'code' in value;

function replayBytes(r: Replay): number {
  return 512 + r.url.length + headerBytes(r.requestHeaders) + (r.requestBody?.held ?? 0) + headerBytes(r.responseHeaders ?? []) + (r.responseBody?.held ?? 0);
}

/**
 * Sends `request` to the local app and keeps its answer (the first {@link BODY_CAP} of its body)
 * beside `record`, which holds the last {@link REPLAYS_KEPT} replays. Never throws for the local
 * app's failures: they are the answer (`error`).
 */
export async function replay(forwarder: Forwarder, store: Store, record: Captured, request: ReplayRequest, cancel: Cancel): Promise<Replay> {
  const t0 = performance.now();
  const message: RequestMessage = { type: 'request', id: 'replay', method: request.method, url: request.url, headers: request.headers, bodyLength: request.body?.length ?? 0 };
  const result: Replay = {
    time: Date.now(),
    method: request.method,
    url: request.url,
    requestHeaders: request.headers,
    requestBody: request.body ? captureWhole(request.body) : undefined,
    status: undefined,
    error: undefined,
    responseHeaders: undefined,
    responseBody: undefined,
    headersMs: undefined,
    localMs: undefined,
  };
  try {
    const response = await forwarder.forward(message, request.body, cancel);
    result.headersMs = performance.now() - t0;
    result.status = response.head.status;
    result.responseHeaders = response.head.headers;
    if (response.head.error) result.error = { code: response.head.error.code, message: response.head.error.message };
    if (response.bytes) result.responseBody = captureWhole(response.bytes);
    else if (response.body) result.responseBody = await readBounded(response.body);
    result.localMs = performance.now() - t0;
  } catch (error) {
    result.error = { code: 'cancelled', message: `The replay stopped: ${(error as Error).message}` };
  }
  const replays = (record.replays ??= []);
  replays.push(result);
  let grew = replayBytes(result);
  if (replays.length > REPLAYS_KEPT) grew -= replayBytes(replays.shift()!);
  store.grew(record, grew);
  store.touch(record);
  return result;
}

/** The first {@link BODY_CAP} of a streamed answer; the rest is dropped, and so is a body still coming after a while. */
async function readBounded(body: NonNullable<Awaited<ReturnType<Forwarder['forward']>>['body']>) {
  const capture = emptyCapture();
  const timer = setTimeout(() => discard(body), REPLAY_BODY_MS);
  try {
    for await (const chunk of body) {
      keep(capture, chunk as Uint8Array);
      if (capture.kept >= BODY_CAP && capture.size > BODY_CAP) break;
    }
  } catch {
    // Cut by the timer, or by the local app: what arrived is the answer.
  } finally {
    clearTimeout(timer);
    if (!body.destroyed) discard(body);
  }
  return capture;
}
