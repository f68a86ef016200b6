import type { AddressInfo } from 'node:net';
import { createDevServerSessions, pluginSettings, type DevServerTunnelOptions, type StatusLog } from '@devtunnel/core';

/**
 * webpack-dev-server 5/6 and @rspack/dev-server: `devServer: withTunnel({ ...yourOptions })`.
 * Translation only: the tunnel itself is `@devtunnel/core`. Written against the option names the
 * three dev servers share (onListening, allowedHosts, client.webSocketURL, webSocketServer,
 * devMiddleware.publicPath), so no type of theirs is needed at run time.
 */
export interface DevTunnelOptions extends DevServerTunnelOptions {
  /** Run the tunnel. By default it runs, and stays off in CI (`CI` set) and with `DEVTUNNEL=0`. */
  enabled?: boolean;
  /**
   * The path prefix the cluster's web proxy serves the app under, e.g. `/cart/`. Defaults to
   * `devMiddleware.publicPath` when that is a path; sets where the HMR socket lives.
   */
  publicPath?: string;
}

/** The parts of a dev server (webpack-dev-server or rspack's) the plugin uses. */
interface DevServerLike {
  server?: { address(): AddressInfo | string | null; once(event: 'close', listener: () => void): unknown } | null;
  compiler?: CompilerLike | { compilers: CompilerLike[] };
  options?: { server?: string | { type?: string } };
}

