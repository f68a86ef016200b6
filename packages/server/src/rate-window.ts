/**
 * Counts events per key in fixed windows that start with a key's first event (failed sign-ins
 * per address, registrations per identity). Memory is bounded: past `maxKeys`, windows that ended
 * are dropped, and if every one is still open, all are (a spray of keys must not grow the map).
 */
export interface RateWindow {
  /** Counts one event for `key`; returns the count in its window, this one included. */
  hit(key: string): number;
  /** Events counted for `key` in its current window (0 when it ended). */
  count(key: string): number;
  /** Milliseconds until `key`'s window ends (0 when none is open). */
  remainingMs(key: string): number;
}

export function createRateWindow(windowMs: number, now: () => number, maxKeys = 10_000): RateWindow {
  const windows = new Map<string, { count: number; since: number }>();

  function open(key: string): { count: number; since: number } | undefined {
    const w = windows.get(key);
    return w && now() - w.since <= windowMs ? w : undefined;
  }

  function prune(): void {
    const t = now();
    for (const [key, w] of windows) if (t - w.since > windowMs) windows.delete(key);
    if (windows.size >= maxKeys) windows.clear();
  }

  return {
    hit(key) {
      let w = open(key);
      if (!w) {
        if (windows.size >= maxKeys) prune();
        w = { count: 0, since: now() };
        windows.set(key, w);
      }
      return ++w.count;
    },
    count: (key) => open(key)?.count ?? 0,
    remainingMs(key) {
      const w = open(key);
      return w ? Math.max(0, w.since + windowMs - now()) : 0;
    },
  };
}
