export { createTunnelServer } from './server';
export type { TunnelServer } from './server';
export { resolveServerOptions, serverDefaults } from './options';
export type { ResolvedServerOptions, ServerOptions } from './options';
export { createJsonLogger, silentLogger } from './logger';
export type { LogLevel, ServerLogger } from './logger';
export { HttpError, InvalidOptionError } from './errors';
export type { TunnelSnapshot } from './registry';
