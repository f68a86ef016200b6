import { randomBytes } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { clientPollDeadlineMs, SERVER_FEATURES } from '@devtunnel/core/protocol';
import { InvalidOptionError } from './errors';
import { silentLogger, type ServerLogger } from './logger';
import type { ServerMetrics } from './metrics';
import { resolveRoute, RouteConfigError, type ResolvedRoute, type RouteConfig } from './routes/config';

/**
 * Options of {@link createTunnelServer}. The `devtunnel-server` CLI has one flag per option
 * (`tunnelPorts` is `--tunnel-ports`) and one `DEVTUNNEL_*` variable per flag
 * (`DEVTUNNEL_TUNNEL_PORTS`).
 *
 * The timeouts form one ladder, checked by {@link resolveServerOptions}:
 * poll (25 s) < the client's poll deadline (35 s) < wait for a poll (40 s)
 * < local app (50 s) < server deadline (55 s) < the usual ingress read timeout (60 s)
 * < keep-alive (65 s).
 */
export interface ServerOptions {
  /** Port of the control API (registration, polls, health). @default 8080 */
  port?: number;
  /** Address every listener binds. @default '0.0.0.0' */
  host?: string;
  /** Range the tunnel ports come from, e.g. `'9000-9099'`. @default '9000-9099' */
  tunnelPorts?: string;
  /**
   * Registration token clients must present (`Authorization: Bearer …`). When unset, one is
   * generated at start (see `generatedToken`), so the server is never open by accident.
   */
  token?: string;
  /**
   * Token that signs an admin into the dashboard, who can close any tunnel. Without it the
   * dashboard is read-only. @default none
   */
  adminToken?: string;
  /**
   * Source networks (CIDR) that may read the dashboard without a token, e.g. `['10.0.0.0/8']`.
   * Checked against the connection's address: behind an ingress that is the ingress's.
   * @default [] (a token is always needed)
   */
  dashboardOpenCidrs?: string[];
  /**
   * Apps of the cluster this server stands in for (docs/routes.md): each listens on a port of its
   * own and sends a request to the developer it names (cookie `devtunnel`, header `X-Devtunnel`,
   * `baggage` member `devtunnel`) or, naming nobody live, to the app's real address. Objects, or
   * strings in the `--route` form `NAME:PORT=URL[;offline=error][;public-url=URL]`. @default []
   */
  routes?: Array<RouteConfig | string>;
  /**
   * Shared state of several replicas (docs/deploy.md, "Several replicas"): `redis://HOST:PORT[/DB]`
   * or `rediss://…` (Redis or Valkey). Tunnels, names, port reservations, routes' members and which
   * replica holds each tunnel live there; any replica then serves any tunnel. Without it the server
   * runs alone, with `stateFile`. @default none
   */
  store?: string;
  /** The store's password, when it is not in the URL. @default none */
  storePassword?: string;
  /**
   * How the other replicas reach this one's control port, e.g. `http://10.1.2.3:8080` (in
   * Kubernetes the pod's IP from the Downward API). Required with `store`. @default none
   */
  advertiseUrl?: string;
  /** JSON file keeping port assignments across restarts. @default none (memory only) */
  stateFile?: string;
  /**
   * How the tunnel URL handed to clients is built; `{host}` is the host the client used to reach
   * the control API, `{port}` the tunnel port. @default 'http://{host}:{port}'
   */
  publicUrl?: string;
  /** How long a poll waits for a request before answering 204. @default 25000 */
  pollTimeoutMs?: number;
  /** How long a request waits for a free poll before failing 503 `tunnel_busy`. @default 40000 */
  waitForPollMs?: number;
  /** The client's deadline for the local app's response headers (504 `local_app_timeout`). @default 50000 */
  localTimeoutMs?: number;
  /** Server deadline from arrival to response headers (504 `tunnel_timeout`). @default 55000 */
  deadlineMs?: number;
  /** No progress on a body for this long, either way, ends it. No total cap. @default 60000 */
  bodyIdleTimeoutMs?: number;
  /** Browser connections must send their headers within this. @default 15000 */
  headersTimeoutMs?: number;
  /** Idle keep-alive connections are kept this long (above the ingress's 60 s). @default 65000 */
  keepAliveTimeoutMs?: number;
  /** No poll for this long and a tunnel is offline (503 `tunnel_offline`). @default 30000 */
  leaseMs?: number;
  /** Offline this long and a tunnel is forgotten; its port stays reserved for its owner. @default 600000 */
  expireMs?: number;
  /** After every poll of a client dropped, wait this long for a new one before failing its requests (502). @default 1000 */
  disconnectGraceMs?: number;
  /** Requests waiting for a poll, per tunnel; beyond it 503 `queue_full`. @default 1024 */
  queueLimit?: number;
  /** Polls a tunnel may keep waiting; beyond it 429 `too_many_polls`. @default 32 */
  maxPolls?: number;
  /** Upgraded connections (WebSockets) a tunnel may carry at once; beyond it 503 `too_many_upgrades`. @default 256 */
  maxUpgrades?: number;
  /** On close (SIGTERM), in-flight requests get this long to finish. @default 20000 */
  drainTimeoutMs?: number;
  /**
   * How long a push (an answer the client sent before the browser asked, docs/speculation.md) is
   * kept unused; `0` keeps none, and the server does not offer the feature. @default 15000
   */
  pushLifetimeMs?: number;
  /**
   * How many recent requests (tunnel ports and routes) the server keeps, without bodies or secrets,
   * for replay from the dashboard (docs/replay.md); `0` keeps none. @default 200
   */
  capture?: number;
  /** Where JSON log lines go. @default silent (the CLI logs to stdout) */
  logger?: ServerLogger;
  /** Where domain events go; `false` for none. @default Prometheus series served at `/metrics` */
  metrics?: ServerMetrics | false;
  /** Clock, for tests. @default Date.now */
  now?: () => number;
}

