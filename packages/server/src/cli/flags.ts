import { envName, type Flag, type FlagKind, type OptionFlag } from '@devtunnel/core/protocol';
import { serverDefaults, type ServerOptions } from '../options';

/** One server flag: its variable is `DEVTUNNEL_` + the flag, its default the option's. */
function flag(name: string, option: keyof ServerOptions, kind: FlagKind, help: string): OptionFlag<keyof ServerOptions> {
  const value = (serverDefaults as Partial<Record<keyof ServerOptions, unknown>>)[option];
  const shown = Array.isArray(value) ? (value.length > 0 ? value.join(',') : undefined) : value === undefined ? undefined : String(value);
  return { flag: name, option, kind, env: envName(name), help, ...(shown === undefined ? {} : { default: shown }) };
}

/**
 * The `devtunnel-server` CLI's flags, each named like its `createTunnelServer` option: parsing,
 * variables, `--help` and docs/options.md come from this table.
 */
export const serverFlags: ReadonlyArray<OptionFlag<keyof ServerOptions>> = [
  flag('port', 'port', 'port', 'control API port (registration, polls, /healthz)'),
  flag('host', 'host', 'string', 'address to bind, for the control API and the tunnel ports'),
  flag('tunnel-ports', 'tunnelPorts', 'string', 'range tunnel ports come from'),
  flag('token', 'token', 'string', 'registration token (generated and printed once when unset)'),
  flag('admin-token', 'adminToken', 'string', 'token that signs an admin into the dashboard (can close tunnels)'),
  flag('dashboard-open-cidrs', 'dashboardOpenCidrs', 'list', 'networks that may read the dashboard without a token (comma list)'),
  { ...flag('route', 'routes', 'repeat', 'an app this server stands in for: NAME:PORT=URL (repeat the flag; variable: comma list)'), env: 'DEVTUNNEL_ROUTES' },
  flag('store', 'store', 'string', 'shared state of several replicas: redis://HOST:PORT[/DB] (Redis or Valkey)'),
  flag('store-password', 'storePassword', 'string', "the store's password, when not in the URL"),
  flag('advertise-url', 'advertiseUrl', 'string', "how the other replicas reach this one's control port (required with --store)"),
  flag('state-file', 'stateFile', 'string', 'JSON file keeping port assignments across restarts'),
  flag('public-url', 'publicUrl', 'string', 'tunnel URL template handed to clients ({host}, {port})'),
  flag('poll-timeout-ms', 'pollTimeoutMs', 'ms', 'how long a poll is held before 204'),
  flag('wait-for-poll-ms', 'waitForPollMs', 'ms', 'how long a request waits for a poll (then 503)'),
  flag('local-timeout-ms', 'localTimeoutMs', 'ms', "client's deadline for the local app's headers (504)"),
  flag('deadline-ms', 'deadlineMs', 'ms', 'server deadline for response headers (504)'),
  flag('body-idle-timeout-ms', 'bodyIdleTimeoutMs', 'ms', 'a body idle this long is cut (no total cap)'),
  flag('headers-timeout-ms', 'headersTimeoutMs', 'ms', 'browsers must send headers within this (408)'),
  flag('keep-alive-timeout-ms', 'keepAliveTimeoutMs', 'ms', 'idle keep-alive connections kept this long'),
  flag('lease-ms', 'leaseMs', 'ms', 'no poll this long: the tunnel is offline'),
  flag('expire-ms', 'expireMs', 'ms', 'offline this long: the tunnel is forgotten (port stays reserved)'),
  flag('disconnect-grace-ms', 'disconnectGraceMs', 'ms', 'after all polls dropped, wait this long before failing requests'),
  flag('queue-limit', 'queueLimit', 'count', 'requests waiting for a poll, per tunnel (then 503)'),
  flag('max-polls', 'maxPolls', 'count', 'polls a tunnel may keep waiting (then 429)'),
  flag('max-upgrades', 'maxUpgrades', 'count', 'WebSockets (upgraded connections) a tunnel may carry at once (then 503)'),
  flag('drain-timeout-ms', 'drainTimeoutMs', 'ms', 'on SIGTERM, in-flight requests get this long'),
  flag('push-lifetime-ms', 'pushLifetimeMs', 'ms', "how long a client's push (an answer sent before the browser asked) is kept unused; 0: none"),
  flag('capture', 'capture', 'count', 'recent requests kept (no bodies, no secrets) for replay from the dashboard; 0: none'),
];

/** The flags of the command itself, beside the options. */
export const commandFlags: readonly Flag[] = [
  { flag: 'log-level', kind: 'string', env: 'DEVTUNNEL_LOG_LEVEL', default: 'info', help: 'debug, info, warn or error' },
  { flag: 'help', kind: 'boolean', help: 'show this help' },
];
