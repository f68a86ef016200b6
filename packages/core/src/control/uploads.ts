import type { Cancel } from '../cancel';
import { call } from '../http-call';
import { clientPollDeadlineMs, CONTENT_TYPE_FRAME, encodeFrames, encodeHead, HEADER, paths, type ResponseHead } from '../protocol';
import { bearer, UPLOAD_ANSWER_MS, WHOLE_ANSWER, type Endpoint } from './dispatcher';
import { pollAnswer, type PollResult } from './poll';
import type { Session } from './session-calls';

/**
 * Answers going up: one request's answer per upload, or several small ones framed together (feature
 * `batch`). One is made per browser request, so they go through `call()` (http-call.ts). With
 * `asPoll`, the server's answer to the upload is the next poll answer: one request fewer per
 * browser request.
 */

/**
 * One small answer of a batch upload: its head names the request (or is a push, feature `push`)
 * and has the exact bodyLength.
 */
export interface BatchItem {
  head: ResponseHead;
  bytes: Uint8Array | undefined;
}

export interface Uploads {
  respond(
    session: Session,
    requestId: string,
    head: ResponseHead,
    body: AsyncIterable<Uint8Array> | Uint8Array | null,
    asPoll: boolean,
    cancel: Cancel,
  ): Promise<PollResult>;
  /**
   * Several small answers in one upload (feature `batch`): the items, or their frames already
   * made by {@link batchFrames} (at most `MAX_BATCH` answers).
   */
  respondBatch(session: Session, items: BatchItem[] | Uint8Array, asPoll: boolean): Promise<PollResult>;
}

/** Answers as frames of a batch upload or an upstream: each head names its request. */
export function batchFrames(items: BatchItem[]): Uint8Array {
  const parts: Array<ResponseHead | Uint8Array> = [];
  for (const item of items) {
    parts.push(item.head);
    if (item.bytes) parts.push(item.bytes);
  }
  return encodeFrames(parts);
}

export function createUploads(endpoint: Endpoint): Uploads {
  const { dispatcher, origin, base } = endpoint;

  /** POSTs answers (framed); with `asPoll`, the server's answer to it is the next poll answer. */
  async function upload(
    session: Session,
    path: string,
    body: Uint8Array | AsyncIterable<Uint8Array>,
    length: number | undefined,
    asPoll: boolean,
    what: string,
    cancel?: Cancel,
    stallMs = UPLOAD_ANSWER_MS,
  ): Promise<PollResult> {
    const headers: Record<string, string> = { authorization: bearer(session.secret), 'content-type': CONTENT_TYPE_FRAME };
    if (length !== undefined) headers['content-length'] = String(length);
    if (asPoll) headers[HEADER.poll] = '1';
    const res = await call(dispatcher, {
      origin,
      path: base + path,
      method: 'POST',
      headers,
      body,
      cancel,
      // The server answers once it has the body. undici also counts this while the upload waits
      // to be written (the server reads no faster than the browser does): `stallMs` for a stream.
      headersTimeout: asPoll ? clientPollDeadlineMs(session.timing.pollTimeoutMs) : stallMs,
      bodyTimeout: session.timing.bodyIdleTimeoutMs,
      bufferUpTo: WHOLE_ANSWER,
    });
    return pollAnswer(res, what);
  }

  return {
    respond(session, requestId, head, body, asPoll, cancel) {
      // A small body goes in the same write as its head; a stream is sent as it comes, with
      // backpressure.
      if (body === null || body instanceof Uint8Array) {
        const bytes = encodeFrames(body ? [head, body] : [head]);
        return upload(session, paths.response(session.id, requestId), bytes, bytes.length, asPoll, 'response upload', cancel);
      }
      const headBytes = encodeHead(head);
      const length = head.bodyLength === null ? undefined : headBytes.length + head.bodyLength;
      // A browser that reads slowly holds the upload back: that is backpressure, not a failure.
      // A download may pause as long as the server lets a browser idle; a WebSocket (101) as long
      // as it lives (the tunnel's polls tell whether the server does).
      const stallMs = head.status === 101 ? 0 : Math.max(UPLOAD_ANSWER_MS, session.timing.bodyIdleTimeoutMs);
      return upload(session, paths.response(session.id, requestId), prepend(headBytes, body), length, asPoll, 'response upload', cancel, stallMs);
    },

    respondBatch(session, items, asPoll) {
      const body = items instanceof Uint8Array ? items : batchFrames(items);
      return upload(session, paths.responses(session.id), body, body.length, asPoll, 'batch upload');
    },
  };
}

async function* prepend(first: Uint8Array, rest: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  yield first;
  yield* rest;
}
