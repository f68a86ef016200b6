/**
 * What every dev-server plugin (Vite, webpack, rspack) needs around a tunnel, kept here so the
 * plugins only translate their host's hooks: whether to run, where the dev server really listens,
 * which host names the cluster uses, the status lines a developer reads, and one tunnel per
 * project that survives the dev server's restarts.
 */
export { clusterDomain, dialAddress, disabledReason, pluginSettings, type PluginSettings } from './settings';
export { describeRoute, reportStatus, startDevServerTunnel, type StatusLog } from './status';
export {
  createDevServerSessions,
  type DevServerListening,
  type DevServerSession,
  type DevServerSessions,
  type DevServerSessionsOptions,
  type DevServerTunnelOptions,
} from './sessions';
