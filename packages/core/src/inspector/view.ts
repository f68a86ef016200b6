import { brotliDecompressSync, constants, gunzipSync, inflateSync } from 'node:zlib';
import { headerValue, type HeaderPairs } from '../protocol';
import { BODY_CAP, isCut, keptBytes, type BodyCapture } from './body';
import { findHeader } from './capture';
import type { Captured, Replay } from './store';

/**
 * Kept requests as the page reads them (JSON): a summary for the list, everything for one
 * request. Bodies are made readable here, when someone looks, never on the request's way:
 * decompressed, decoded as UTF-8 text or JSON, or summarised as binary.
 */

/** Characters of a body decoded for the page at most: a compressed one may grow. */
const DECODED_MAX = 4 * BODY_CAP;
/** Bytes of a binary body shown as hex. */
const HEX_BYTES = 512;

const ms = (value: number | undefined) => (value === undefined ? undefined : Math.round(value * 10) / 10);

export interface RequestSummary {
  seq: number;
  time: number;
  method: string;
  url: string;
  state: Captured['state'];
  status: number | undefined;
  error: string | undefined;
  /** Bytes of the request body, and of the answer so far. */
  bytesIn: number;
  bytesOut: number;
  contentType: string | undefined;
  /** ms it waited on the server (the server says; older servers do not). */
  waitedMs: number | undefined;
  headersMs: number | undefined;
  localMs: number | undefined;
  totalMs: number | undefined;
  via: Captured['via'];
  /** The id the server's log line and the local app's logs carry (`X-Request-Id`). */
  requestId: string | undefined;
  /** W3C trace context, when the browser or a proxy sent one. */
  traceparent: string | undefined;
  upgrade: boolean;
  /** Messages of an event stream or WebSocket so far. */
  messageCount: number | undefined;
  replayCount: number;
}

export function summary(r: Captured): RequestSummary {
  return {
    seq: r.seq,
    time: r.time,
    method: r.method,
    url: r.url,
    state: r.state,
    status: r.status,
    error: r.error?.code,
    bytesIn: r.requestBody?.size ?? r.requestLength ?? 0,
    bytesOut: r.bytesOut || (r.responseBody?.size ?? 0),
    contentType: r.responseHeaders && findHeader(r.responseHeaders, 'content-type'),
    waitedMs: r.waitedMs,
    headersMs: ms(r.headersMs),
    localMs: ms(r.localMs),
    totalMs: ms(r.totalMs),
    via: r.via,
    requestId: findHeader(r.requestHeaders, 'x-request-id'),
    traceparent: findHeader(r.requestHeaders, 'traceparent'),
    upgrade: r.upgrade,
    messageCount: r.messages?.count,
    replayCount: r.replays?.length ?? 0,
  };
}

export interface BodyView {
  /** Bytes of the whole body, and of the part kept. */
  size: number;
  kept: number;
  /** Only the first `kept` bytes were kept. */
  cut: boolean;
  kind: 'none' | 'text' | 'json' | 'binary';
  /** `text` and `json`: the body as text (JSON indented); `binary`: a hex dump of its start. */
  text?: string;
  /** `Content-Encoding` undone to show it, or why it could not be. */
  note?: string;
}

const TEXTUAL = /^(text\/|application\/(json|[\w.+-]*\+json|x-ndjson|javascript|ecmascript|xml|[\w.+-]*\+xml|x-www-form-urlencoded|graphql))/i;
const JSONISH = /^application\/(json|[\w.+-]*\+json)\b/i;

function decompress(bytes: Buffer, encoding: string): Buffer {
  // A cut body has no end: Z_SYNC_FLUSH gives what its bytes decode to instead of failing.
  const options = { finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength: DECODED_MAX };
  if (encoding === 'gzip' || encoding === 'x-gzip') return gunzipSync(bytes, options);
  if (encoding === 'deflate') return inflateSync(bytes, options);
  return brotliDecompressSync(bytes, { finishFlush: constants.BROTLI_OPERATION_FLUSH, maxOutputLength: DECODED_MAX });
}

/**
 * The start of a compressed body, decoded: a body whose kept bytes decode to more than the page
 * shows (a well-compressed JSON) is decoded from fewer of them, halving until it fits.
 */
function decodedStart(bytes: Buffer, encoding: string): { bytes: Buffer; from: number } {
  for (let from = bytes.length; ; from = Math.ceil(from / 2)) {
    try {
      return { bytes: decompress(bytes.subarray(0, from), encoding), from };
    } catch (error) {
      if ((error as { code?: string }).code !== 'ERR_BUFFER_TOO_LARGE' || from <= 1024) throw error;
    }
  }
}

