import type { ServerMetrics } from '../metrics';
import type { ResolvedServerOptions } from '../options';
import type { TunnelDeps } from '../session';

/**
 * Push bounds (docs/speculation.md): a browser request waits this long at most for a promised push;
 * a tunnel keeps this many pushes and bytes, the server this many bytes over all tunnels.
 */
const PUSH_WAIT_MS = 5_000;
const PUSH_ENTRIES_PER_TUNNEL = 8_192;
const PUSH_BYTES_PER_TUNNEL = 32 * 1024 * 1024;
const PUSH_BYTES_TOTAL = 256 * 1024 * 1024;

/** What every tunnel's push cache shares: limits, one byte budget ("Memory"), the metrics. Off with a lifetime of 0. */
export function pushesOf(options: ResolvedServerOptions, metrics: ServerMetrics): TunnelDeps['pushes'] {
  if (options.pushLifetimeMs <= 0) return undefined;
  return {
    limits: { lifetimeMs: options.pushLifetimeMs, waitMs: PUSH_WAIT_MS, maxEntries: PUSH_ENTRIES_PER_TUNNEL, maxBytes: PUSH_BYTES_PER_TUNNEL },
    budget: { bytes: 0, maxBytes: PUSH_BYTES_TOTAL },
    events: { received: (n) => metrics.pushReceived(n), used: (_n, notModified) => metrics.pushUsed(notModified), dropped: (reason, n) => metrics.pushDropped(reason, n) },
  };
}
