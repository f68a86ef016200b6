/**
 * Time, as the tunnel sessions see it: the current time and timers, in one object that tests
 * replace (a manual clock runs a session's queue, polls and leases with no sockets and no sleeps;
 * frp's port manager takes its clock the same way).
 */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): Timer;
  clearTimeout(timer: Timer | undefined): void;
}

/** A timer handle; only the clock that made it knows what it is. */
export type Timer = { readonly __timer: unique symbol } | NodeJS.Timeout;

/** Real time: `now` (the options' clock, Date.now by default) and Node's timers, which never keep the process alive. */
export function systemClock(now: () => number): Clock {
  return {
    now,
    setTimeout(fn, ms) {
      const t = setTimeout(fn, ms);
      t.unref();
      return t;
    },
    clearTimeout(timer) {
      if (timer !== undefined) clearTimeout(timer as NodeJS.Timeout);
    },
  };
}
