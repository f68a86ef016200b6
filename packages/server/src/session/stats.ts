/** One finished request, as the dashboard shows it: never bodies, queries, tokens or cookies. */
export interface RecentRequest {
  time: number;
  method: string;
  /** Path without the query string. */
  path: string;
  status: number;
  durationMs: number;
  code?: string;
}

/** How many finished requests a tunnel remembers for the dashboard. */
export const RECENT_REQUESTS = 20;

/** A tunnel's counters, for the dashboard, `/api/v1/tunnels` and the metrics. */
export interface TunnelStats {
  requests: number;
  errors: number;
  bytesIn: number;
  bytesOut: number;
  readonly firstSeen: number;
  /** When the client was last seen (kept by the session's liveness). */
  readonly lastSeen: number;
  lastRequestAt: number | undefined;
  /** The last {@link RECENT_REQUESTS} finished requests, newest last. */
  readonly recent: RecentRequest[];
}

export function createStats(now: number, lastSeen: () => number): TunnelStats {
  return {
    requests: 0,
    errors: 0,
    bytesIn: 0,
    bytesOut: 0,
    firstSeen: now,
    get lastSeen() {
      return lastSeen();
    },
    lastRequestAt: undefined,
    recent: [],
  };
}

/** Remembers a finished request, forgetting the oldest beyond {@link RECENT_REQUESTS}. */
export function remember(stats: TunnelStats, request: RecentRequest): void {
  stats.recent.push(request);
  if (stats.recent.length > RECENT_REQUESTS) stats.recent.shift();
}
