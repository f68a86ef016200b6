import { TunnelError } from './errors';
import { silentLogger, type Logger } from './logger';
import { NAME_PATTERN } from './protocol';

/**
 * Options of {@link openTunnel}. The CLI flags carry the same names (`--rewrite-host` is
 * `rewriteHost`), and so do the plugins' options.
 */
export interface TunnelOptions {
  /**
   * URL of the tunnel server's control API, e.g. `https://devtunnel.test.example.com`.
   * CLI: `--server` or `DEVTUNNEL_SERVER`.
   */
  server: string;
  /** Registration token. CLI: `--token` or `DEVTUNNEL_TOKEN` (prefer the variable: flags show in `ps`). */
  token: string;
  /** Port of the local app to expose. */
  port: number;
  /**
   * Host of the local app. `localhost` reaches an app listening on 127.0.0.1 or ::1.
   * @default 'localhost'
   */
  host?: string;
  /**
   * Talk https to the local app (self-signed certificates are accepted: it is your own machine).
   * @default false
   */
  https?: boolean;
  /**
   * Name shown on the server's tunnel list: `^[a-z0-9][a-z0-9-]{0,62}$`.
   * @default '<user>-<port>' made safe
   */
  name?: string;
  /**
   * A route of the tunnel server (an app of the cluster it stands in for) to serve: requests on
   * that route that select this tunnel's name (cookie `devtunnel=<name>`, header `X-Devtunnel`, or
   * `baggage` member `devtunnel`) come here, all others go on to the real app. On a route the name
   * defaults to your user name, so one name selects every route you serve.
   * @default none (the tunnel's own port only)
   */
  route?: string;
  /**
   * What makes this tunnel the same tunnel next time (same identity, same port): by default the
   * local port. The plugins pass the project's root, since a dev server may move from 5173 to 5174.
   * @default the local port
   */
  identity?: string;
  /**
   * Ask for this tunnel port. By default the client asks for the port it had last time for this
   * server and local port; the server honours it when free or already yours.
   */
  preferredPort?: number;
  /**
   * Long-polls kept waiting on the server while requests come: how many can start at once without
   * waiting for a poll (a poll answer also carries what was queued in its turn). A quarter of them
   * (at least one) while the tunnel is quiet; with streams up, a quarter (bodies only).
   * @default 8
   */
  polls?: number;
  /**
   * Requests handled at the same time, at most. Beyond this, requests wait.
   * @default 256
   */
  maxInFlight?: number;
  /**
   * How requests and answers travel to and from the tunnel server. `'auto'`: on two streams that
   * stay open (one request down, one upload up, with no poll or upload per request), once each
   * proved that nothing on the way holds its bytes back; on long polls until then, and whenever a
   * stream is down or blocked by a buffering proxy. `'poll'`: long polls only.
   * @default 'auto'
   */
  transport?: 'auto' | 'poll';
  /**
   * Replace the browser's `Host` header with the local address (`localhost:5173`). Off by default:
   * the dev server sees the cluster's host name, which is what links and cookies need; the Vite and
   * webpack plugins add that host to the dev server's allow-list instead.
   * @default false
   */
  rewriteHost?: boolean;
  /**
   * Host names the local app accepts in `Host` (a dev server's allow-list: Vite's
   * `server.allowedHosts`, webpack-dev-server's `allowedHosts`). A request for any other host
   * reaches the app with `Host` rewritten to the local address, the original kept in
   * `X-Forwarded-Host`, so a page loaded through the cluster never meets a host-check 403. Same
   * patterns as Vite: `shop.test.example.com`, or `.test.example.com` for a domain and its
   * subdomains; IP addresses and `localhost` always pass. The plugins fill it in.
   * @default undefined (Host is never rewritten, unless `rewriteHost`)
   */
  allowedHosts?: string[];
  /**
   * Directory of the small state file keeping this laptop's identity and last port per local
   * port, or `false` to keep nothing (a new identity and port each run).
   * @default `$XDG_CONFIG_HOME/devtunnel` or `~/.config/devtunnel`
   */
  stateDir?: string | false;
  /**
   * HTTP proxy for the connection to the tunnel server (never for the local app). By default the
   * standard `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` variables apply; `false` ignores them.
   * @default from the environment
   */
  proxy?: string | false;
  /**
   * The inspector: a page on this machine that shows every request that crossed the tunnel, live,
   * in full (headers, bodies up to 64 KiB), and replays one against the local app, as it was or
   * edited. `true` serves it on 127.0.0.1, a free port; `'127.0.0.1:4040'` (or `'4040'`,
   * `'localhost:4040'`, `'[::1]:4040'`) chooses the address, which must be loopback; `false` turns
   * it off (nothing is captured). Its URL carries a key that only this run prints. CLI: `--inspect
   * [ADDR]`, `--no-inspect`, or `DEVTUNNEL_INSPECT`.
   * @default true
   */
  inspect?: boolean | string;
  /**
   * Compress the local app's answers on their way up to the tunnel server (the laptop's uplink is
   * the narrowest part of the path for a page of text), when the server supports it: brotli or
   * gzip, as the browser accepts; the server decodes them for a browser that accepts neither.
   * Answers the app encoded itself, event streams, ranges and `Cache-Control: no-transform` are
   * never touched. CLI: `--no-compress` or `DEVTUNNEL_COMPRESS=false` turns it off.
   * @default true
   */
  compress?: boolean;
  /**
   * Speculative delivery: after a page or a module from the local app, fetch what it names (scripts,
   * stylesheets, module imports) at once and send it up before the browser asks, so that the
   * server answers those requests without a trip to the laptop (docs/speculation.md). Used only
   * when the server offers it. CLI: `--no-speculate` or `DEVTUNNEL_SPECULATE=false` turns it off.
   * @default true
   */
  speculate?: boolean;
  /** Where the library reports what it does. @default silent */
  logger?: Logger;
}

