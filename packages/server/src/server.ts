import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createControlHandler } from './control';
import { createCaptureRing, type CaptureRing } from './replay/capture';
import { setHopRemote } from './tunnel-port/request';
import { endRaw, rawResponse } from './error-response';
import { HttpError } from './errors';
import { connectionsCheckingInterval, resolveServerOptions, type ResolvedServerOptions, type ServerOptions } from './options';
import { createRegistry, type Registry, type TunnelSnapshot } from './registry';
import type { Route } from './routes';
import type { UpstreamOutcome } from './routes/upstream';
import type { Exchange } from './exchange';
import { remember, type TunnelSession } from './session';
import { createPrometheusMetrics, noopMetrics, type MetricsSnapshot, type ServerMetrics } from './metrics';

/**
 * The composition root: options → registry (tunnels, ports, listeners) → control API → one HTTP
 * server. Unstarted until `listen()`, so tests and embedders drive it directly.
 */
export interface TunnelServer {
  /** Resolved options, including the token (generated when none was given). */
  readonly options: ResolvedServerOptions;
  /** Starts the control API; resolves with its bound port (useful with `port: 0`). */
  listen(): Promise<{ port: number; host: string }>;
  /** The control API's bound port (after `listen()`). */
  readonly port: number;
  /** A snapshot of every tunnel and reserved port. */
  tunnels(): TunnelSnapshot[];
  /**
   * Graceful stop: no new tunnels or browser requests, polls told to come back later,
   * in-flight requests get `drainTimeoutMs` to finish; then everything closes. Idempotent.
   */
  close(): Promise<void>;
}

/** `X-*-Id` tracing headers worth a field in the request log (the original project logged these). */
function traceFields(req: IncomingMessage): Record<string, string> | undefined {
  let out: Record<string, string> | undefined;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const lower = name.toLowerCase();
    if ((lower === 'traceparent' || (lower.startsWith('x-') && lower.endsWith('-id') && !lower.startsWith('x-devtunnel'))) && value.length <= 80) {
      (out ??= {})[lower] = value;
    }
  }
  return out;
}

/** On close, how long responses still being written get before their connections are cut. */
const CLOSE_GRACE_MS = 1_000;

