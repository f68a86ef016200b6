import { batchFrames, release, ServerAnswerError, type BatchItem, type PollResult, type Session } from '../control';
import { MAX_BATCH } from '../protocol';
import type { ClientContext } from './context';

/**
 * Small answers ready in the same event-loop turn leave in one upload (feature `batch`), or as one
 * write on the upstream when it is open: one write and one read on the control channel for all of
 * them instead of one each. An upload whose connection broke may have lost its answers: they are
 * sent once more, which is safe (the server skips an answer it delivered already).
 */
export interface Outbox {
  /** Adds a whole answer to this turn's batch. */
  send(s: Session, item: BatchItem): void;
  /** Posts answers a broken connection (an upstream, a batch upload) may have lost, once more. */
  resend(s: Session, answers: BatchItem[] | Uint8Array): void;
}

export interface OutboxDeps {
  /** Hands the answer of an upload that acted as a poll to the handlers. */
  dispatch(s: Session, result: NonNullable<PollResult>): void;
  topUp(): void;
  pollTarget(): number;
  uploadFailed(s: Session, error: unknown): void;
}

export function createOutbox(ctx: ClientContext, deps: OutboxDeps): Outbox {
  const { control } = ctx;
  const { dispatch, topUp, pollTarget, uploadFailed } = deps;
  let box: { s: Session; items: BatchItem[] } | undefined;

  function send(s: Session, item: BatchItem): void {
    if (box && box.s !== s) flush();
    if (!box) {
      box = { s, items: [] };
      setImmediate(flush);
    }
    box.items.push(item);
    if (box.items.length >= MAX_BATCH) flush();
  }

  function flush(): void {
    const b = box;
    box = undefined;
    if (!b || b.items.length === 0 || ctx.closed) return;
    if (ctx.link?.upstreamReady && b.s === ctx.session) return ctx.link.send(batchFrames(b.items));
    const asPoll = ctx.waiting < pollTarget();
    if (asPoll) ctx.waiting++;
    control
      .respondBatch(b.s, b.items, asPoll)
      .then(
        (next) => {
          if (next && !ctx.closed) dispatch(b.s, next);
          else release(next);
        },
        (error: unknown) => {
          // A connection that broke may have lost the answers: once more, on another connection
          // (the server skips those it delivered already). The answers were reported when sent;
          // beyond that only a lost channel still matters.
          if (!(error instanceof ServerAnswerError) && b.s === ctx.session && !ctx.closed) resend(b.s, b.items);
          else uploadFailed(b.s, error);
        },
      )
      .finally(() => {
        if (asPoll) ctx.waiting--;
        topUp();
      });
  }

  function resend(s: Session, answers: BatchItem[] | Uint8Array): void {
    void control.respondBatch(s, answers, false).then(release, (error: unknown) => uploadFailed(s, error));
  }

  return { send, resend };
}
