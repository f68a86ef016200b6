import type { Clock, Timer } from '../clock';

/** What the pending map needs of a request handed to the client. */
export interface Pendable {
  readonly id: string;
  state: string;
  readonly arrivedAt: number;
  dispatchedAt: number | undefined;
  timer: Timer | undefined;
}

export interface Pending<T extends Pendable> {
  /** Requests handed to the client and not settled, upgraded connections included. */
  readonly size: number;
  /** Requests the client owes an answer: upgraded connections do not prove it is alive. */
  awaiting(): number;
  get(id: string): T | undefined;
  values(): IterableIterator<T>;
  /** Hands a request to the client: it must answer before the deadline (from its arrival). */
  dispatch(request: T): void;
  /** (Re)starts a request's deadline, counted from `from`. */
  arm(request: T, from?: number): void;
  /** Stops a request's timer. */
  disarm(request: T): void;
  /** A 101 went out: the connection lives on with no deadline. */
  markUpgraded(request: T): void;
  /** A downstream that broke may have lost it: it goes again once the client shows it lives. */
  suspect(request: T): void;
  /** The suspects, no longer suspected (to send again). */
  takeSuspects(): T[];
  readonly suspects: number;
  /** Forgets a request (answered, failed or abandoned), its timer and suspicion with it. */
  forget(request: T): void;
}

/**
 * The requests one tunnel handed to its client: each has a deadline (`onDeadline`), upgraded
 * connections are counted apart, and what a broken downstream carried is remembered as suspect.
 */
export function createPending<T extends Pendable>(clock: Clock, deadlineMs: number, onDeadline: (request: T) => void): Pending<T> {
  const byId = new Map<string, T>();
  const suspects = new Set<T>();
  let upgraded = 0;

  function disarm(r: T): void {
    clock.clearTimeout(r.timer);
    r.timer = undefined;
  }

  function arm(r: T, from = r.arrivedAt): void {
    disarm(r);
    r.timer = clock.setTimeout(() => onDeadline(r), Math.max(0, from + deadlineMs - clock.now()));
  }

  return {
    get size() {
      return byId.size;
    },
    awaiting: () => byId.size - upgraded,
    get: (id) => byId.get(id),
    values: () => byId.values(),
    dispatch(r) {
      r.state = 'dispatched';
      r.dispatchedAt = clock.now();
      byId.set(r.id, r);
      arm(r);
    },
    arm,
    disarm,
    markUpgraded(r) {
      disarm(r);
      r.state = 'upgraded';
      upgraded++;
    },
    suspect: (r) => void suspects.add(r),
    takeSuspects() {
      const all = [...suspects];
      suspects.clear();
      return all;
    },
    get suspects() {
      return suspects.size;
    },
    forget(r) {
      if (r.state === 'upgraded') upgraded--;
      disarm(r);
      byId.delete(r.id);
      suspects.delete(r);
    },
  };
}