export function createTunnelServer(options: ServerOptions = {}): TunnelServer {
  const o = resolveServerOptions(options);
  const logger = o.logger;
  let ready = false;
  let closing: Promise<void> | undefined;

  /** Recent requests for replay from the dashboard (replay/capture.ts). */
  const captures: CaptureRing = createCaptureRing(o.capture);

  function finished(ex: Exchange, tunnel: TunnelSession): void {
    const t = o.now();
    const path = ex.message.url.split('?')[0]!;
    // An upgrade is logged when its connection closes: status 101, totalMs its lifetime.
    const status = ex.upgrade ? (ex.upgrade.status ?? 499) : ex.res!.headersSent ? ex.res!.statusCode : 499;
    const complete = ex.upgrade ? ex.upgrade.status !== undefined : ex.res!.writableFinished;
    tunnel.stats.bytesIn += ex.bytesIn;
    tunnel.stats.bytesOut += ex.bytesOut;
    if (status >= 500 || (ex.code !== undefined && ex.code !== 'browser_gone') || !complete) tunnel.stats.errors++;
    const fields: Record<string, unknown> = {
      tunnel: tunnel.name,
      port: tunnel.port,
      requestId: ex.requestId,
      method: ex.message.method,
      // The query is left out on purpose: it may carry tokens (Vite's ?token=, OAuth codes).
      path,
      status,
      bytesIn: ex.bytesIn,
      bytesOut: ex.bytesOut,
      queuedMs: (ex.dispatchedAt ?? t) - ex.arrivedAt,
      clientMs: ex.dispatchedAt === undefined ? 0 : (ex.respondedAt ?? t) - ex.dispatchedAt,
      totalMs: t - ex.arrivedAt,
    };
    if (ex.code) fields.code = ex.code;
    if (ex.pushed) fields.push = 'hit';
    if (!complete) fields.incomplete = true;
    const trace = traceFields(ex.req);
    if (trace) fields.trace = trace;
    if (ex.route !== undefined) {
      fields.route = ex.route;
      fields.servedBy = ex.servedBy;
      const route = registry.route(ex.route);
      const failed = ex.code !== undefined && ex.code !== 'browser_gone';
      if (route) route.served[failed ? 'error' : 'tunnel']++;
      metrics.routeRequest(ex.route, failed ? 'error' : 'tunnel');
    }
    logger.log('info', 'request', fields);
    if (!ex.upgrade) captures.add(ex.req, { id: ex.requestId, port: ex.route !== undefined ? (registry.route(ex.route)?.config.port ?? tunnel.port) : tunnel.port, ...(ex.route !== undefined ? { route: ex.route } : {}), servedBy: ex.servedBy ?? `tunnel ${tunnel.name}`, status }, t);
    remember(tunnel.stats, { time: t, method: ex.message.method, path, status, durationMs: t - ex.arrivedAt, ...(ex.code ? { code: ex.code } : {}) });
    metrics.requestFinished({ status, code: ex.code, bytesIn: ex.bytesIn, bytesOut: ex.bytesOut, queuedMs: fields.queuedMs as number, totalMs: t - ex.arrivedAt, upgrade: ex.upgrade !== undefined });
  }

  /** A request a route's real app served, or failed to (then served by `error`). */
  function upstreamFinished(route: Route, req: IncomingMessage, outcome: UpstreamOutcome, arrivedAt: number): void {
    const t = o.now();
    const failed = outcome.code !== undefined && outcome.code !== 'browser_gone';
    const servedBy = failed ? 'error' : 'upstream';
    route.served[servedBy]++;
    metrics.routeRequest(route.config.name, servedBy);
    const fields: Record<string, unknown> = {
      route: route.config.name,
      servedBy,
      port: route.config.port,
      requestId: outcome.requestId,
      method: req.method,
      path: req.url!.split('?')[0],
      status: outcome.status,
      bytesIn: outcome.bytesIn,
      bytesOut: outcome.bytesOut,
      totalMs: t - arrivedAt,
    };
    if (outcome.code) fields.code = outcome.code;
    if (outcome.incomplete && !outcome.upgrade) fields.incomplete = true;
    const trace = traceFields(req);
    if (trace) fields.trace = trace;
    logger.log(failed ? 'warn' : 'info', 'request', fields);
    if (!outcome.upgrade) captures.add(req, { id: outcome.requestId, port: route.config.port, route: route.config.name, servedBy, status: outcome.status }, t);
  }

  function rejected(port: number, error: HttpError, req?: IncomingMessage): void {
    const route = registry.routeAt(port);
    if (route) {
      route.served.error++;
      metrics.routeRequest(route.config.name, 'error');
    }
    logger.log('warn', 'request.rejected', { port, status: error.status, code: error.code, reason: error.message, method: req?.method, path: req?.url?.split('?')[0] });
  }

  function snapshot(): MetricsSnapshot {
    const s: MetricsSnapshot = { tunnels: { connected: 0, offline: 0, closed: 0, expired: 0 }, pollsWaiting: 0, queued: 0, inFlight: 0, upgraded: 0 };
    for (const t of registry.list()) {
      s.tunnels[t.state]++;
      s.pollsWaiting += t.pollsWaiting;
      s.queued += t.queued;
      s.inFlight += t.inFlight;
      s.upgraded += t.upgraded;
    }
    if (registry.cluster) s.storeUp = registry.cluster.storeUp;
    return s;
  }
  const metrics: ServerMetrics = o.metrics === false ? noopMetrics : (o.metrics ?? createPrometheusMetrics(snapshot));
  const registry: Registry = createRegistry({ options: o, logger, finished, rejected, upstreamFinished, metrics });
  const handler = createControlHandler({ options: o, registry, logger, metrics, captures, isReady: () => ready && !closing });
  const server: Server = createServer({
    headersTimeout: o.headersTimeoutMs,
    // Uploads of long responses and held polls have no total cap; idleness is capped below.
    requestTimeout: 0,
    keepAliveTimeout: o.keepAliveTimeoutMs,
    connectionsCheckingInterval: connectionsCheckingInterval(o),
    noDelay: true,
    // Response heads of local apps travel in the frame, not in headers: Node's 16 KiB is plenty.
    insecureHTTPParser: false,
  });
  // A held poll is quiet for pollTimeoutMs; anything quiet for longer than the body idle limit is dead.
  server.timeout = Math.max(o.bodyIdleTimeoutMs, o.pollTimeoutMs + 5_000);
  server.on('request', (req, res) => void handler(req, res));
  // Upgrades on the control port come only from another replica (the internal hop): a browser's
  // WebSocket for a tunnel this replica holds.
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const arrival = registry.cluster?.hop.arrival(req);
    if (!arrival || arrival === 'invalid' || arrival.port === 0) {
      endRaw(socket, rawResponse(new HttpError('forbidden', 'No upgrades on the control port.')));
      return;
    }
    setHopRemote(req, arrival.remote);
    registry.hopInUpgrade(req, socket, head, arrival.port);
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (socket.writable) endRaw(socket as Socket, rawResponse(new HttpError('invalid_request', `Malformed HTTP request (${err.code ?? 'parse error'}).`)));
    else socket.destroy();
    logger.log('debug', 'control.client_error', { code: err.code });
  });

  return {
    options: o,
    async listen() {
      await registry.start();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(o.port, o.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      ready = true;
      const address = server.address() as AddressInfo;
      logger.log('info', 'server.listening', { host: address.address, port: address.port, tunnelPorts: o.tunnelPorts, stateFile: o.stateFile });
      return { port: address.port, host: address.address };
    },
    get port() {
      return (server.address() as AddressInfo | null)?.port ?? o.port;
    },
    tunnels: () => registry.list(),
    close() {
      closing ??= (async () => {
        logger.log('info', 'server.draining', { tunnels: registry.size, budgetMs: o.drainTimeoutMs });
        if (server.listening) {
          await registry.drain(o.drainTimeoutMs);
        }
        await registry.close();
        await new Promise<void>((resolve) => {
          if (!server.listening) return resolve();
          server.close(() => resolve());
          // Idle keep-alive connections close now; a response still being written (one another
          // replica sent here, or this one sent on to the tunnel's new replica) gets a moment.
          server.closeIdleConnections();
          setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS).unref();
        });
        logger.log('info', 'server.closed');
      })();
      return closing;
    },
  };
}
