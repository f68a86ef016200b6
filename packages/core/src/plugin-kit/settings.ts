import { isIP, type AddressInfo } from 'node:net';
import { optionalValue } from '../protocol';

/**
 * What a dev-server plugin reads before any tunnel exists: whether to run, with which server, token
 * and name, which of the cluster's host names to let through, and where the dev server really listens.
 */

type Env = Record<string, string | undefined>;

/**
 * Why a plugin stays off, or `undefined` when it runs; `quiet` when that is expected and not worth
 * a line (switched off in the config, under Vitest, in CI). `env` is the host's `process.env`.
 */
function offSwitch(env: Env, enabled: boolean | undefined): { reason: string; quiet: boolean } | undefined {
  if (enabled === true) return undefined;
  if (enabled === false) return { reason: 'disabled by the plugin option enabled: false', quiet: true };
  if (env.DEVTUNNEL === '0' || env.DEVTUNNEL === 'false') return { reason: 'disabled by DEVTUNNEL=0', quiet: false };
  if (env.VITEST) return { reason: 'off under Vitest', quiet: true };
  if (env.CI && env.CI !== '0' && env.CI !== 'false') return { reason: 'off in CI (CI is set); pass enabled: true to force it', quiet: true };
  return undefined;
}

/** Why a plugin stays off, or `undefined` when it runs. `env` is the host's `process.env`. */
export function disabledReason(env: Env, enabled: boolean | undefined): string | undefined {
  return offSwitch(env, enabled)?.reason;
}

/** What every dev-server plugin reads first, from its options and then the environment. */
export interface PluginSettings {
  server: string | undefined;
  token: string | undefined;
  name: string | undefined;
  /** The route of the tunnel server to serve (option `route`, else `DEVTUNNEL_ROUTE`). */
  route: string | undefined;
  /** The inspector (option `inspect`, else `DEVTUNNEL_INSPECT`: `false`, `true` or an address). */
  inspect: boolean | string | undefined;
  /** Answers compressed on their way up (option `compress`, else `DEVTUNNEL_COMPRESS`: `false`, `true`). */
  compress: boolean | string | undefined;
  /** Speculative delivery (option `speculate`, else `DEVTUNNEL_SPECULATE`: `false` or `0` turns it off). */
  speculate: boolean | undefined;
  /** The cluster's host names to let through the dev server's host check. */
  hosts: string[];
  /** Why there is no tunnel, when there is none… */
  off: string | undefined;
  /** …and whether saying so is noise (see {@link disabledReason}). */
  quiet: boolean;
}

/**
 * Settings common to the plugins: server, token and name (option, else `DEVTUNNEL_*`), the off
 * switches, the host names to allow. `setting` names how to pass the server in this plugin.
 */
export function pluginSettings(
  options: { server?: string; token?: string; name?: string; route?: string; inspect?: boolean | string; compress?: boolean; speculate?: boolean; enabled?: boolean; allowedHosts?: string[] },
  env: Env,
  setting: string,
): PluginSettings {
  const server = options.server ?? env.DEVTUNNEL_SERVER;
  const token = options.token ?? env.DEVTUNNEL_TOKEN;
  const switched = offSwitch(env, options.enabled);
  const off = switched?.reason ?? (!server ? `DEVTUNNEL_SERVER is not set (or pass ${setting})` : !token ? 'DEVTUNNEL_TOKEN is not set' : undefined);
  const domain = clusterDomain(server);
  return {
    server,
    token,
    name: options.name ?? env.DEVTUNNEL_NAME,
    route: options.route ?? env.DEVTUNNEL_ROUTE,
    inspect: options.inspect ?? (env.DEVTUNNEL_INSPECT ? optionalValue(env.DEVTUNNEL_INSPECT) : undefined),
    // Anything but true/1 or false/0 is refused by resolveTunnelOptions, naming the option.
    compress: options.compress ?? (env.DEVTUNNEL_COMPRESS ? optionalValue(env.DEVTUNNEL_COMPRESS) : undefined),
    speculate: options.speculate ?? (env.DEVTUNNEL_SPECULATE ? !['false', '0'].includes(env.DEVTUNNEL_SPECULATE) : undefined),
    hosts: [...(options.allowedHosts ?? []), ...(domain ? [domain] : [])],
    off,
    quiet: switched?.quiet ?? false,
  };
}

/**
 * The literal address to dial for a server's bound address: a wildcard (`0.0.0.0`, `::`) becomes
 * the loopback of its family; `localhost` is never used, it may resolve to the other family.
 */
export function dialAddress(address: AddressInfo | string | null): { host: string; port: number } | undefined {
  if (!address || typeof address === 'string') return undefined; // a pipe: nothing to tunnel to
  const host = address.address === '0.0.0.0' ? '127.0.0.1' : address.address === '::' ? '::1' : address.address;
  return { host, port: address.port };
}

/**
 * The domain the cluster's sites probably live in, from the tunnel server's URL:
 * `https://devtunnel.test.example.com` → `.test.example.com` (the domain and its subdomains, in the
 * allow-list syntax of Vite and webpack-dev-server). Nothing for IP addresses or short names.
 */
export function clusterDomain(server: string | undefined): string | undefined {
  if (!server) return undefined;
  let host: string;
  try {
    host = new URL(server).hostname;
  } catch {
    return undefined;
  }
  if (isIP(host.replace(/^\[|\]$/g, ''))) return undefined;
  const labels = host.split('.');
  return labels.length >= 3 ? `.${labels.slice(1).join('.')}` : undefined;
}
