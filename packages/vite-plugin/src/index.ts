import type { AddressInfo } from 'node:net';
import { styleText } from 'node:util';
import { createDevServerSessions, pluginSettings, type DevServerSession, type DevServerTunnelOptions } from '@devtunnel/core';
import type { Logger, Plugin, PreviewServer, ResolvedConfig, ViteDevServer } from 'vite';

/**
 * `devTunnel()`: start `vite` and the app answers in the shared test cluster. Translation only:
 * the tunnel itself is `@devtunnel/core`.
 */
export interface DevTunnelOptions extends DevServerTunnelOptions {
  /**
   * Run the tunnel. By default it runs for `vite` (serve), and stays off under Vitest, in CI
   * (`CI` set) and with `DEVTUNNEL=0`.
   */
  enabled?: boolean;
  /** Also tunnel `vite preview`. @default false */
  preview?: boolean;
}

/** A restarted server (config edit) has this long to come back before the tunnel closes. */
const RESTART_GRACE_MS = 5_000;

/**
 * Kept at module level: Vite's `server.restart()` builds a new server and calls the plugin factory
 * again, and the tunnel (registration, port) must survive it.
 */
const sessions = createDevServerSessions({ graceMs: RESTART_GRACE_MS });

const colors = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (style: Parameters<typeof styleText>[0], text: string) => (colors ? styleText(style, text) : text);

export function devTunnel(options: DevTunnelOptions = {}): Plugin {
  const settings = pluginSettings(options, process.env, 'devTunnel({ server })');
  const { server, hosts, off, quiet } = settings;
  let config: ResolvedConfig | undefined;
  let logger: Logger | undefined;
  /** This dev server's hold on the project's tunnel, once it listens. */
  let session: DevServerSession | undefined;

  const log = {
    info: (m: string) => logger?.info(`  ${paint('bold', 'devtunnel')} ${m}`, { timestamp: true }),
    warn: (m: string) => logger?.warn(`  ${paint('bold', 'devtunnel')} ${m}`, { timestamp: true }),
    error: (m: string) => logger?.error(`  ${paint('bold', 'devtunnel')} ${m}`, { timestamp: true }),
  };

  function attach(httpServer: NonNullable<ViteDevServer['httpServer']>, https: boolean, printUrls: { printUrls(): void } | undefined, allowed: string[] | true | undefined): void {
    if (printUrls) {
      const original = printUrls.printUrls.bind(printUrls);
      printUrls.printUrls = () => {
        original();
        const url = session?.client?.info?.url;
        const state = session && !session.running
          ? paint('red', 'not running (see the devtunnel line above)')
          : url
            ? paint('cyan', url)
            : paint('dim', `connecting to ${server}…`);
        logger?.info(`  ${paint('green', '➜')}  ${paint('bold', 'Tunnel')}:  ${state}`);
        const route = session?.client?.info?.route;
        if (route) logger?.info(`  ${paint('green', '➜')}  ${paint('bold', 'Route')}:   ${route.name} as ${route.selector}, turn it on: ${paint('cyan', route.link)}`);
        const inspect = session?.client?.inspector;
        if (inspect) logger?.info(`  ${paint('green', '➜')}  ${paint('bold', 'Inspect')}: ${paint('cyan', inspect)}`);
      };
    }
    httpServer.once('listening', () => {
      session = sessions.listening({
        // One session per project, tunnel server and name: a restart of the same dev server finds it.
        project: config!.root,
        address: httpServer.address() as AddressInfo | string | null,
        https,
        options,
        settings,
        // A host Vite would refuse reaches it as the dialled address; one it accepts keeps its name.
        allowedHosts: allowed === true ? undefined : allowed,
        log,
      });
    });
    // Perhaps a restart: the next server of the project has the grace to take the tunnel over.
    httpServer.once('close', () => session?.release());
  }

  return {
    name: 'devtunnel',
    apply: (_config, env) => env.command === 'serve' && (!env.isPreview || options.preview === true),

    config(user) {
      // Let the cluster's host names through Vite's host check, without disabling it.
      if (off || hosts.length === 0) return;
      const patch: { server: { allowedHosts: string[] }; preview?: { allowedHosts: string[] } } = { server: { allowedHosts: hosts } };
      // preview.allowedHosts defaults to server's only while the user leaves it unset.
      if (Array.isArray(user.preview?.allowedHosts)) patch.preview = { allowedHosts: hosts };
      return patch;
    },

    configResolved(resolved) {
      config = resolved;
      logger = resolved.logger;
      if (off && !quiet) logger.info(`  ${paint('bold', 'devtunnel')} ${off}: no tunnel.`);
    },

    configureServer(viteServer: ViteDevServer) {
      if (off) return;
      const httpServer = viteServer.httpServer;
      if (!httpServer) {
        log.warn('Vite runs in middleware mode, so the plugin cannot see the port your server listens on. Open the tunnel from your server once it listens: createTunnelClient({ server, token, port }).start() from @devtunnel/core (do not await it: it retries while the tunnel server is unreachable).');
        return;
      }
      attach(httpServer, Boolean(viteServer.config.server.https), viteServer, viteServer.config.server.allowedHosts);
      // A file changed, came or went: every push the server keeps may be stale (docs/speculation.md).
      const drop = () => session?.client?.dropPushes();
      viteServer.watcher.on('change', drop).on('add', drop).on('unlink', drop);
    },

    configurePreviewServer(previewServer: PreviewServer) {
      if (off || !options.preview) return;
      attach(previewServer.httpServer as NonNullable<ViteDevServer['httpServer']>, Boolean(previewServer.config.preview.https), previewServer, previewServer.config.preview.allowedHosts);
    },

    // Vite ≥ 8.3 says why it closes: on 'close' (SIGTERM, stdin closed, server.close()) deregister
    // now instead of after the restart grace. Ctrl+C ends Vite with no hook at all (it handles no
    // SIGINT); the server then sees the polls stop. Older versions ignore the hook.
    async closeServer({ reason }: { reason: 'restart' | 'close' }) {
      if (reason === 'close') await session?.close();
    },
  } as Plugin;
}

export default devTunnel;
