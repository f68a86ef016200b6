import { tunnelDefaults } from './options';

/** The `devtunnel` CLI's flags: the help text and the README's options table come from here. */
/** Flags, each named like its `openTunnel` option (kebab-case here, camelCase there). */
export const cliFlags = [
  { flag: 'server', option: 'server', type: 'string', env: 'DEVTUNNEL_SERVER', help: 'URL of the tunnel server (required)' },
  { flag: 'port', option: 'port', type: 'string', help: 'port of the local app (required)' },
  { flag: 'host', option: 'host', type: 'string', help: 'host of the local app', default: tunnelDefaults.host },
  { flag: 'https', option: 'https', type: 'boolean', help: 'talk https to the local app (self-signed accepted)', default: String(tunnelDefaults.https) },
  { flag: 'token', option: 'token', type: 'string', env: 'DEVTUNNEL_TOKEN', help: 'registration token (prefer the variable)' },
  { flag: 'name', option: 'name', type: 'string', env: 'DEVTUNNEL_NAME', help: 'tunnel name shown by the server', default: '<user>-<port>' },
  { flag: 'identity', option: 'identity', type: 'string', help: 'what makes this the same tunnel next time', default: 'the local port' },
  { flag: 'preferred-port', option: 'preferredPort', type: 'string', help: 'ask for this tunnel port', default: 'last one used' },
  { flag: 'polls', option: 'polls', type: 'string', help: 'long-polls kept waiting', default: String(tunnelDefaults.polls) },
  { flag: 'max-in-flight', option: 'maxInFlight', type: 'string', help: 'requests handled at once, at most', default: String(tunnelDefaults.maxInFlight) },
  { flag: 'transport', option: 'transport', type: 'string', help: 'auto: streams when the way allows, else long polls; poll: long polls only', default: tunnelDefaults.transport },
  { flag: 'rewrite-host', option: 'rewriteHost', type: 'boolean', help: 'send Host: <host>:<port> to the local app', default: String(tunnelDefaults.rewriteHost) },
  { flag: 'allowed-hosts', option: 'allowedHosts', type: 'string', help: 'hosts the local app accepts (comma list); others get Host rewritten', default: 'none' },
  { flag: 'state-dir', option: 'stateDir', type: 'string', help: 'where identity and last port are kept', default: '$XDG_CONFIG_HOME/devtunnel or ~/.config/devtunnel' },
  { flag: 'proxy', option: 'proxy', type: 'string', help: 'HTTP proxy for the server connection', default: 'HTTPS_PROXY etc.' },
  { flag: 'json', option: undefined, type: 'boolean', help: 'print one JSON object per line per event' },
  { flag: 'help', option: undefined, type: 'boolean', help: 'show this help' },
  { flag: 'version', option: undefined, type: 'boolean', help: 'print the version' },
] as const;
