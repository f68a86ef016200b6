/**
 * Capped exponential backoff with jitter (AWS architecture blog, "Exponential Backoff And
 * Jitter"; cloudflared uses the same). Full jitter, the default: the delay is uniform in
 * [0, min(cap, base·2^attempt)], so a fleet of clients that lost the server at the same moment does
 * not come back in lock step. Equal jitter: uniform in the upper half of that range, for a pace
 * that must hold whatever the dice say (re-registrations).
 */
export interface Backoff {
  /** Delay before the next attempt, in ms; grows with each call. */
  next(): number;
  reset(): void;
  readonly attempt: number;
}

export function createBackoff(baseMs = 250, capMs = 30_000, random: () => number = Math.random, jitter: 'full' | 'equal' = 'full'): Backoff {
  let attempt = 0;
  return {
    next() {
      const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
      attempt++;
      return jitter === 'full' ? Math.floor(random() * ceiling) : Math.floor(ceiling / 2 + (random() * ceiling) / 2);
    },
    reset() {
      attempt = 0;
    },
    get attempt() {
      return attempt;
    },
  };
}
