import { createTunnelClient, type TunnelClient, type TunnelInfo } from '../client';
import type { TunnelOptions } from '../options';
import type { RouteMembership } from '../protocol';

/**
 * The few lines a developer reads about a dev server's tunnel, and opening that tunnel without
 * ever throwing into or blocking the host.
 */

export interface StatusLog {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** What a developer needs to know about a tunnel's route: which name selects it, and the link. */
export function describeRoute(route: RouteMembership): string {
  return `route ${route.name}: requests that select "${route.selector}" come here (cookie devtunnel=${route.selector}, or header X-Devtunnel: ${route.selector}); turn it on in a browser: ${route.link}`;
}

/**
 * Turns a tunnel's events into the few lines a developer wants: connected (with the URL), lost
 * (once, not at every retry), back, and final errors. Returns a function that stops listening.
 */
export function reportStatus(client: TunnelClient, log: StatusLog, firstLine?: (info: TunnelInfo) => string): () => void {
  let lost = false;
  /** The tunnel was live once: only then is a registration a return (`back:`), not a first `connected:`. */
  let wasLive = false;
  const onRegistered = (info: TunnelInfo & { reconnected: boolean }) => {
    const again = wasLive && (lost || info.reconnected);
    log.info(!again && firstLine ? firstLine(info) : `${again ? 'back' : 'connected'}: ${info.url} → ${info.target} (${info.name})`);
    if (!again && info.route) log.info(describeRoute(info.route));
    if (!again && info.inspector) log.info(`inspect: ${info.inspector} (requests live, replay; this machine only)`);
    lost = false;
    wasLive = true;
  };
  const onReconnecting = (event: { error: Error; delayMs: number }) => {
    if (lost) return;
    lost = true;
    log.warn(`${client.info ? 'lost' : 'not connected yet'}: ${event.error.message} The dev server keeps working locally.`);
  };
  const onError = (error: Error) => log.error(`stopped: ${error.message}`);
  client.on('registered', onRegistered);
  client.on('reconnecting', onReconnecting);
  client.on('error', onError);
  return () => {
    client.off('registered', onRegistered);
    client.off('reconnecting', onReconnecting);
    client.off('error', onError);
  };
}

/**
 * Opens a dev server's tunnel the way every plugin must: never throwing into the host (a bad
 * option is logged), status lines reported, and `start()` never awaited, so the dev server neither
 * waits for nor fails with the tunnel. Returns undefined when the options were refused.
 */
export function startDevServerTunnel(options: TunnelOptions, log: StatusLog, firstLine?: (info: TunnelInfo) => string): TunnelClient | undefined {
  let client: TunnelClient;
  try {
    client = createTunnelClient(options);
  } catch (error) {
    log.error((error as Error).message);
    return undefined;
  }
  reportStatus(client, log, firstLine);
  client.start().catch(() => {});
  return client;
}
