import type { AddressInfo } from 'node:net';
import type { TunnelClient, TunnelInfo } from '../client';
import type { TunnelOptions } from '../options';
import { dialAddress, type PluginSettings } from './settings';
import { startDevServerTunnel, type StatusLog } from './status';

/**
 * One tunnel per project, kept across its dev server's restarts. A restart (Vite on a config edit,
 * a dev server started again in the same process) builds a new server, often on another port, and
 * often a new plugin instance, while the tunnel's registration and port must survive it; so the
 * sessions live in a map the plugin's module creates once, and the project's next dev server
 * retargets the tunnel it finds there. A tunnel that stopped for good (a refused token, taken over,
 * closed by an administrator) is not kept: the next start, usually after a fix, opens a new one.
 */

/** The tunnel options a plugin passes on: where the tunnel points comes from the dev server. */
export type DevServerTunnelOptions = Partial<Omit<TunnelOptions, 'port' | 'host' | 'https' | 'logger'>>;

/** A dev server listens: what its plugin reads from the host and hands over. */
export interface DevServerListening {
  /**
   * The project the dev server serves (Vite's root, webpack's identity). With the tunnel server and
   * name it keys the session a restart finds, and it is the tunnel's identity unless
   * `options.identity` is set: the project, not the port, is the tunnel (Vite may bind 5174 when
   * 5173 is taken).
   */
  project: string;
  /** The dev server's `address()`. A pipe has no port to tunnel to: a warning, and no session. */
  address: AddressInfo | string | null;
  /** Whether the dev server speaks TLS. */
  https: boolean;
  /** The plugin's options, passed on to the tunnel client as they are. */
  options: DevServerTunnelOptions;
  /** From {@link pluginSettings}, which left `off` unset: the server, token and name to use. */
  settings: PluginSettings;
  /**
   * The host names the dev server accepts, `undefined` for all: a host it would refuse reaches it
   * as the dialled address (see `TunnelOptions.allowedHosts`).
   */
  allowedHosts: string[] | undefined;
  /** Where the status lines go: the host's logger. */
  log: StatusLog;
  /** The first `connected` line in the host's wording (see {@link reportStatus}). */
  firstLine?: (info: TunnelInfo) => string;
  /** A line logged before a new tunnel starts, for a host with no banner that says it. */
  connectingLine?: string;
}

/** One dev server's hold on its project's tunnel. */
export interface DevServerSession {
  /** The tunnel; `undefined` when its options were refused (the error was logged). */
  readonly client: TunnelClient | undefined;
  /** The tunnel was left by a previous dev server of the project (a restart) and now points here. */
  readonly reused: boolean;
  /** `false` once there is no tunnel to wait for: its options were refused, or it stopped for good. */
  readonly running: boolean;
  /**
   * The dev server closed, perhaps to restart: the tunnel waits `graceMs` for the project's next
   * dev server, then deregisters. Nothing happens once the session was closed or replaced.
   */
  release(): void;
  /** Deregisters now and forgets the session. Idempotent: every caller awaits the same promise. */
  close(): Promise<void>;
}

export interface DevServerSessions {
  /**
   * A dev server of the project listens: the project's running tunnel is retargeted to it, or a
   * new one opens (never thrown into the host, never awaited by it). `undefined` for a pipe.
   */
  listening(request: DevServerListening): DevServerSession | undefined;
}

export interface DevServerSessionsOptions {
  /**
   * How long a released tunnel waits for the project's next dev server before it deregisters.
   * @default 0 (release() deregisters at once)
   */
  graceMs?: number;
  /** Opens a new tunnel. Tests pass a fake; plugins keep the default. @default startDevServerTunnel */
  start?: typeof startDevServerTunnel;
}

interface Entry {
  key: string;
  client: TunnelClient;
  grace: NodeJS.Timeout | undefined;
  closing: Promise<void> | undefined;
}

/** What a dev server whose tunnel options were refused holds: nothing to retarget, release or close. */
const refused: DevServerSession = Object.freeze({
  client: undefined,
  reused: false,
  running: false,
  release: () => {},
  close: () => Promise.resolve(),
});

/**
 * The sessions of one plugin. Create it once at module level: a host that builds a new plugin
 * instance on restart (Vite) must find the previous instance's tunnel.
 */
export function createDevServerSessions(options: DevServerSessionsOptions = {}): DevServerSessions {
  const { graceMs = 0, start = startDevServerTunnel } = options;
  const sessions = new Map<string, Entry>();

  function forget(entry: Entry): void {
    clearTimeout(entry.grace);
    entry.grace = undefined;
    // A newer session of the project may hold the key by now: it is not this one's to remove.
    if (sessions.get(entry.key) === entry) sessions.delete(entry.key);
  }

  function close(entry: Entry): Promise<void> {
    forget(entry);
    return (entry.closing ??= entry.client.close());
  }

  function release(entry: Entry): void {
    if (sessions.get(entry.key) !== entry) return;
    clearTimeout(entry.grace);
    if (graceMs <= 0) {
      void close(entry);
      return;
    }
    entry.grace = setTimeout(() => void close(entry), graceMs);
    // The dev server's process may exit meanwhile; it need not wait for the grace to end.
    entry.grace.unref();
  }

  function session(entry: Entry, reused: boolean): DevServerSession {
    return {
      client: entry.client,
      reused,
      get running() {
        return entry.client.status !== 'closed';
      },
      release: () => release(entry),
      close: () => close(entry),
    };
  }

  function listening(request: DevServerListening): DevServerSession | undefined {
    const { project, settings, options, log } = request;
    const target = dialAddress(request.address);
    if (!target) {
      log.warn('the dev server listens on a pipe, not a port: nothing to tunnel.');
      return undefined;
    }
    const key = `${project}\0${settings.server}\0${settings.name ?? ''}`;
    const kept = sessions.get(key);
    if (kept && kept.client.status !== 'closed') {
      // A restart: same tunnel, same port, new server behind it.
      clearTimeout(kept.grace);
      kept.grace = undefined;
      kept.client.retarget({ ...target, https: request.https });
      return session(kept, true);
    }
    // Stopped for good: the restart (after a fix in the config, say) opens a new tunnel.
    if (kept) forget(kept);
    if (request.connectingLine) log.info(request.connectingLine);
    const client = start(
      {
        ...options,
        name: settings.name,
        route: settings.route,
        inspect: settings.inspect,
        compress: settings.compress as boolean | undefined,
        speculate: settings.speculate,
        // pluginSettings() leaves `off` unset only when both are set.
        server: settings.server!,
        token: settings.token!,
        port: target.port,
        host: target.host,
        https: request.https,
        identity: options.identity ?? project,
        allowedHosts: request.allowedHosts,
      },
      log,
      request.firstLine,
    );
    if (!client) return refused;
    const entry: Entry = { key, client, grace: undefined, closing: undefined };
    sessions.set(key, entry);
    return session(entry, false);
  }

  return { listening };
}
