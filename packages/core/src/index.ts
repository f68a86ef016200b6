export { createTunnelClient, openTunnel } from './client';
export type { RequestEvent, Tunnel, TunnelClient, TunnelEvents, TunnelInfo } from './client';
export { TunnelError } from './errors';
export type { TunnelErrorCode } from './errors';
export { silentLogger } from './logger';
export type { Logger } from './logger';
export { resolveTunnelOptions, tunnelDefaults } from './options';
export type { ResolvedTunnelOptions, TunnelOptions } from './options';
export { VERSION } from './version';
