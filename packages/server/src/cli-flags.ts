import type { ServerOptions } from './options';

/** The `devtunnel-server` CLI's flags: the help text and the README's options table come from here. */
export type Kind = 'port' | 'string' | 'ms' | 'count' | 'list';

/** Flag → option. The variable is `DEVTUNNEL_` + the flag in upper snake case. */
export const serverFlags: ReadonlyArray<{ flag: string; option: keyof ServerOptions; kind: Kind; help: string }> = [
  { flag: 'port', option: 'port', kind: 'port', help: 'control API port (registration, polls, /healthz)' },
  { flag: 'host', option: 'host', kind: 'string', help: 'address to bind, for the control API and the tunnel ports' },
  { flag: 'tunnel-ports', option: 'tunnelPorts', kind: 'string', help: 'range tunnel ports come from' },
  { flag: 'token', option: 'token', kind: 'string', help: 'registration token (generated and printed once when unset)' },
  { flag: 'admin-token', option: 'adminToken', kind: 'string', help: 'token that signs an admin into the dashboard (can close tunnels)' },
  { flag: 'dashboard-open-cidrs', option: 'dashboardOpenCidrs', kind: 'list', help: 'networks that may read the dashboard without a token (comma list)' },
  { flag: 'state-file', option: 'stateFile', kind: 'string', help: 'JSON file keeping port assignments across restarts' },
  { flag: 'public-url', option: 'publicUrl', kind: 'string', help: 'tunnel URL template handed to clients ({host}, {port})' },
  { flag: 'poll-timeout-ms', option: 'pollTimeoutMs', kind: 'ms', help: 'how long a poll is held before 204' },
  { flag: 'wait-for-poll-ms', option: 'waitForPollMs', kind: 'ms', help: 'how long a request waits for a poll (then 503)' },
  { flag: 'local-timeout-ms', option: 'localTimeoutMs', kind: 'ms', help: "client's deadline for the local app's headers (504)" },
  { flag: 'deadline-ms', option: 'deadlineMs', kind: 'ms', help: 'server deadline for response headers (504)' },
  { flag: 'body-idle-timeout-ms', option: 'bodyIdleTimeoutMs', kind: 'ms', help: 'a body idle this long is cut (no total cap)' },
  { flag: 'headers-timeout-ms', option: 'headersTimeoutMs', kind: 'ms', help: 'browsers must send headers within this (408)' },
  { flag: 'keep-alive-timeout-ms', option: 'keepAliveTimeoutMs', kind: 'ms', help: 'idle keep-alive connections kept this long' },
  { flag: 'lease-ms', option: 'leaseMs', kind: 'ms', help: 'no poll this long: the tunnel is offline' },
  { flag: 'expire-ms', option: 'expireMs', kind: 'ms', help: 'offline this long: the tunnel is forgotten (port stays reserved)' },
  { flag: 'disconnect-grace-ms', option: 'disconnectGraceMs', kind: 'ms', help: 'after all polls dropped, wait this long before failing requests' },
  { flag: 'queue-limit', option: 'queueLimit', kind: 'count', help: 'requests waiting for a poll, per tunnel (then 503)' },
  { flag: 'max-polls', option: 'maxPolls', kind: 'count', help: 'polls a tunnel may keep waiting (then 429)' },
  { flag: 'max-upgrades', option: 'maxUpgrades', kind: 'count', help: 'WebSockets (upgraded connections) a tunnel may carry at once (then 503)' },
  { flag: 'drain-timeout-ms', option: 'drainTimeoutMs', kind: 'ms', help: 'on SIGTERM, in-flight requests get this long' },
];

export const envName = (flag: string) => `DEVTUNNEL_${flag.toUpperCase().replace(/-/g, '_')}`;