function hexDump(bytes: Buffer): string {
  const lines: string[] = [];
  for (let at = 0; at < Math.min(bytes.length, HEX_BYTES); at += 16) {
    const row = bytes.subarray(at, at + 16);
    const hex = [...row].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    const ascii = [...row].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${at.toString(16).padStart(6, '0')}  ${hex.padEnd(47)}  ${ascii}`);
  }
  return lines.join('\n');
}

/** A kept body made readable, by its headers' `Content-Type` and `Content-Encoding`. */
export function bodyView(capture: BodyCapture | undefined, headers: HeaderPairs | undefined): BodyView {
  if (!capture || capture.size === 0) return { size: 0, kept: 0, cut: false, kind: 'none' };
  const view: BodyView = { size: capture.size, kept: capture.kept, cut: isCut(capture), kind: 'binary' };
  if (capture.kept === 0) return view;
  let bytes = keptBytes(capture);
  const type = (headers && headerValue(headers, 'content-type')) ?? '';
  const encoding = ((headers && headerValue(headers, 'content-encoding')) ?? '').trim().toLowerCase();
  if (encoding && encoding !== 'identity') {
    if (!['gzip', 'x-gzip', 'deflate', 'br'].includes(encoding)) {
      view.note = `${encoding}-encoded: shown as it travelled`;
      view.text = hexDump(bytes);
      return view;
    }
    try {
      const decoded = decodedStart(bytes, encoding);
      view.note = `${encoding}-encoded: the first ${decoded.from} bytes decoded to ${decoded.bytes.length}`;
      bytes = decoded.bytes;
    } catch (error) {
      view.note = `${encoding}-encoded, not decoded (${(error as Error).message}): shown as it travelled`;
      view.text = hexDump(bytes);
      return view;
    }
  }
  if (!type || TEXTUAL.test(type)) {
    try {
      // `stream: true` leaves out a character cut in half at the end instead of failing on it.
      const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes, { stream: true });
      if (!/[\u0000-\u0008\u000e-\u001f]/.test(text)) {
        if (JSONISH.test(type) && !view.cut) {
          try {
            return { ...view, kind: 'json', text: JSON.stringify(JSON.parse(text), null, 2) };
          } catch {
            // Not JSON after all: shown as the text it is.
          }
        }
        return { ...view, kind: 'text', text };
      }
    } catch {
      // Not UTF-8: binary.
    }
  }
  view.text = hexDump(bytes);
  return view;
}

export function replayView(r: Replay) {
  return {
    time: r.time,
    method: r.method,
    url: r.url,
    status: r.status,
    error: r.error,
    requestHeaders: r.requestHeaders,
    requestBody: bodyView(r.requestBody, r.requestHeaders),
    responseHeaders: r.responseHeaders ?? [],
    responseBody: bodyView(r.responseBody, r.responseHeaders),
    headersMs: ms(r.headersMs),
    localMs: ms(r.localMs),
  };
}

export type ReplayView = ReturnType<typeof replayView>;

/**
 * The request body as text to edit for a replay: only when it is whole, not encoded, and UTF-8
 * text; the bytes as they came, not the indented JSON shown.
 */
function editableBody(r: Captured, requestHeaders: HeaderPairs): string | undefined {
  const b = r.requestBody;
  if (!b) return r.requestLength === 0 ? '' : undefined;
  if (b.size === 0) return '';
  if (isCut(b) || headerValue(requestHeaders, 'content-encoding')) return undefined;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(keptBytes(b));
    return /[\u0000-\u0008\u000e-\u001f]/.test(text) ? undefined : text;
  } catch {
    return undefined;
  }
}

/** One request in full: headers, bodies, messages, replays. */
export function detail(r: Captured) {
  const requestHeaders = r.requestHeaders;
  const responseHeaders = r.responseHeaders ?? [];
  return {
    ...summary(r),
    errorMessage: r.error?.message,
    editableBody: editableBody(r, requestHeaders),
    requestHeaders,
    requestBody: r.upgrade ? { size: r.requestBody?.size ?? 0, kept: 0, cut: false, kind: 'none' as const } : bodyView(r.requestBody, requestHeaders),
    responseHeaders,
    responseBody: r.upgrade ? { size: r.responseBody?.size ?? 0, kept: 0, cut: false, kind: 'none' as const } : bodyView(r.responseBody, responseHeaders),
    messages: r.messages,
    replays: (r.replays ?? []).map(replayView),
    evicted: r.evicted,
  };
}
