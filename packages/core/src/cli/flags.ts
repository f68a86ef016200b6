import { tunnelDefaults, type TunnelOptions } from '../options';
import type { Flag } from '../protocol';

/**
 * The `devtunnel` CLI's flags, each named like its `openTunnel` option (kebab-case here, camelCase
 * there): parsing, variables, `--help` and docs/options.md come from this table.
 */
export const clientFlags: ReadonlyArray<Flag<keyof TunnelOptions>> = [
  { flag: 'server', option: 'server', kind: 'string', env: 'DEVTUNNEL_SERVER', help: 'URL of the tunnel server (required)' },
  { flag: 'port', option: 'port', kind: 'port', help: 'port of the local app (required)' },
  { flag: 'host', option: 'host', kind: 'string', help: 'host of the local app', default: tunnelDefaults.host },
  { flag: 'https', option: 'https', kind: 'boolean', help: 'talk https to the local app (self-signed accepted)', default: String(tunnelDefaults.https) },
  { flag: 'token', option: 'token', kind: 'string', env: 'DEVTUNNEL_TOKEN', help: 'registration token (prefer the variable)' },
  { flag: 'name', option: 'name', kind: 'string', env: 'DEVTUNNEL_NAME', help: 'tunnel name shown by the server (on a route: the name that selects it)', default: '<user>-<port>; on a route <user>' },
  { flag: 'route', option: 'route', kind: 'string', env: 'DEVTUNNEL_ROUTE', help: "serve a route of the server: requests there that select this tunnel's name come here" },
  { flag: 'identity', option: 'identity', kind: 'string', help: 'what makes this the same tunnel next time', default: 'the local port' },
  { flag: 'preferred-port', option: 'preferredPort', kind: 'port', help: 'ask for this tunnel port', default: 'last one used' },
  { flag: 'polls', option: 'polls', kind: 'count', help: 'long-polls kept waiting', default: String(tunnelDefaults.polls) },
  { flag: 'max-in-flight', option: 'maxInFlight', kind: 'count', help: 'requests handled at once, at most', default: String(tunnelDefaults.maxInFlight) },
  { flag: 'transport', option: 'transport', kind: 'string', help: 'auto: streams when the way allows, else long polls; poll: long polls only', default: tunnelDefaults.transport },
  { flag: 'rewrite-host', option: 'rewriteHost', kind: 'boolean', help: 'send Host: <host>:<port> to the local app', default: String(tunnelDefaults.rewriteHost) },
  { flag: 'allowed-hosts', option: 'allowedHosts', kind: 'list', help: 'hosts the local app accepts (comma list); others get Host rewritten', default: 'none' },
  { flag: 'state-dir', option: 'stateDir', kind: 'string', help: 'where identity and last port are kept', default: '$XDG_CONFIG_HOME/devtunnel or ~/.config/devtunnel' },
  { flag: 'proxy', option: 'proxy', kind: 'string', help: 'HTTP proxy for the server connection', default: 'HTTPS_PROXY etc.' },
  { flag: 'inspect', option: 'inspect', kind: 'optional', env: 'DEVTUNNEL_INSPECT', help: 'the inspector on this machine: requests live, in full, replay; [<value>] a loopback address such as 127.0.0.1:4040; --no-inspect turns it off', default: 'on, 127.0.0.1, a free port' },
  { flag: 'compress', option: 'compress', kind: 'boolean', env: 'DEVTUNNEL_COMPRESS', help: 'compress answers on their way up (brotli or gzip, as the browser accepts), when the server can; --no-compress sends them as they are', default: String(tunnelDefaults.compress) },
  { flag: 'speculate', option: 'speculate', kind: 'boolean', env: 'DEVTUNNEL_SPECULATE', help: 'send what a page or module names before the browser asks (pushes); --no-speculate turns it off', default: String(tunnelDefaults.speculate) },
  { flag: 'json', kind: 'boolean', help: 'print one JSON object per line per event' },
  { flag: 'help', kind: 'boolean', help: 'show this help' },
  { flag: 'version', kind: 'boolean', help: 'print the version' },
];
