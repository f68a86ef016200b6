import type { CancelMessage } from '@devtunnel/core/protocol';

/** What the queue needs of a request: whether it still waits, and whether a body follows its head. */
export interface Queued {
  state: string;
  readonly message: { readonly bodyLength: number | null };
}

/** What one poll answer carries: cancels first, then requests, of which only the last has a body. */
export interface Work<T> {
  cancels: CancelMessage[];
  batch: T[];
}

export interface WorkQueue<T extends Queued> {
  /** Requests waiting for the client. */
  readonly length: number;
  /** Cancels waiting for the client. */
  readonly cancels: number;
  /** The waiting requests, oldest first (the queue itself: copy it to change the queue while reading). */
  requests(): readonly T[];
  /** Adds a request at the end; false when the queue is full (the caller answers `queue_full`). */
  push(request: T): boolean;
  /** Puts requests back at the front, in their order (a poll died under them). */
  unshift(requests: readonly T[]): void;
  remove(request: T): void;
  /** Adds a cancel; cancels are advisory, so past the limit the oldest is dropped. */
  pushCancel(cancel: CancelMessage): void;
  unshiftCancels(cancels: readonly CancelMessage[]): void;
  /** Takes every waiting cancel. */
  takeCancels(): CancelMessage[];
  /**
   * What a poll should carry now, at most `limit` messages and `room` requests: cancels first,
   * then requests in order; a request with a body only last. Requests no longer waiting (or whose
   * browser left) are dropped on the way. Undefined when there is nothing.
   */
  takeWork(limit: number, room: number): Work<T> | undefined;
  /**
   * Takes, in order, at most `room` waiting requests without a body (a downstream carries only
   * those); the others keep their places.
   */
  takeBodyless(room: number): T[];
  clear(): void;
}

/**
 * The requests and cancels of one tunnel waiting for its client. Pure: no sockets, no timers;
 * `gone` says whether a request's browser left, so that it is skipped rather than sent.
 */
export function createWorkQueue<T extends Queued>(limit: number, gone: (request: T) => boolean): WorkQueue<T> {
  let queue: T[] = [];
  const controls: CancelMessage[] = [];
  const waiting = (r: T) => r.state === 'queued' && !gone(r);

  return {
    get length() {
      return queue.length;
    },
    get cancels() {
      return controls.length;
    },
    requests: () => queue,
    push(request) {
      if (queue.length >= limit) return false;
      queue.push(request);
      return true;
    },
    unshift(requests) {
      queue.unshift(...requests);
    },
    remove(request) {
      const i = queue.indexOf(request);
      if (i >= 0) queue.splice(i, 1);
    },
    pushCancel(cancel) {
      if (controls.length >= limit) controls.shift();
      controls.push(cancel);
    },
    unshiftCancels(cancels) {
      controls.unshift(...cancels);
    },
    takeCancels: () => controls.splice(0),
    takeWork(max, room) {
      const cancels: CancelMessage[] = [];
      const batch: T[] = [];
      while (controls.length > 0 && cancels.length < max) cancels.push(controls.shift()!);
      while (queue.length > 0 && cancels.length + batch.length < max && batch.length < room) {
        const r = queue[0]!;
        if (!waiting(r)) {
          queue.shift();
          continue;
        }
        if (r.message.bodyLength !== 0 && batch.length > 0) break; // a body must come last
        queue.shift();
        batch.push(r);
        if (r.message.bodyLength !== 0) break;
      }
      return cancels.length + batch.length > 0 ? { cancels, batch } : undefined;
    },
    takeBodyless(room) {
      const taken: T[] = [];
      let kept = 0;
      for (const r of queue) {
        if (!waiting(r)) continue;
        if (r.message.bodyLength !== 0 || taken.length >= room) {
          queue[kept++] = r;
          continue;
        }
        taken.push(r);
      }
      queue.length = kept;
      return taken;
    },
    clear() {
      queue = [];
      controls.length = 0;
    },
  };
}