export interface ResolvedTunnelOptions {
  server: URL;
  token: string;
  port: number;
  host: string;
  https: boolean;
  name: string | undefined;
  route: string | undefined;
  preferredPort: number | undefined;
  identity: string | undefined;
  polls: number;
  maxInFlight: number;
  transport: 'auto' | 'poll';
  rewriteHost: boolean;
  allowedHosts: string[] | undefined;
  stateDir: string | false | undefined;
  proxy: string | false | undefined;
  /** Where the inspector listens, or false when it is off. */
  inspect: InspectAddress | false;
  compress: boolean;
  speculate: boolean;
  logger: Logger;
}

/** A loopback address for the inspector; port 0 takes a free one. */
export interface InspectAddress {
  host: string;
  port: number;
}

export const tunnelDefaults = Object.freeze({
  host: 'localhost',
  https: false,
  polls: 8,
  maxInFlight: 256,
  transport: 'auto',
  rewriteHost: false,
  inspect: true,
  compress: true,
  speculate: true,
} satisfies Partial<TunnelOptions>);

/** Where `inspect: true` serves the inspector: loopback, any free port (see {@link TunnelOptions.inspect}). */
export const inspectDefaultAddress: Readonly<InspectAddress> = Object.freeze({ host: '127.0.0.1', port: 0 });

function invalid(option: string, message: string): TunnelError {
  return new TunnelError('TUNNEL_INVALID_OPTION', `devtunnel: option "${option}" ${message}`, { fault: { option, problem: message } });
}

function portOption(option: string, value: unknown, required: boolean): number | undefined {
  if (value === undefined && !required) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65535) {
    throw invalid(option, `must be a port number from 1 to 65535 (got ${JSON.stringify(value)}).`);
  }
  return value;
}

/**
 * The inspector's address: `true`, `false`, `PORT`, `HOST:PORT` or `[IPV6]:PORT`, its host a
 * loopback one. It shows cookies and bodies, so nothing but this machine may reach it.
 */
function inspectOption(value: unknown): InspectAddress | false {
  if (value === undefined || value === true) return { ...inspectDefaultAddress };
  if (value === false) return false;
  const fix = 'must be true, false, or a loopback address such as 127.0.0.1:4040 (the inspector shows cookies and bodies: only this machine may reach it)';
  if (typeof value !== 'string') throw invalid('inspect', `${fix} (got ${JSON.stringify(value)}).`);
  const m = /^(?:(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):)?(\d{1,5})$/.exec(value.trim());
  const host = (m?.[1] ?? inspectDefaultAddress.host).replace(/^\[(.*)\]$/, '$1').toLowerCase();
  const port = Number(m?.[2]);
  if (!m || port > 65535) throw invalid('inspect', `${fix} (got ${JSON.stringify(value)}).`);
  const loopback = host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
  if (!loopback) throw invalid('inspect', `${fix} (got ${JSON.stringify(value)}).`);
  // `localhost` may resolve to either family: bind 127.0.0.1, which the printed URL then names.
  return { host: host === 'localhost' ? inspectDefaultAddress.host : host, port };
}

function booleanOption(option: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalid(option, `must be true or false (got ${JSON.stringify(value)}).`);
  return value;
}

