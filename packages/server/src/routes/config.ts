import { NAME_PATTERN } from '@devtunnel/core/protocol';

/**
 * A route: an app of the cluster the tunnel server stands in for. It listens on a port of its
 * own; a request there that names a developer with a live tunnel on the route goes to that tunnel,
 * every other request to the app's real address (`upstream`). Declared once by the platform team
 * (`--route cart:8101=http://cart.shop.svc.cluster.local:80`); nothing in a request can make the
 * server dial anything but a route's upstream.
 */
export interface RouteConfig {
  /** Route name, as clients name it (`--route cart`); the tunnel name pattern. */
  name: string;
  /** Port the route listens on (outside the tunnel port range). */
  port: number;
  /** The app's real address: an http(s) origin, e.g. `http://cart.shop.svc.cluster.local:80`. */
  upstream: string;
  /**
   * A request naming a developer whose tunnel is offline: `fallback` sends it to the upstream (the
   * site keeps working), `error` answers 503 `tunnel_offline` (the developer sees at once that their
   * laptop is not serving). @default 'fallback'
   */
  offline?: 'fallback' | 'error';
  /**
   * Where browsers reach the route's app through the company's web proxy, e.g.
   * `https://shop.test.example.com/cart`: the link clients print is built on it. @default the
   * server's `publicUrl` with the route's port
   */
  publicUrl?: string;
}

/** A route after validation: the upstream parsed once. */
export interface ResolvedRoute extends Required<Omit<RouteConfig, 'publicUrl'>> {
  publicUrl: string | undefined;
  upstreamUrl: URL;
}

/** What is wrong with a route, in words that name the part at fault. */
export class RouteConfigError extends Error {}

const ROUTE_SYNTAX = 'NAME:PORT=URL, e.g. cart:8101=http://cart.shop.svc.cluster.local:80 (options after ";": offline=error, public-url=https://shop.example/cart)';

/** An http(s) origin with nothing after it but `/`; `what` names it in the message. */
function origin(what: string, value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new RouteConfigError(`${what} must be an http:// or https:// URL (got ${JSON.stringify(value)}).`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new RouteConfigError(`${what} must be an http:// or https:// URL (got ${JSON.stringify(value)}).`);
  if (url.username || url.password) throw new RouteConfigError(`${what} must not carry a user or password (got ${JSON.stringify(value)}).`);
  return url;
}

/**
 * Parses the command-line form, `NAME:PORT=URL[;offline=error][;public-url=URL]`: the route's
 * name and port, `=`, its upstream; options after `;`.
 */
export function parseRoute(text: string): RouteConfig {
  const [main = '', ...extras] = text.trim().split(';');
  const m = /^([^:=]+):(\d{1,5})=(.+)$/.exec(main.trim());
  if (!m) throw new RouteConfigError(`must be ${ROUTE_SYNTAX} (got ${JSON.stringify(text)}).`);
  const route: RouteConfig = { name: m[1]!.trim(), port: Number(m[2]), upstream: m[3]!.trim() };
  for (const extra of extras) {
    const [key = '', ...rest] = extra.split('=');
    const value = rest.join('=').trim();
    if (key.trim() === 'offline' && (value === 'error' || value === 'fallback')) route.offline = value;
    else if (key.trim() === 'public-url' && value) route.publicUrl = value;
    else throw new RouteConfigError(`has an unknown option ${JSON.stringify(extra)}; known: offline=fallback|error, public-url=URL.`);
  }
  return route;
}

/** Validates one route (a string in the command-line form, or an object). */
export function resolveRoute(input: RouteConfig | string): ResolvedRoute {
  const r = typeof input === 'string' ? parseRoute(input) : input;
  if (!r || typeof r !== 'object') throw new RouteConfigError(`must be ${ROUTE_SYNTAX}.`);
  if (typeof r.name !== 'string' || !NAME_PATTERN.test(r.name)) {
    throw new RouteConfigError(`name must be lower-case letters, digits and dashes, starting with a letter or digit, at most 63 characters (got ${JSON.stringify(r.name)}).`);
  }
  if (!Number.isInteger(r.port) || r.port < 1 || r.port > 65535) throw new RouteConfigError(`"${r.name}": port must be a port number from 1 to 65535 (got ${JSON.stringify(r.port)}).`);
  const upstreamUrl = origin(`"${r.name}": the upstream`, String(r.upstream));
  if ((upstreamUrl.pathname !== '/' && upstreamUrl.pathname !== '') || upstreamUrl.search || upstreamUrl.hash) {
    throw new RouteConfigError(`"${r.name}": the upstream must be the app's origin only (scheme, host, port), e.g. http://cart.shop.svc.cluster.local:80; requests keep their own path (got ${JSON.stringify(r.upstream)}).`);
  }
  const offline = r.offline ?? 'fallback';
  if (offline !== 'fallback' && offline !== 'error') throw new RouteConfigError(`"${r.name}": offline must be "fallback" or "error" (got ${JSON.stringify(r.offline)}).`);
  const publicUrl = r.publicUrl === undefined ? undefined : origin(`"${r.name}": public-url`, r.publicUrl).href.replace(/\/+$/, '');
  return { name: r.name, port: r.port, upstream: upstreamUrl.origin, upstreamUrl, offline, publicUrl };
}
