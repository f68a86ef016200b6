import type { ResolvedServerOptions } from '../options';
import type { TunnelSession } from '../session';
import type { ResolvedRoute } from './config';
import { createUpstream, type Upstream, type UpstreamHealth } from './upstream';

export type { ResolvedRoute, RouteConfig } from './config';

/**
 * The routes of the server and their members: which tunnel serves route R for the name N. A name
 * selects one tunnel per route; one developer serving `cart` and `search` uses one name on both,
 * so one cookie selects both. Members are tunnels registered for the route with the server's
 * token: nothing else can be selected.
 */
export interface RouteTable {
  /** The route listening on `port`, if any. */
  byPort(port: number): Route | undefined;
  byName(name: string): Route | undefined;
  readonly all: readonly Route[];
  /** Starts the upstream probes. */
  start(): void;
  close(): Promise<void>;
}

export interface Route {
  readonly config: ResolvedRoute;
  readonly upstream: Upstream;
  /** The member selected by `name`, live or not. */
  member(name: string): TunnelSession | undefined;
  /** Makes `tunnel` the member for its name (replacing the one before). */
  join(tunnel: TunnelSession): void;
  /** Drops `tunnel` if it is still the member for its name. */
  leave(tunnel: TunnelSession): void;
  members(): TunnelSession[];
  /** Requests served, by who served them (the dashboard's counters). */
  readonly served: { tunnel: number; upstream: number; error: number };
}

/** A route as `/api/v1/tunnels` (its `routes`) and the dashboard show it. */
export interface RouteSnapshot {
  name: string;
  port: number;
  upstream: string;
  offline: 'fallback' | 'error';
  health: { state: UpstreamHealth['state']; checkedAt: string | undefined; error: string | undefined };
  /** The tunnels registered for the route, by the name that selects them. */
  members: Array<{ name: string; port: number; state: string }>;
  served: { tunnel: number; upstream: number; error: number };
}

/** A tunnel registered for a route, wherever it is held (with several replicas, maybe another). */
export interface RouteMember {
  /** The name that selects it. */
  name: string;
  /** Its own tunnel port. */
  port: number;
  state: string;
  localPort: number | undefined;
}

/**
 * The route's members by name: this server's, and with several replicas those the others hold
 * (`elsewhere`). A name live anywhere shows live: the request that selects it is hopped there.
 */
export function routeMembers(route: Route, elsewhere: readonly RouteMember[] = []): RouteMember[] {
  const byName = new Map<string, RouteMember>();
  for (const t of route.members()) byName.set(t.name, { name: t.name, port: t.port, state: t.state(), localPort: t.localPort });
  for (const m of elsewhere) {
    const here = byName.get(m.name);
    if (!here || (here.state !== 'connected' && m.state === 'connected')) byName.set(m.name, m);
  }
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** How often an upstream is probed (a TCP connect) while nothing else tells us it answers. */
const PROBE_EVERY_MS = 15_000;

function createRoute(config: ResolvedRoute, options: ResolvedServerOptions): Route {
  const byName = new Map<string, TunnelSession>();
  return {
    config,
    upstream: createUpstream(config, options),
    member: (name) => byName.get(name),
    join(tunnel) {
      byName.set(tunnel.name, tunnel);
    },
    leave(tunnel) {
      if (byName.get(tunnel.name) === tunnel) byName.delete(tunnel.name);
    },
    members: () => [...byName.values()],
    served: { tunnel: 0, upstream: 0, error: 0 },
  };
}

export function createRouteTable(options: ResolvedServerOptions): RouteTable {
  const all = options.routes.map((r) => createRoute(r, options));
  const ports = new Map(all.map((r) => [r.config.port, r]));
  const names = new Map(all.map((r) => [r.config.name, r]));
  let timer: NodeJS.Timeout | undefined;
  return {
    byPort: (port) => ports.get(port),
    byName: (name) => names.get(name),
    all,
    start() {
      if (all.length === 0) return;
      const probeAll = () => {
        for (const r of all) void r.upstream.probe();
      };
      probeAll();
      timer = setInterval(probeAll, PROBE_EVERY_MS);
      timer.unref();
    },
    async close() {
      if (timer) clearInterval(timer);
      await Promise.all(all.map((r) => r.upstream.close()));
    },
  };
}

const iso = (t: number | undefined) => (t === undefined ? undefined : new Date(t).toISOString());

export function routeSnapshot(route: Route, elsewhere: readonly RouteMember[] = []): RouteSnapshot {
  const { config, upstream } = route;
  return {
    name: config.name,
    port: config.port,
    upstream: config.upstream,
    offline: config.offline,
    health: { state: upstream.health.state, checkedAt: iso(upstream.health.checkedAt), error: upstream.health.error },
    members: routeMembers(route, elsewhere).map(({ name, port, state }) => ({ name, port, state })),
    served: { ...route.served },
  };
}
