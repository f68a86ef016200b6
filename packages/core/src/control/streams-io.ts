import { Readable } from 'node:stream';
import { request } from 'undici';
import { call, discard } from '../http-call';
import { clientPollDeadlineMs, CONTENT_TYPE_FRAME, createFrameReader, HEADER, HEARTBEAT, parseDownstreamMessage, paths, type DownstreamMessage } from '../protocol';
import { answerError, responseError } from './answer-error';
import { bearer, CALL_TIMEOUT_MS, UPLOAD_ANSWER_MS, WHOLE_ANSWER, type Endpoint } from './dispatcher';
import type { Session } from './session-calls';

/**
 * Connections with no end: the downstream and upstreams of feature `stream` (requests down and
 * answers up without a call per request), and an upgrade's `GET …/upstream` (a WebSocket's
 * browser bytes). The first two carry every request of a streaming tunnel, so they go through
 * `call()` (http-call.ts); the upgrade's upstream keeps undici's `request()` (the upgrade's
 * AbortSignal ends it and its body): it is one call per WebSocket, where `call()` saves nothing
 * that shows.
 */

export interface Downstream {
  readonly done: Promise<void>;
  close(): void;
}

export interface Upstream {
  /** Sends frames (see `batchFrames`) at once. */
  write(frames: Uint8Array): void;
  readonly done: Promise<void>;
  /** Ends the upload cleanly: what was written still arrives. */
  end(): void;
}

export interface StreamsIO {
  /**
   * Opens the downstream (feature `stream`) for at most `window` requests at once: resolves once
   * the server accepted it; its frames go to `onMessages`, those of one chunk together. `done`
   * settles when it ends (rejects on a failure).
   */
  openDownstream(session: Session, window: number, onMessages: (messages: DownstreamMessage[]) => void): Promise<Downstream>;
  /**
   * Opens an upstream (feature `stream`): an upload with no end that starts with a heartbeat, whose
   * frames are answers as in a batch. `done` settles when the server answered it.
   */
  openUpstream(session: Session): Upstream;
  /** After a 101: the browser's bytes for upgrade `requestId`, as a stream with no idle limit. */
  upstream(session: Session, requestId: string, signal: AbortSignal): Promise<Readable>;
}

export function createStreamsIO(endpoint: Endpoint): StreamsIO {
  const { dispatcher, origin, base, url } = endpoint;
  return {
    async openDownstream(session, window, onMessages) {
      const res = await call(dispatcher, {
        origin,
        path: base + paths.stream(session.id),
        method: 'GET',
        headers: { authorization: bearer(session.secret), [HEADER.window]: String(window) },
        headersTimeout: CALL_TIMEOUT_MS,
        // The server sends a heartbeat when the stream was quiet for pollTimeoutMs.
        bodyTimeout: clientPollDeadlineMs(session.timing.pollTimeoutMs),
        bufferUpTo: WHOLE_ANSWER,
      });
      if (res.statusCode !== 200 || !res.body) {
        if (res.body) discard(res.body);
        throw answerError(res.statusCode, res.headers, res.bytes?.toString() ?? '', 'downstream');
      }
      const body = res.body;
      let batch: DownstreamMessage[] = [];
      const reader = createFrameReader({
        bodyLength: () => 0,
        onFrame: (head) => void batch.push(parseDownstreamMessage(head)),
      });
      const done = new Promise<void>((resolve, reject) => {
        body.on('data', (chunk: Buffer) => {
          try {
            reader.push(chunk);
          } catch (error) {
            body.destroy(error as Error);
            return;
          }
          if (batch.length === 0) return;
          const messages = batch;
          batch = [];
          onMessages(messages);
        });
        body.once('end', resolve);
        body.once('error', reject);
        body.once('close', () => reject(new Error('the downstream closed')));
      });
      // Whoever holds it may not wait for its end: a failure must never be an unhandled rejection.
      done.catch(() => {});
      return { done, close: () => discard(body) };
    },

    openUpstream(session) {
      const body = new Readable({ read() {} });
      body.push(HEARTBEAT);
      const beat = setInterval(() => body.push(HEARTBEAT), session.timing.pollTimeoutMs);
      const done = call(dispatcher, {
        origin,
        path: base + paths.stream(session.id),
        method: 'POST',
        headers: { authorization: bearer(session.secret), 'content-type': CONTENT_TYPE_FRAME },
        body,
        headersTimeout: UPLOAD_ANSWER_MS,
        bodyTimeout: UPLOAD_ANSWER_MS,
        bufferUpTo: WHOLE_ANSWER,
      })
        .then((res) => {
          if (res.body) discard(res.body);
          if (res.statusCode !== 204) throw answerError(res.statusCode, res.headers, res.bytes?.toString() ?? '', 'upstream');
        })
        .finally(() => {
          clearInterval(beat);
          if (!body.destroyed) body.destroy();
        });
      done.catch(() => {});
      let ended = false;
      return {
        write(frames) {
          if (!ended && !body.destroyed) body.push(frames);
        },
        done,
        end() {
          if (ended) return;
          ended = true;
          clearInterval(beat);
          if (!body.destroyed) body.push(null);
        },
      };
    },

    async upstream(session, requestId, signal) {
      const res = await request(url(paths.upstream(session.id, requestId)), {
        dispatcher,
        method: 'GET',
        headers: { authorization: bearer(session.secret) },
        signal,
        headersTimeout: CALL_TIMEOUT_MS,
        // A WebSocket may be quiet for an hour: the tunnel's polls tell whether the server lives.
        bodyTimeout: 0,
      });
      if (res.statusCode !== 200) throw await responseError(res, 'upstream');
      return res.body;
    },
  };
}
