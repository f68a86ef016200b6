import { createTunnelClient, type TunnelClient, type TunnelInfo } from '../client';
import type { TunnelOptions } from '../options';

/**
 * The few lines a developer reads about a dev server's tunnel, and opening that tunnel without
 * ever throwing into or blocking the host.
 */

export interface StatusLog {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
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
