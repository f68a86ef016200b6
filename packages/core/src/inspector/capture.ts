import type { Readable } from 'node:stream';
import type { LocalResponse } from '../forward';
import type { HeaderPairs, RequestErrorCode, RequestMessage } from '../protocol';
import { captureWhole, emptyCapture, keep, type BodyCapture } from './body';
import { eventStreamReader, LAST_MESSAGES, messageLog, PREVIEW_BYTES, webSocketReader } from './messages';
import type { Captured, Store } from './store';

/**
 * The tunnel's handlers tell the tap what happens to each request (arrived, answered, bytes
 * passing, sent, closed), and the tap keeps it in the store. {@link noTap} does nothing: the
 * handlers call the same methods whether the inspector runs or not, with no branch of their own.
 * A body is never held up or read twice: its bytes are counted as they pass, and a copy of the
 * first {@link BODY_CAP} kept.
 */
export interface RequestTap {
  /** A request arrived (`body`: a whole one is kept now; a stream is kept by {@link body}). */
  start(message: RequestMessage, body: Readable | Uint8Array | null): Captured | undefined;
  /** What to forward as the request body: a stream's bytes are kept as they pass to the local app. */
  body(record: Captured | undefined, body: Readable | Uint8Array | null): Readable | AsyncIterable<Uint8Array> | Uint8Array | null;
  /** The local app's answer (or the forwarder's error head); a whole body is kept now. */
  answered(record: Captured | undefined, response: LocalResponse): void;
  /** Bytes of a streamed answer (or, after an upgrade, of the app's side) on their way up. */
  chunk(record: Captured | undefined, chunk: Uint8Array): void;
  /** The local app's streamed body ended. */
  localDone(record: Captured | undefined): void;
  /** How the answer goes up (see {@link Captured.via}). */
  sent(record: Captured | undefined, via: NonNullable<Captured['via']>): void;
  /** The request is over for the browser: the status it got, the bytes sent up, the tunnel's error code. */
  end(record: Captured | undefined, status: number, bytesOut: number, error?: RequestErrorCode): void;
  /** After a 101: bytes the browser sent through the upgraded connection. */
  browserChunk(record: Captured | undefined, chunk: Uint8Array): void;
  /** An upgraded connection closed. */
  closed(record: Captured | undefined): void;
}

const nothing = () => {};

/** The tap of a client without an inspector: every call does nothing, bodies pass untouched. */
export const noTap: RequestTap = Object.freeze({
  start: () => undefined,
  body: (_record: Captured | undefined, body: Readable | Uint8Array | null) => body,
  answered: nothing,
  chunk: nothing,
  localDone: nothing,
  sent: nothing,
  end: nothing,
  browserChunk: nothing,
  closed: nothing,
});

/** What a header list costs to keep, roughly: its characters and a little per pair. */
export function headerBytes(headers: HeaderPairs): number {
  let n = 0;
  for (const [name, value] of headers) n += name.length + value.length + 32;
  return n;
}

/**
 * The value of the header `lower` (a lower-case name): lengths compared first, so that headers
 * are not each lower-cased to find one.
 */
export function findHeader(headers: HeaderPairs, lower: string): string | undefined {
  for (const [name, value] of headers) if (name.length === lower.length && name.toLowerCase() === lower) return value;
  return undefined;
}

/** A record's fixed cost: the object and its numbers. */
const RECORD_BYTES = 512;
/** A message summary's cost at its fullest: the last messages' previews (two bytes a character). */
const MESSAGES_BYTES = LAST_MESSAGES * (PREVIEW_BYTES * 2 + 128);

/** Readers of an exchange's messages, by record; only upgrades and event streams have them. */
interface Readers {
  app: (chunk: Uint8Array) => void;
  browser?: (chunk: Uint8Array) => void;
}