export interface ResolvedServerOptions extends Required<Omit<ServerOptions, 'token' | 'stateFile' | 'metrics' | 'adminToken' | 'routes' | 'store' | 'storePassword' | 'advertiseUrl'>> {
  store: string | undefined;
  storePassword: string | undefined;
  advertiseUrl: string | undefined;
  routes: ResolvedRoute[];
  adminToken: string | undefined;
  metrics: ServerMetrics | false | undefined;
  token: string;
  /** True when no token was configured and the server made one up. */
  generatedToken: boolean;
  stateFile: string | undefined;
  portRange: { from: number; to: number };
}

export const serverDefaults = Object.freeze({
  port: 8080,
  host: '0.0.0.0',
  tunnelPorts: '9000-9099',
  publicUrl: 'http://{host}:{port}',
  pollTimeoutMs: 25_000,
  waitForPollMs: 40_000,
  localTimeoutMs: 50_000,
  deadlineMs: 55_000,
  bodyIdleTimeoutMs: 60_000,
  headersTimeoutMs: 15_000,
  keepAliveTimeoutMs: 65_000,
  leaseMs: 30_000,
  expireMs: 600_000,
  disconnectGraceMs: 1_000,
  queueLimit: 1024,
  maxPolls: 32,
  maxUpgrades: 256,
  drainTimeoutMs: 20_000,
  pushLifetimeMs: 15_000,
  capture: 200,
  dashboardOpenCidrs: [] as string[],
  routes: [] as string[],
} satisfies ServerOptions);


/** What this server offers (see SERVER_FEATURES): `push` only while it keeps pushes. */
export function offeredFeatures(o: Pick<ResolvedServerOptions, 'pushLifetimeMs'>): string[] {
  return o.pushLifetimeMs > 0 ? [...SERVER_FEATURES] : SERVER_FEATURES.filter((f) => f !== 'push');
}

function invalid(option: string, message: string): InvalidOptionError {
  return new InvalidOptionError(`devtunnel-server: option "${option}" ${message}`, { option, problem: message });
}

export function parsePortRange(option: string, value: string): { from: number; to: number } {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(value.trim());
  const from = m ? Number(m[1]) : NaN;
  const to = m ? Number(m[2] ?? m[1]) : NaN;
  if (!m || from < 1 || to > 65535 || from > to) {
    throw invalid(option, `must be a port range such as 9000-9099 (got ${JSON.stringify(value)}).`);
  }
  return { from, to };
}

