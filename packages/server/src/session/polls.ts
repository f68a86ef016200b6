import type { Clock, Timer } from '../clock';

/** A poll as the session sees it: the HTTP answer stays with whoever made the handle. */
export interface PollHandle {
  /** The client dropped it (its connection closed). */
  readonly gone: boolean;
  /** Answers that nothing came within the poll timeout (204). */
  idle(): void;
}

export interface PollSet<P extends PollHandle> {
  readonly size: number;
  /** Holds a poll; it answers `idle()` after the poll timeout unless taken or removed first. */
  add(poll: P): void;
  /** The oldest poll still open, no longer held; undefined when there is none. */
  take(): P | undefined;
  /** Forgets a poll (it closed); false when it was not held. */
  remove(poll: P): boolean;
  /** Every poll held, no longer held (to answer them all: draining, closing). */
  takeAll(): P[];
}

/** The polls one tunnel's client keeps waiting on the server, each with its timeout. */
export function createPollSet<P extends PollHandle>(clock: Clock, timeoutMs: number): PollSet<P> {
  const held = new Map<P, Timer>();
  return {
    get size() {
      return held.size;
    },
    add(poll) {
      held.set(
        poll,
        clock.setTimeout(() => {
          if (held.delete(poll)) poll.idle();
        }, timeoutMs),
      );
    },
    take() {
      for (const [poll, timer] of held) {
        held.delete(poll);
        clock.clearTimeout(timer);
        if (!poll.gone) return poll;
      }
      return undefined;
    },
    remove(poll) {
      const timer = held.get(poll);
      if (!held.delete(poll)) return false;
      clock.clearTimeout(timer);
      return true;
    },
    takeAll() {
      const all = [...held.keys()];
      for (const timer of held.values()) clock.clearTimeout(timer);
      held.clear();
      return all;
    },
  };
}
