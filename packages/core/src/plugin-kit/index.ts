/**
 * What every dev-server plugin (Vite, webpack, rspack) needs around a tunnel, kept here so the
 * plugins only translate their host's hooks: whether to run, where the dev server really listens,
 * which host names the cluster uses, and the status lines a developer reads.
 */
export { clusterDomain, dialAddress, disabledReason, pluginSettings, type PluginSettings } from './settings';
export { reportStatus, startDevServerTunnel, type StatusLog } from './status';