/**
 * How often Node checks its headers and request timeouts (its default, 30 s, would let a slow
 * client far past `headersTimeoutMs`): an eighth of that timeout, between 50 ms and 2 s. Two
 * servers run it: the control API and the one HTTP server of all tunnel ports.
 */
export function connectionsCheckingInterval(o: Pick<ResolvedServerOptions, 'headersTimeoutMs'>): number {
  return Math.max(50, Math.min(2000, Math.floor(o.headersTimeoutMs / 8)));
}

/** Routes validated one by one, then together: one name and one port each, outside the tunnel ports. */
function resolveRoutes(input: unknown, controlPort: number, range: { from: number; to: number }): ResolvedRoute[] {
  if (!Array.isArray(input)) throw invalid('routes', 'must be a list of routes such as ["cart:8101=http://cart.shop.svc.cluster.local:80"].');
  const routes: ResolvedRoute[] = [];
  for (const entry of input as Array<RouteConfig | string>) {
    let route: ResolvedRoute;
    try {
      route = resolveRoute(entry);
    } catch (error) {
      if (error instanceof RouteConfigError) throw invalid('routes', error.message);
      throw error;
    }
    if (routes.some((r) => r.name === route.name)) throw invalid('routes', `names "${route.name}" twice; each route has one name.`);
    const clash = routes.find((r) => r.port === route.port);
    if (clash) throw invalid('routes', `gives port ${route.port} to both "${clash.name}" and "${route.name}"; each route needs a port of its own.`);
    if (route.port === controlPort) throw invalid('routes', `"${route.name}": port ${route.port} is the control API's port; pick another.`);
    if (route.port >= range.from && route.port <= range.to) throw invalid('routes', `"${route.name}": port ${route.port} lies inside tunnelPorts (${range.from}-${range.to}); pick a port outside the range.`);
    routes.push(route);
  }
  return routes;
}

