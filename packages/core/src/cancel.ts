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

/** A class, not an object literal with getters: it is made per request. */
class Cancellation implements Cancel {
  reason: Error | undefined = undefined;
  private callbacks: Array<(reason: Error) => void> | undefined = undefined;
  private controller: AbortController | undefined = undefined;

  get aborted(): boolean {
    return this.reason !== undefined;
  }

  onAbort(fn: (reason: Error) => void): () => void {
    if (this.reason) {
      fn(this.reason);
      return () => {};
    }
    (this.callbacks ??= []).push(fn);
    return () => {
      const i = this.callbacks?.indexOf(fn) ?? -1;
      if (i >= 0) this.callbacks!.splice(i, 1);
    };
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      const controller = (this.controller = new AbortController());
      if (this.reason) controller.abort(this.reason);
      else this.onAbort((r) => controller.abort(r));
    }
    return this.controller.signal;
  }

  abort(why: Error = new Error('aborted')): void {
    if (this.reason) return;
    this.reason = why;
    const run = this.callbacks;
    this.callbacks = undefined;
    if (run) for (const fn of run) fn(why);
  }
}

export function createCancel(): Cancel {
  return new Cancellation();
}