function intOption(option: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(option, `must be an integer from ${min} to ${max} (got ${JSON.stringify(value)}).`);
  }
  return value;
}

/** Merges defaults and validates every option up front, naming the option and the fix. */
export function resolveTunnelOptions(options: TunnelOptions): ResolvedTunnelOptions {
  if (!options || typeof options !== 'object') throw invalid('options', 'must be an object.');
  let server: URL;
  try {
    server = new URL(options.server);
  } catch {
    throw invalid('server', `must be the tunnel server's URL, e.g. https://devtunnel.test.example.com (got ${JSON.stringify(options.server)}). Set --server or DEVTUNNEL_SERVER.`);
  }
  if (server.protocol !== 'http:' && server.protocol !== 'https:') {
    throw invalid('server', `must be an http:// or https:// URL (got ${server.protocol}).`);
  }
  if (server.username || server.password) {
    throw invalid('server', 'must not contain credentials; pass the token with --token or DEVTUNNEL_TOKEN.');
  }
  if (typeof options.token !== 'string' || options.token.length === 0) {
    throw invalid('token', 'is required: set DEVTUNNEL_TOKEN (or --token) to the token the tunnel server printed or was given.');
  }
  if (/[^\x21-\x7e]/.test(options.token)) throw invalid('token', 'must be printable ASCII without spaces.');
  const port = portOption('port', options.port, true)!;
  const host = options.host ?? tunnelDefaults.host;
  if (typeof host !== 'string' || !/^[A-Za-z0-9.:\-[\]]+$/.test(host)) {
    throw invalid('host', `must be a host name or IP address such as localhost or 127.0.0.1 (got ${JSON.stringify(host)}).`);
  }
  if (options.route !== undefined && (typeof options.route !== 'string' || !NAME_PATTERN.test(options.route))) {
    throw invalid('route', `must be the name of a route of the tunnel server, such as cart (got ${JSON.stringify(options.route)}).`);
  }
  if (options.name !== undefined && (typeof options.name !== 'string' || !NAME_PATTERN.test(options.name))) {
    throw invalid('name', `must be lower-case letters, digits and dashes, starting with a letter or digit, at most 63 characters (got ${JSON.stringify(options.name)}).`);
  }
  if (options.stateDir !== undefined && options.stateDir !== false && typeof options.stateDir !== 'string') {
    throw invalid('stateDir', 'must be a directory path or false.');
  }
  if (options.proxy !== undefined && options.proxy !== false) {
    try {
      new URL(options.proxy);
    } catch {
      throw invalid('proxy', `must be a proxy URL such as http://proxy.corp:3128, or false (got ${JSON.stringify(options.proxy)}).`);
    }
  }
  if (options.allowedHosts !== undefined && (!Array.isArray(options.allowedHosts) || !options.allowedHosts.every((h) => typeof h === 'string' && /^\.?[A-Za-z0-9.-]+$/.test(h)))) {
    throw invalid('allowedHosts', `must be a list of host names such as ["shop.test.example.com", ".test.example.com"] (got ${JSON.stringify(options.allowedHosts)}).`);
  }
  const polls = intOption('polls', options.polls, tunnelDefaults.polls, 1, 64);
  const transport = options.transport ?? tunnelDefaults.transport;
  if (transport !== 'auto' && transport !== 'poll') throw invalid('transport', `must be "auto" or "poll" (got ${JSON.stringify(options.transport)}).`);
  const compress = options.compress ?? tunnelDefaults.compress;
  if (typeof compress !== 'boolean') throw invalid('compress', `must be true or false (got ${JSON.stringify(options.compress)}); false sends the local app's answers up as they are.`);
  return {
    server,
    token: options.token,
    port,
    host: host.replace(/^\[(.*)\]$/, '$1'),
    https: options.https ?? tunnelDefaults.https,
    name: options.name,
    route: options.route,
    preferredPort: portOption('preferredPort', options.preferredPort, false),
    identity: options.identity,
    polls,
    maxInFlight: intOption('maxInFlight', options.maxInFlight, tunnelDefaults.maxInFlight, polls, 10_000),
    transport,
    rewriteHost: options.rewriteHost ?? tunnelDefaults.rewriteHost,
    allowedHosts: options.allowedHosts,
    stateDir: options.stateDir,
    proxy: options.proxy,
    inspect: inspectOption(options.inspect),
    compress,
    speculate: booleanOption('speculate', options.speculate, tunnelDefaults.speculate),
    logger: options.logger ?? silentLogger,
  };
}