/** Merges defaults and validates every option, naming the option and the fix. */
export function resolveServerOptions(options: ServerOptions = {}): ResolvedServerOptions {
  const o = { ...serverDefaults, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as typeof serverDefaults & ServerOptions;
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw invalid('port', `must be a port number (got ${JSON.stringify(o.port)}).`);
  if (typeof o.host !== 'string' || !o.host) throw invalid('host', 'must be an address to bind, such as 0.0.0.0 or 127.0.0.1.');
  const portRange = parsePortRange('tunnelPorts', String(o.tunnelPorts));
  if (o.port >= portRange.from && o.port <= portRange.to && o.port !== 0) {
    throw invalid('port', `(${o.port}) lies inside tunnelPorts (${o.tunnelPorts}); pick a control port outside the range.`);
  }
  for (const key of ['pollTimeoutMs', 'waitForPollMs', 'localTimeoutMs', 'deadlineMs', 'bodyIdleTimeoutMs', 'headersTimeoutMs', 'keepAliveTimeoutMs', 'leaseMs', 'expireMs', 'disconnectGraceMs', 'drainTimeoutMs'] as const) {
    const v = o[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 1 || v > 86_400_000) throw invalid(key, `must be a number of milliseconds from 1 to 86400000 (got ${JSON.stringify(v)}).`);
  }
  if (typeof o.pushLifetimeMs !== 'number' || !Number.isInteger(o.pushLifetimeMs) || o.pushLifetimeMs < 0 || o.pushLifetimeMs > 300_000) {
    throw invalid('pushLifetimeMs', `must be a number of milliseconds from 0 (no pushes) to 300000 (got ${JSON.stringify(o.pushLifetimeMs)}).`);
  }
  if (!Number.isInteger(o.capture) || o.capture < 0 || o.capture > 10_000) {
    throw invalid('capture', `must be a number of requests from 0 (none kept) to 10000 (got ${JSON.stringify(o.capture)}).`);
  }
  for (const key of ['queueLimit', 'maxPolls', 'maxUpgrades'] as const) {
    const v = o[key];
    if (!Number.isInteger(v) || v < 1 || v > 100_000) throw invalid(key, `must be an integer from 1 to 100000 (got ${JSON.stringify(v)}).`);
  }
  // The ladder: each wait must end before the next one up gives up on it.
  const ladder: Array<[string, number, string, number]> = [
    ["the client's poll deadline", clientPollDeadlineMs(o.pollTimeoutMs), 'waitForPollMs', o.waitForPollMs],
    ['waitForPollMs', o.waitForPollMs, 'deadlineMs', o.deadlineMs],
    ['localTimeoutMs', o.localTimeoutMs, 'deadlineMs', o.deadlineMs],
    ['pollTimeoutMs', o.pollTimeoutMs, 'leaseMs', o.leaseMs],
    ['pollTimeoutMs', o.pollTimeoutMs, 'bodyIdleTimeoutMs', o.bodyIdleTimeoutMs],
    ['deadlineMs', o.deadlineMs, 'keepAliveTimeoutMs', o.keepAliveTimeoutMs],
    ['leaseMs', o.leaseMs, 'expireMs', o.expireMs],
  ];
  for (const [lowName, low, highName, high] of ladder) {
    if (low >= high) throw invalid(highName, `(${high} ms) must be longer than ${lowName} (${low} ms): every wait must end before the next one up gives up on it.`);
  }
  if (o.token !== undefined && (typeof o.token !== 'string' || o.token.length < 16 || /[^\x21-\x7e]/.test(o.token))) {
    throw invalid('token', 'must be at least 16 printable characters without spaces (try: openssl rand -hex 24).');
  }
  if (o.adminToken !== undefined && (typeof o.adminToken !== 'string' || o.adminToken.length < 16 || /[^\x21-\x7e]/.test(o.adminToken) || o.adminToken === o.token)) {
    throw invalid('adminToken', 'must be at least 16 printable characters without spaces, and differ from the registration token.');
  }
  for (const cidr of o.dashboardOpenCidrs) {
    const m = /^([0-9a-fA-F.:]+)\/(\d{1,3})$/.exec(cidr);
    const bits = m ? Number(m[2]) : -1;
    if (!m || !(isIPv4(m[1]!) ? bits <= 32 : isIPv6(m[1]!) && bits <= 128)) throw invalid('dashboardOpenCidrs', `must be networks such as 10.0.0.0/8 (got ${JSON.stringify(cidr)}).`);
  }
  if (!/\{port\}/.test(o.publicUrl)) throw invalid('publicUrl', `must contain {port}, e.g. http://{host}:{port} (got ${JSON.stringify(o.publicUrl)}).`);
  const routes = resolveRoutes(o.routes, o.port, portRange);
  if (o.store !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(o.store);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'redis:' && url.protocol !== 'rediss:')) throw invalid('store', `must be a Redis URL such as redis://redis.devtunnel.svc:6379/0 (got ${JSON.stringify(o.store.replace(/\/\/[^@/]*@/, '//…@'))}).`);
    if (o.advertiseUrl === undefined) throw invalid('advertiseUrl', 'is needed with a store: the URL the other replicas reach this one at, e.g. http://$(POD_IP):8080.');
    if (o.stateFile !== undefined) throw invalid('stateFile', 'cannot be used with a store: the store keeps the port reservations.');
  }
  if (o.advertiseUrl !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(o.advertiseUrl);
    } catch {
      url = undefined;
    }
    if (!url || url.protocol !== 'http:' || (url.pathname !== '/' && url.pathname !== '')) throw invalid('advertiseUrl', `must be an http:// origin such as http://10.1.2.3:8080 (got ${JSON.stringify(o.advertiseUrl)}).`);
  }
  const generatedToken = o.token === undefined;
  return {
    ...o,
    token: o.token ?? randomBytes(24).toString('hex'),
    generatedToken,
    stateFile: o.stateFile,
    store: o.store,
    storePassword: o.storePassword,
    advertiseUrl: o.advertiseUrl?.replace(/\/+$/, ''),
    metrics: o.metrics,
    adminToken: o.adminToken,
    portRange,
    routes,
    logger: o.logger ?? silentLogger,
    now: o.now ?? Date.now,
  };
}