export function createTap(store: Store): RequestTap {
  const readers = new WeakMap<Captured, Readers>();
  const now = () => performance.now();

  /** Keeps a chunk in `capture` (of a record still kept) and counts what it kept. */
  function add(record: Captured, capture: BodyCapture, chunk: Uint8Array): void {
    const kept = keep(capture, chunk);
    if (kept > 0) store.grew(record, kept);
  }

  async function* teed(record: Captured, body: Readable): AsyncIterable<Uint8Array> {
    const capture = (record.requestBody = emptyCapture());
    for await (const chunk of body) {
      if (!record.evicted) add(record, capture, chunk as Uint8Array);
      yield chunk as Uint8Array;
    }
  }

  return {
    start(message, body) {
      const record: Captured = {
        seq: 0,
        time: Date.now(),
        t0: now(),
        method: message.method,
        url: message.url,
        requestHeaders: message.headers,
        requestLength: message.bodyLength,
        requestBody: body instanceof Uint8Array ? captureWhole(body) : undefined,
        upgrade: message.upgrade === true,
        state: 'pending',
        status: undefined,
        error: undefined,
        responseHeaders: undefined,
        responseBody: undefined,
        bytesOut: 0,
        waitedMs: message.waitedMs,
        headersMs: undefined,
        localMs: undefined,
        totalMs: undefined,
        via: undefined,
        messages: undefined,
        replays: undefined,
        bytes: 0,
        evicted: false,
      };
      record.bytes = RECORD_BYTES + message.url.length + headerBytes(message.headers) + (record.requestBody?.held ?? 0);
      store.add(record);
      return record;
    },
    body(record, body) {
      return record && body && !(body instanceof Uint8Array) ? teed(record, body) : body;
    },
    answered(record, response) {
      if (!record || record.evicted) return;
      const { head } = response;
      const at = now() - record.t0;
      record.status = head.status;
      record.headersMs = at;
      if (head.error) record.error = { code: head.error.code, message: head.error.message };
      record.responseHeaders = head.headers;
      let grew = headerBytes(head.headers);
      if (record.upgrade && head.status === 101) {
        // The app took the upgrade: its bytes and the browser's are counted, not kept; only
        // WebSocket frames are read (any other upgraded protocol passes as bytes).
        record.localMs = at;
        record.responseBody = emptyCapture();
        if (/^websocket$/i.test(findHeader(head.headers, 'upgrade') ?? '')) {
          const since = () => now() - record.t0;
          record.messages = messageLog('websocket');
          readers.set(record, { app: webSocketReader(record.messages, 'app', since), browser: webSocketReader(record.messages, 'browser', since) });
          grew += MESSAGES_BYTES;
        }
      } else if (response.body) {
        record.state = 'streaming';
        record.responseBody = emptyCapture();
        if (/^text\/event-stream\b/i.test(findHeader(head.headers, 'content-type') ?? '')) {
          record.messages = messageLog('event-stream');
          readers.set(record, { app: eventStreamReader(record.messages, () => now() - record.t0) });
          grew += MESSAGES_BYTES;
        }
      } else {
        record.localMs = at;
        if (response.bytes) {
          record.responseBody = captureWhole(response.bytes);
          grew += record.responseBody.held;
        }
      }
      store.grew(record, grew);
      store.touch(record);
    },
    chunk(record, chunk) {
      if (!record || record.evicted) return;
      const capture = record.responseBody;
      // An upgraded connection's bytes are summarised, not kept.
      if (capture && !record.upgrade) add(record, capture, chunk);
      else if (capture) capture.size += chunk.length;
      readers.get(record)?.app(chunk);
    },
    localDone(record) {
      if (!record) return;
      record.localMs = now() - record.t0;
    },
    sent(record, via) {
      if (record) record.via = via;
    },
    end(record, status, bytesOut, error) {
      if (!record) return;
      record.totalMs = now() - record.t0;
      record.status = status;
      record.bytesOut = bytesOut;
      if (error && record.error?.code !== error) record.error = { code: error };
      record.state = status === 101 ? 'open' : 'done';
      if (status !== 101) readers.delete(record);
      store.touch(record);
    },
    browserChunk(record, chunk) {
      if (!record || record.evicted) return;
      (record.requestBody ??= emptyCapture()).size += chunk.length;
      readers.get(record)?.browser?.(chunk);
    },
    closed(record) {
      if (!record || record.state === 'closed') return;
      record.state = 'closed';
      record.totalMs = now() - record.t0;
      readers.delete(record);
      store.touch(record);
    },
  };
}
