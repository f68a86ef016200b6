import type { IncomingMessage, ServerResponse } from 'node:http';
import { API_PREFIX, HEADER, ID_PATTERN, PROTOCOL_VERSION } from '@devtunnel/core/protocol';
import { createDashboard } from '../dashboard';
import { sendError } from '../error-response';
import { HttpError } from '../errors';
import type { ServerLogger } from '../logger';
import type { ServerMetrics } from '../metrics';
import { offeredFeatures, type ResolvedServerOptions } from '../options';
import type { Registry } from '../registry';
import type { CaptureRing } from '../replay/capture';
import { handleBatchUpload, handleResponseUpload, handleStreamUpload } from '../respond';
import { setHopRemote } from '../tunnel-port/request';
import { handleUpstream } from '../upgrade';
import { createControlAuth } from './auth';
import { json, readJson } from './body';
import { probeDownstream, probeUpstream } from './doctor';
import { createRouter, type Route } from './router';

/**
 * The control API, in the order a request meets it: route (the table below) → authenticate →
 * act. Errors become responses in one place, at the end (`controlApi`'s catch). The dashboard
 * (its own sign-in) is served under `/dashboard`.
 */
export interface ControlDeps {
  options: ResolvedServerOptions;
  registry: Registry;
  logger: ServerLogger;
  metrics: ServerMetrics;
  /** Recent requests, for replay from the dashboard. */
  captures: CaptureRing;
  /** False while starting or draining: /readyz answers 503. */
  isReady(): boolean;
}

type Handler = (req: IncomingMessage, res: ServerResponse, params: Record<string, string>) => void | Promise<void>;

