import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * What the server reports, as domain events (frp's server/metrics idea): the tunnel code says
 * what happened, and one implementation turns that into Prometheus series. No counter is kept
 * anywhere else; the gauges read the registry when scraped.
 */
export interface ServerMetrics {
  tunnelRegistered(): void;
  tunnelClosed(reason: string): void;
  requestFinished(event: RequestFinished): void;
  authFailed(): void;
  /** A request on a route, by who served it: a developer's `tunnel`, the real app (`upstream`), or an `error`. */
  routeRequest(route: string, servedBy: 'tunnel' | 'upstream' | 'error'): void;
  /** A push arrived from a client (feature `push`), with its body's size. */
  pushReceived(bytes: number): void;
  /** A push answered a browser request: with its body, or as a 304 (`notModified`). */
  pushUsed(notModified: boolean): void;
  /** A push was dropped unused (`bytes`: its body, sent up for nothing). */
  pushDropped(reason: string, bytes: number): void;
  /** The exposition text for `/metrics`, and its content type. */
  render(): Promise<{ text: string; contentType: string }>;
}

export interface RequestFinished {
  status: number;
  /** The tunnel's error code when the tunnel answered (tunnel_offline…), else undefined. */
  code: string | undefined;
  bytesIn: number;
  bytesOut: number;
  /** Time waiting for a poll, in ms. */
  queuedMs: number;
  /** Arrival to end, in ms (an upgraded connection's lifetime). */
  totalMs: number;
  upgrade: boolean;
}

/** What the gauges read at scrape time. */
export interface MetricsSnapshot {
  tunnels: Record<'connected' | 'offline' | 'closed' | 'expired', number>;
  pollsWaiting: number;
  queued: number;
  inFlight: number;
  upgraded: number;
  /** With several replicas: whether the shared store answers. */
  storeUp?: boolean;
}

export const noopMetrics: ServerMetrics = Object.freeze({
  tunnelRegistered() {},
  tunnelClosed() {},
  requestFinished() {},
  authFailed() {},
  routeRequest() {},
  pushReceived() {},
  pushUsed() {},
  pushDropped() {},
  async render() {
    return { text: '', contentType: 'text/plain; version=0.0.4' };
  },
});

function statusClass(status: number): string {
  return status === 499 ? 'aborted' : `${Math.floor(status / 100)}xx`;
}

/** Prometheus series (prom-client) on a registry of their own, with Node's process metrics. */
export function createPrometheusMetrics(snapshot: () => MetricsSnapshot): ServerMetrics {
  const register = new Registry();
  // prom-client samples the event loop's delay every 10 ms by default: 100 wake-ups a second of
  // an otherwise idle server, most of its idle CPU. Every 100 ms still shows a loop that stalls.
  collectDefaultMetrics({ register, eventLoopMonitoringPrecision: 100 });
  const requests = new Counter({ name: 'devtunnel_requests_total', help: 'Browser requests through tunnels, by status class and tunnel error code (empty when the local app answered).', labelNames: ['class', 'code'], registers: [register] });
  const bytes = new Counter({ name: 'devtunnel_bytes_total', help: 'Body bytes through tunnels: in = browser to laptop, out = laptop to browser.', labelNames: ['direction'], registers: [register] });
  const queueWait = new Histogram({ name: 'devtunnel_queue_wait_seconds', help: 'Time a request waited for a poll of its tunnel.', buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 25], registers: [register] });
  const latency = new Histogram({ name: 'devtunnel_request_duration_seconds', help: 'Arrival to end of a request through a tunnel (upgraded connections excluded).', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [register] });
  const upgrades = new Counter({ name: 'devtunnel_upgrades_total', help: 'Upgrade requests (WebSocket), by status class.', labelNames: ['class'], registers: [register] });
  const registered = new Counter({ name: 'devtunnel_tunnels_registered_total', help: 'Registrations accepted.', registers: [register] });
  const closed = new Counter({ name: 'devtunnel_tunnels_closed_total', help: 'Tunnel sessions ended, by reason.', labelNames: ['reason'], registers: [register] });
  const authFailures = new Counter({ name: 'devtunnel_auth_failures_total', help: 'Failed authentications on the control API.', registers: [register] });
  const tunnels = new Gauge({ name: 'devtunnel_tunnels', help: 'Tunnels by state (closed by their owner, or expired: either way a port still reserved for its owner).', labelNames: ['state'], registers: [register] });
  const polls = new Gauge({ name: 'devtunnel_polls_waiting', help: 'Long-polls held by the server.', registers: [register] });
  const queued = new Gauge({ name: 'devtunnel_requests_queued', help: 'Requests waiting for a poll.', registers: [register] });
  const inFlight = new Gauge({ name: 'devtunnel_requests_in_flight', help: 'Requests handed to clients and not answered yet.', registers: [register] });
  const storeUp = new Gauge({ name: 'devtunnel_store_up', help: 'With several replicas (--store): 1 while the shared store (Redis) answers, else 0.', registers: [register] });
  const routed = new Counter({ name: 'devtunnel_route_requests_total', help: 'Requests on routes, by route and by who served them (tunnel, upstream, error).', labelNames: ['route', 'served_by'], registers: [register] });
  const byRoute = new Map<string, ReturnType<typeof routed.labels>>();
  const pushes = new Counter({ name: 'devtunnel_pushes_received_total', help: 'Pushes received from clients (answers sent before the browser asked; docs/speculation.md).', registers: [register] });
  const pushBytes = new Counter({ name: 'devtunnel_push_bytes_received_total', help: 'Body bytes of the pushes received.', registers: [register] });
  const pushHits = new Counter({ name: 'devtunnel_push_hits_total', help: 'Browser requests answered from a push, by answer: full (200) or not_modified (304).', labelNames: ['answer'], registers: [register] });
  const pushDrops = new Counter({ name: 'devtunnel_pushes_dropped_total', help: 'Pushes dropped unused, by reason: expired, evicted (bounds), invalidated (a file changed), stale (fetched before a change), refused.', labelNames: ['reason'], registers: [register] });
  const pushWasted = new Counter({ name: 'devtunnel_push_bytes_wasted_total', help: 'Body bytes of pushes dropped unused: uplink spent for nothing.', registers: [register] });
  const open = new Gauge({ name: 'devtunnel_upgraded_connections', help: 'Upgraded connections (WebSockets) open now.', registers: [register] });

  // Label sets resolved once: a request's metrics are then plain increments (the set is bounded:
  // status classes × error codes).
  const byOutcome = new Map<string, ReturnType<typeof requests.labels>>();
  const outcome = (cls: string, code: string) => {
    const key = `${cls} ${code}`;
    let child = byOutcome.get(key);
    if (!child) byOutcome.set(key, (child = requests.labels(cls, code)));
    return child;
  };
  const bytesIn = bytes.labels('in');
  const bytesOut = bytes.labels('out');

  return {
    tunnelRegistered: () => registered.inc(),
    tunnelClosed: (reason) => closed.inc({ reason }),
    authFailed: () => authFailures.inc(),
    routeRequest(route, servedBy) {
      const key = `${route} ${servedBy}`;
      let child = byRoute.get(key);
      if (!child) byRoute.set(key, (child = routed.labels(route, servedBy)));
      child.inc();
    },
    pushReceived(n) {
      pushes.inc();
      if (n) pushBytes.inc(n);
    },
    pushUsed: (notModified) => pushHits.inc({ answer: notModified ? 'not_modified' : 'full' }),
    pushDropped(reason, n) {
      pushDrops.inc({ reason });
      if (n) pushWasted.inc(n);
    },
    requestFinished(e) {
      if (e.upgrade) {
        upgrades.inc({ class: statusClass(e.status) });
      } else {
        outcome(statusClass(e.status), e.code ?? '').inc();
        latency.observe(e.totalMs / 1000);
      }
      queueWait.observe(e.queuedMs / 1000);
      if (e.bytesIn) bytesIn.inc(e.bytesIn);
      if (e.bytesOut) bytesOut.inc(e.bytesOut);
    },
    async render() {
      const s = snapshot();
      for (const state of ['connected', 'offline', 'closed', 'expired'] as const) tunnels.set({ state }, s.tunnels[state]);
      polls.set(s.pollsWaiting);
      queued.set(s.queued);
      inFlight.set(s.inFlight);
      open.set(s.upgraded);
      if (s.storeUp !== undefined) storeUp.set(s.storeUp ? 1 : 0);
      return { text: await register.metrics(), contentType: register.contentType };
    },
  };
}
