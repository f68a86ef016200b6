/**
 * A request's cancellation. The hot path made an AbortController per request (an EventTarget, a
 * signal, listener bookkeeping) only to learn, rarely, that the browser left; this is a flag and
 * one slot of callbacks. `signal` makes a real AbortSignal on demand, for APIs that want one
 * (node:http for upgrades, undici's request()).
 */
export interface Cancel {
  readonly aborted: boolean;
  readonly reason: Error | undefined;
  /** Runs `fn` when cancelled (at once if it was); returns a function that forgets it. */
  onAbort(fn: (reason: Error) => void): () => void;
  /** An AbortSignal that aborts with this cancel (made on first use). */
  readonly signal: AbortSignal;
  /** Cancels: every callback runs once. Idempotent. */
  abort(reason?: Error): void;
}

export function createCancel(): Cancel {
  let reason: Error | undefined;
  let callbacks: Array<(reason: Error) => void> | undefined;
  let controller: AbortController | undefined;
  const cancel: Cancel = {
    get aborted() {
      return reason !== undefined;
    },
    get reason() {
      return reason;
    },
    onAbort(fn) {
      if (reason) {
        fn(reason);
        return () => {};
      }
      (callbacks ??= []).push(fn);
      return () => {
        const i = callbacks?.indexOf(fn) ?? -1;
        if (i >= 0) callbacks!.splice(i, 1);
      };
    },
    get signal() {
      if (!controller) {
        controller = new AbortController();
        if (reason) controller.abort(reason);
        else cancel.onAbort((r) => controller!.abort(r));
      }
      return controller.signal;
    },
    abort(why = new Error('aborted')) {
      if (reason) return;
      reason = why;
      const run = callbacks;
      callbacks = undefined;
      if (run) for (const fn of run) fn(why);
    },
  };
  return cancel;
}