export function createControlHandler(deps: ControlDeps) {
  const { options, registry, logger } = deps;
  const auth = createControlAuth(deps);
  const { requireToken, requireTunnel } = auth;
  const dashboard = createDashboard({ options, registry, logger, captures: deps.captures, authFailed: auth.authFailed, throttled: auth.throttled });

  /** An upload's request id: one the tunnel handed out, waiting for its answer. */
  const requestId = (rid: string) => (ID_PATTERN.test(rid) ? undefined : new HttpError('unknown_request', 'No such request on this tunnel.'));

  const routes: ReadonlyArray<Route<Handler>> = [
    // The protocol and features too: `devtunnel doctor` checks them before it has a valid token.
    { method: '*', path: '/healthz', handler: (_req, res) => json(res, 200, { status: 'ok', protocol: PROTOCOL_VERSION, features: offeredFeatures(options) }) },
    {
      method: '*',
      path: '/readyz',
      handler(_req, res) {
        if (!deps.isReady()) throw new HttpError('server_shutting_down', 'Not ready: starting or draining.', { retryAfter: 2 });
        // A store that is away keeps the replica ready: it still serves the tunnels it holds, and
        // taking every replica out of the Service at once would drop them all.
        json(res, 200, { status: 'ready', tunnels: registry.size, ...(registry.cluster ? { store: registry.cluster.storeUp ? 'up' : 'down' } : {}) });
      },
    },
    {
      // Prometheus scrapes from inside the cluster; the NetworkPolicy decides who may (docs/deploy.md).
      method: '*',
      path: '/metrics',
      async handler(_req, res) {
        const { text, contentType } = await deps.metrics.render();
        res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
        res.end(text);
      },
    },
    {
      // Register: the token; a client of another protocol version is told so.
      method: 'POST',
      path: `${API_PREFIX}/tunnels`,
      async handler(req, res) {
        requireToken(req);
        const spoken = req.headers[HEADER.protocol];
        if (spoken !== undefined && spoken !== String(PROTOCOL_VERSION)) {
          throw new HttpError('invalid_request', `This server speaks devtunnel protocol ${PROTOCOL_VERSION}; the client speaks ${String(spoken)}. Use matching versions of the client and the server.`);
        }
        json(res, 201, await registry.register(await readJson(req), req.headers.host));
      },
    },
    {
      method: 'GET',
      path: `${API_PREFIX}/tunnels`,
      handler(req, res) {
        requireToken(req);
        json(res, 200, { tunnels: registry.list(), routes: registry.routes() });
      },
    },
    // `devtunnel doctor`: do streams pass, how fast is the way (doctor.ts). The token, as the
    // probe holds a connection open for seconds.
    {
      method: 'GET',
      path: `${API_PREFIX}/doctor`,
      handler(req, res) {
        requireToken(req);
        probeDownstream(req, res, offeredFeatures(options));
      },
    },
    {
      method: 'POST',
      path: `${API_PREFIX}/doctor`,
      handler(req, res) {
        requireToken(req);
        probeUpstream(req, res);
      },
    },
    {
      // Check; with a downstream's key, confirm that downstream.
      method: 'GET',
      path: `${API_PREFIX}/tunnels/:id`,
      handler(req, res, { id }) {
        const t = requireTunnel(req, id!);
        // Its replica is stopping: the client registers again, and another replica takes it over.
        if (t.moving) throw t.moving;
        const key = req.headers[HEADER.downstream];
        if (typeof key === 'string') t.confirmDownstream(key);
        json(res, 200, { id: t.id, name: t.name, port: t.port, state: t.state() });
      },
    },
    {
      // Deregister: only the tunnel's own secret (the registration token is every developer's).
      method: 'DELETE',
      path: `${API_PREFIX}/tunnels/:id`,
      handler(req, res, { id }) {
        requireTunnel(req, id!);
        registry.remove(id!, 'deregistered');
        res.writeHead(204).end();
      },
    },
    { method: 'GET', path: `${API_PREFIX}/tunnels/:id/poll`, handler: (req, res, { id }) => requireTunnel(req, id!).addPoll(req, res) },
    { method: 'GET', path: `${API_PREFIX}/tunnels/:id/stream`, handler: (req, res, { id }) => requireTunnel(req, id!).attachDownstream(req, res) },
    { method: 'POST', path: `${API_PREFIX}/tunnels/:id/stream`, handler: (req, res, { id }) => handleStreamUpload(requireTunnel(req, id!), req, res) },
    { method: 'POST', path: `${API_PREFIX}/tunnels/:id/responses`, handler: (req, res, { id }) => handleBatchUpload(requireTunnel(req, id!), req, res) },
    {
      // After a 101: the browser's bytes, to the client.
      method: 'GET',
      path: `${API_PREFIX}/tunnels/:id/requests/:rid/upstream`,
      handler(req, res, { id, rid }) {
        const tunnel = requireTunnel(req, id!);
        const exchange = requestId(rid!) ?? tunnel.findUpgrade(rid!);
        if (exchange instanceof HttpError) throw exchange;
        handleUpstream(exchange, req, res);
      },
    },
    {
      // One answer, streamed to its browser.
      method: 'POST',
      path: `${API_PREFIX}/tunnels/:id/requests/:rid`,
      async handler(req, res, { id, rid }) {
        const tunnel = requireTunnel(req, id!);
        const exchange = requestId(rid!) ?? tunnel.take(rid!);
        if (exchange instanceof HttpError) throw exchange;
        await handleResponseUpload(tunnel, exchange, req, res);
      },
    },
  ];
  const match = createRouter(routes);

  /** A tunnel's id in a tunnel-scoped path, `/api/v1/tunnels/:id/…`. */
  const tunnelPath = new RegExp(`^${API_PREFIX.replace(/\//g, '\\/')}\\/tunnels\\/([0-9a-f]{32})(?:\\/|$)`);

  /**
   * With several replicas: a browser request another replica handed over goes to the tunnel
   * ports' steps; a tunnel's own call (poll, stream, upload) for a tunnel another replica holds
   * goes there, once. Returns true when the request was handed on.
   */
  async function hopped(req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
    const cluster = registry.cluster;
    if (!cluster) return false;
    const arrival = cluster.hop.arrival(req);
    if (arrival === 'invalid') throw new HttpError('forbidden', 'This internal request between tunnel server replicas is not signed by one of them.');
    if (arrival && arrival.port > 0) {
      setHopRemote(req, arrival.remote);
      registry.hopIn(req, res, arrival.port);
      return true;
    }
    if (arrival) {
      setHopRemote(req, arrival.remote);
      return false;
    }
    const id = tunnelPath.exec(path)?.[1];
    if (id === undefined || registry.get(id)) return false;
    const there = cluster.elsewhere(await cluster.findTunnel(id));
    if (!there) return false;
    cluster.hop.forward(req, res, there, { port: 0, remote: req.socket.remoteAddress ?? 'unknown' });
    return true;
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!;
    if (await hopped(req, res, path)) return;
    // Polls and uploads must not wait a turn for the dashboard's router.
    if (path.startsWith('/dashboard') && (await dashboard(req, res, path))) return;
    const found = match(req.method ?? 'GET', path);
    if (found.kind === 'route') return found.handler(req, res, found.params);
    if (found.kind === 'method') throw new HttpError('method_not_supported', `Use ${found.allow.join(' or ')} on this path.`);
    if (!path.startsWith(`${API_PREFIX}/tunnels`)) throw new HttpError('not_found', `Nothing at ${path}. The API lives under ${API_PREFIX}/.`);
    throw new HttpError('not_found', `Nothing at ${path}.`);
  }

  return async function controlApi(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      await route(req, res);
    } catch (error) {
      const e = error instanceof HttpError ? error : new HttpError('internal_error', 'Internal error; see the server log.');
      if (!(error instanceof HttpError)) logger.log('error', 'control.internal_error', { error: (error as Error).stack ?? String(error) });
      // A body we did not read would be parsed as the next request: close instead.
      sendError(req, res, e, { fallback: 'json', close: !req.complete });
    }
  };
}