interface InfrastructureLogger {
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

interface CompilerLike {
  context: string;
  options: { devServer?: DevServerOptions | false };
  getInfrastructureLogger(name: string): InfrastructureLogger;
  hooks: { shutdown: { tapPromise(name: string, fn: () => Promise<void>): void }; invalid?: { tap(name: string, fn: () => void): void } };
}

/** The dev server options the plugin reads or extends; everything else passes through untouched. */
export interface DevServerOptions {
  onListening?: (devServer: any) => void;
  allowedHosts?: 'auto' | 'all' | string | string[];
  client?: false | ({ webSocketURL?: string | Record<string, unknown> } & Record<string, unknown>);
  webSocketServer?: false | string | ({ type?: string; options?: Record<string, unknown> } & Record<string, unknown>);
  devMiddleware?: { publicPath?: string } & Record<string, unknown>;
  [key: string]: unknown;
}

/** The name the plugin taps webpack's hooks with. */
const PLUGIN_NAME = 'DevTunnelPlugin';
/** Name of the infrastructure logger: lines read `<i> [devtunnel] Tunnel: …`. */
const LOGGER_NAME = 'devtunnel';

/** Sessions by project, so a dev server started twice in one process (tests, restarts) reuses its tunnel. */
const sessions = createDevServerSessions();

/**
 * Merges the cluster's host names into `allowedHosts` without ever widening it: `'all'` stays
 * `'all'` (the user chose it), `'auto'`/unset becomes a list (localhost and IPs stay allowed, as
 * in `'auto'`), a string or a list gains the names. An empty result means `'auto'`: only localhost
 * and IP addresses, which always pass.
 */
export function mergeAllowedHosts(current: DevServerOptions['allowedHosts'], hosts: string[]): 'all' | string[] {
  if (current === 'all') return 'all';
  const base = current === undefined || current === 'auto' ? [] : Array.isArray(current) ? current : [current];
  return [...new Set([...base, ...hosts])];
}

/** `/cart` → `/cart/`; `auto`, full URLs and `/` mean no prefix. */
function prefixOf(publicPath: string | undefined): string {
  if (!publicPath || !publicPath.startsWith('/')) return '/';
  return publicPath.endsWith('/') ? publicPath : `${publicPath}/`;
}

function firstCompiler(compiler: DevServerLike['compiler']): CompilerLike | undefined {
  if (!compiler) return undefined;
  return 'compilers' in compiler ? compiler.compilers[0] : compiler;
}

/**
 * Returns `devServer` extended so that the dev server answers in the cluster: your `onListening`
 * still runs first, `allowedHosts` gains the cluster's domain, the HMR client URL follows the
 * page's own origin (only if you left it unset).
 */
export function withTunnel<T extends DevServerOptions>(devServer: T = {} as T, options: DevTunnelOptions = {}): T & DevServerOptions {
  const settings = pluginSettings(options, process.env, 'withTunnel(devServer, { server })');
  const { server, hosts, off, quiet } = settings;
  const userOnListening = devServer.onListening;

  if (off) {
    return {
      ...devServer,
      onListening(ds: DevServerLike) {
        userOnListening?.(ds);
        if (!quiet) firstCompiler(ds.compiler)?.getInfrastructureLogger(LOGGER_NAME).info(`${off}: no tunnel.`);
      },
    };
  }

  const allowedHosts = mergeAllowedHosts(devServer.allowedHosts, hosts);
  const prefix = prefixOf(options.publicPath ?? devServer.devMiddleware?.publicPath);
  const extended: T = { ...devServer };
  // The dev servers refuse an empty list: with nothing to add, 'auto' (or the user's value) stays.
  if (allowedHosts !== 'all' && allowedHosts.length > 0) extended.allowedHosts = allowedHosts;

  // The page's HMR socket must go where the page came from (the cluster), not to the dev server's
  // own port: `auto://0.0.0.0:0` means the page's protocol, host and port.
  if (devServer.client !== false) {
    const client = devServer.client ?? {};
    if (client.webSocketURL === undefined) extended.client = { ...client, webSocketURL: `auto://0.0.0.0:0${prefix}ws` };
  }
  if (prefix !== '/' && devServer.webSocketServer === undefined) {
    extended.webSocketServer = { type: 'ws', options: { path: `${prefix}ws` } };
  }

  extended.onListening = (ds: DevServerLike) => {
    userOnListening?.(ds);
    const compiler = firstCompiler(ds.compiler);
    const logger = compiler?.getInfrastructureLogger(LOGGER_NAME);
    const log: StatusLog = { info: (m) => logger?.info(m), warn: (m) => logger?.warn(m), error: (m) => logger?.error(m) };
    const serverType = typeof ds.options?.server === 'string' ? ds.options.server : ds.options?.server?.type;
    const session = sessions.listening({
      // webpack has no root of its own: the tunnel is kept per identity, the compiler's context by default.
      project: options.identity ?? compiler?.context ?? process.cwd(),
      address: ds.server?.address() ?? null,
      https: serverType === 'https' || serverType === 'spdy' || serverType === 'http2',
      options,
      settings,
      // A host the dev server would refuse reaches it as the dialled address; its Origin check
      // still needs the cluster's names, which allowedHosts above carries.
      allowedHosts: Array.isArray(allowedHosts) ? allowedHosts : undefined,
      log,
      firstLine: (info) => `Tunnel: ${info.url} → ${info.target} (${info.name})`,
      connectingLine: `Tunnel: connecting to ${server}…`,
    });
    // A tunnel this dev server reused stays with the one that opened it, which closes it.
    if (!session?.client || session.reused) return;
    // webpack-dev-server awaits the compiler's shutdown hook on Ctrl+C: deregister there. The
    // server's 'close' comes first and shares the same deregistration, so the hook has it to await.
    compiler?.hooks.shutdown.tapPromise(PLUGIN_NAME, session.close);
    // A file changed and a rebuild starts: what the server keeps from the last build is stale.
    compiler?.hooks.invalid?.tap(PLUGIN_NAME, () => session.client?.dropPushes());
    ds.server?.once('close', () => void session.close());
  };
  return extended;
}

/**
 * For `webpack serve` / `rspack serve` only: extends `devServer` from inside the webpack config's
 * plugins. The Node API, webpack-dev-server 6's plugin mode and frameworks build their own dev
 * server options, which a compiler plugin cannot reach: use {@link withTunnel} there.
 */
export class DevTunnelPlugin {
  constructor(private readonly options: DevTunnelOptions = {}) {}

  apply(compiler: CompilerLike): void {
    if (compiler.options.devServer === false) return;
    compiler.options.devServer = withTunnel(compiler.options.devServer ?? {}, this.options);
  }
}

export default withTunnel;
