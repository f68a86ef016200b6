import type { Clock, Timer } from '../clock';

/**
 * Whether a tunnel's client lives: when it was last seen (a poll, a stream's bytes, an answer),
 * whether it was declared offline, and the grace after all its connections dropped before its
 * requests are failed (a client that reconnects at once loses nothing).
 */
export interface Liveness {
  readonly lastSeen: number;
  /** Declared offline (lost, or its lease lapsed) and not seen since. */
  readonly offline: boolean;
  seen(): void;
  markOffline(): void;
  /**
   * `holding`: a poll or downstream of the client is open now; `busy`: the client owes answers
   * (a client busy up to its cap has no poll waiting, yet it lives). Otherwise the lease decides.
   */
  state(holding: boolean, busy: boolean): 'connected' | 'offline';
  /** No sign of the client for longer than the lease at `t`. */
  lapsed(t: number): boolean;
  /**
   * Every connection of the client dropped: after the grace, `onLost()`, unless the client was
   * seen again meanwhile or `back()` says it is. One grace at a time.
   */
  lost(back: () => boolean, onLost: () => void): void;
  /** Cancels a pending grace. */
  stop(): void;
}

export function createLiveness(clock: Clock, timing: { leaseMs: number; graceMs: number }): Liveness {
  let lastSeen = clock.now();
  let offline = false;
  let grace: Timer | undefined;
  const lapsed = (t: number) => t - lastSeen > timing.leaseMs;
  return {
    get lastSeen() {
      return lastSeen;
    },
    get offline() {
      return offline;
    },
    seen() {
      lastSeen = clock.now();
      offline = false;
    },
    markOffline() {
      offline = true;
    },
    state(holding, busy) {
      if (holding) return 'connected';
      if (offline) return 'offline';
      if (busy) return 'connected';
      return lapsed(clock.now()) ? 'offline' : 'connected';
    },
    lapsed,
    lost(back, onLost) {
      if (grace) return;
      const at = lastSeen;
      grace = clock.setTimeout(() => {
        grace = undefined;
        if (back() || lastSeen !== at) return;
        onLost();
      }, timing.graceMs);
    },
    stop() {
      clock.clearTimeout(grace);
      grace = undefined;
    },
  };
}
