import type { Readable } from 'node:stream';
import { release, type BatchItem, type PollResult, type Session } from '../control';
import { createCancel } from '../cancel';
import type { LocalResponse } from '../forward';
import { discard } from '../http-call';
import type { RequestMessage } from '../protocol';
import type { ClientContext } from './context';
import { counted, failedUpload, finished } from './request-log';

/**
 * One tunnelled request: replayed against the local app, its answer sent back (into this turn's
 * batch when it is whole and small, else by an upload of its own, which may double as the next
 * poll), and reported. This is the hot path: no allocation or promise here that the work does
 * not need.
 */
export type HandleRequest = (s: Session, message: RequestMessage, body: Readable | Uint8Array | null) => Promise<void>;

export interface RequestHandlerDeps {
  /** Adds a whole answer to this turn's batch (outbox.ts). */
  send(s: Session, item: BatchItem): void;
  /** Hands the answer of an upload that acted as a poll to the handlers. */
  dispatch(s: Session, result: NonNullable<PollResult>): void;
  topUp(): void;
  pollTarget(): number;
  uploadFailed(s: Session, error: unknown): void;
}

export function createRequestHandler(ctx: ClientContext, deps: RequestHandlerDeps): HandleRequest {
  const { control, forwarder } = ctx;
  const { send, dispatch, topUp, pollTarget, uploadFailed } = deps;

  return async function handle(s, message, body) {
    ctx.active++;
    const t0 = performance.now();
    const abort = createCancel();
    ctx.inFlight.set(message.id, abort);
    const { tap } = ctx;
    const record = tap.start(message, body);
    let asPoll = false;
    let reported = false;
    let next: PollResult = null;
    const counter = { bytes: 0 };
    let response: LocalResponse | undefined;
    let batched = false;
    try {
      response = await forwarder.forward(message, tap.body(record, body), abort);
      tap.answered(record, response);
      // What this answer names, fetched and pushed next; promised in its head (speculate/).
      const promise = ctx.speculator?.answered(s, message, response);
      if (response.body === null && s.features?.includes('batch')) {
        // A whole answer: into this turn's batch upload, reported now (it is on its way).
        batched = true;
        counter.bytes = response.bytes?.length ?? 0;
        tap.sent(record, 'batch');
        finished(ctx, message, t0, response.head.status, counter.bytes, response.head.error?.code, record);
        // The head is ours (made by the forwarder): it names its request, as a batch needs.
        send(s, { head: Object.assign(response.head, promise ? { id: message.id, bodyLength: response.bytes?.length ?? 0, promise } : { id: message.id, bodyLength: response.bytes?.length ?? 0 }), bytes: response.bytes });
        return;
      }
      // A whole (small) answer lets its upload double as the next poll when polls are short: one
      // request fewer per browser request. A streamed one (large, SSE) never holds a poll slot.
      asPoll = response.body === null && !ctx.closed && ctx.waiting < pollTarget();
      if (asPoll) ctx.waiting++;
      if (response.bytes) counter.bytes = response.bytes.length;
      const upload = control.respond(s, message.id, response.head, response.bytes ?? (response.body ? counted(response.body, counter, tap, record) : null), asPoll, abort);
      tap.sent(record, asPoll ? 'poll' : 'upload');
      // Its answer may wait for the next browser request: report this one now, it is on its way.
      if (asPoll) {
        reported = true;
        finished(ctx, message, t0, response.head.status, counter.bytes, response.head.error?.code, record);
      }
      next = await upload;
      if (!reported) finished(ctx, message, t0, response.head.status, counter.bytes, response.head.error?.code, record);
    } catch (error) {
      if (response?.body) discard(response.body);
      if (body && !(body instanceof Uint8Array)) discard(body);
      uploadFailed(s, error);
      // An answer reported as sent (it rode an upload-as-poll) needs nothing more.
      if (!reported) {
        const [statusCode, code] = failedUpload(error, abort.aborted, asPoll, response);
        finished(ctx, message, t0, statusCode, counter.bytes, code, record);
      }
    } finally {
      if (asPoll) ctx.waiting--;
      ctx.active--;
      ctx.inFlight.delete(message.id);
    }
    // A batched answer's upload tops the polls up when it leaves.
    if (batched) return;
    if (next && !ctx.closed) dispatch(s, next);
    else release(next);
    topUp();
  };
}
