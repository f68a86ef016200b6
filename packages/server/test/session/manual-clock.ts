import type { Clock, Timer } from '../../src/clock';

/** A clock that moves only when told: timers fire in order as `advance()` passes them. */
export function manualClock(start = 1_000): Clock & { advance(ms: number): void; readonly pending: number } {
  let now = start;
  let serial = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  return {
    now: () => now,
    setTimeout(fn, ms) {
      const id = ++serial;
      timers.set(id, { at: now + ms, fn });
      return id as unknown as Timer;
    },
    clearTimeout(timer) {
      timers.delete(timer as unknown as number);
    },
    advance(ms) {
      const until = now + ms;
      for (;;) {
        let next: [number, { at: number; fn: () => void }] | undefined;
        for (const entry of timers) if (entry[1].at <= until && (!next || entry[1].at < next[1].at)) next = entry;
        if (!next) break;
        timers.delete(next[0]);
        now = next[1].at;
        next[1].fn();
      }
      now = until;
    },
    get pending() {
      return timers.size;
    },
  };
}
