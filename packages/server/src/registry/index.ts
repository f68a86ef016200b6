import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { PROTOCOL_VERSION, type RegisterResponse } from '@devtunnel/core/protocol';
import { HttpError } from '../errors';
import type { Exchange } from '../exchange';
import { randomId } from '../ids';
import type { ServerLogger } from '../logger';
import type { ServerMetrics } from '../metrics';
import { offeredFeatures, type ResolvedServerOptions } from '../options';
import { createPortAllocator, type PortAllocator } from '../ports';
import { createRouteTable, routeMembers, routeSnapshot, type Route, type RouteMember, type RouteSnapshot, type RouteTable } from '../routes';
import type { UpstreamOutcome } from '../routes/upstream';
import { createTunnelSession, type TunnelSession } from '../session';
import { createStateStore, type StateStore } from '../state-store';
import { createTunnelListener, type TunnelListener } from '../tunnel-port/listener';
import { createCluster, type Cluster, type OwnerRecord } from '../cluster';
import { publicUrl, routeFor, routeLink, validRegistration } from './admission';
import { handOver } from './handover';
import { pushesOf } from './pushes';
import { createReplicaSide, type ReplicaSide } from './replicas';
import { createIdentityGate } from './identities';
import { owner, snapshot, type TunnelSnapshot } from './snapshot';

export type { TunnelSnapshot } from './snapshot';

/**
 * All tunnels of the server: registration, lookup by id and by port, the listeners of the tunnel
 * ports, expiry, and persistence of port assignments.
 */
export interface Registry {
  /** Loads persisted assignments and starts the expiry sweep. */
  start(): Promise<void>;
  register(body: unknown, hostHeader: string | undefined): Promise<RegisterResponse>;
  get(id: string): TunnelSession | undefined;
  /** Ends a tunnel now (deregistration, or an admin closing it). Its port stays reserved. */
  remove(id: string, reason: string): void;
  list(): TunnelSnapshot[];
  /** With several replicas (`store`): this replica's part. */
  readonly cluster: Cluster | undefined;
  /** A request another replica handed over (the internal hop), as if it came in on `port`. */
  hopIn(req: IncomingMessage, res: import('node:http').ServerResponse, port: number): void;
  hopInUpgrade(req: IncomingMessage, socket: import('node:net').Socket, head: Buffer, port: number): void;
  /** The routes, their upstreams' health and their members. */
  routes(): RouteSnapshot[];
  /** A route by name. */
  route(name: string): Route | undefined;
  /** The route listening on `port`. */
  routeAt(port: number): Route | undefined;
  readonly size: number;
  /** Stops accepting browser requests and polls; resolves when in-flight requests ended or the budget ran out. */
  drain(budgetMs: number): Promise<void>;
  close(): Promise<void>;
}

export interface RegistryDeps {
  options: ResolvedServerOptions;
  logger: ServerLogger;
  /** Writes the per-request log line and updates counters. */
  finished(exchange: Exchange, tunnel: TunnelSession): void;
  metrics: ServerMetrics;
  rejected(port: number, error: HttpError, req?: IncomingMessage): void;
  /** Writes the log line of a request a route's real app served (or failed to). */
  upstreamFinished(route: Route, req: IncomingMessage, outcome: UpstreamOutcome, arrivedAt: number): void;
}

/** How long a port that another process holds is skipped before we try it again. */
const UNUSABLE_PORT_MS = 60_000;

export function createRegistry(deps: RegistryDeps): Registry {
  const { options, logger } = deps;
  const now = options.now;
  const allocator: PortAllocator = createPortAllocator(options.portRange, now);
  const store: StateStore | undefined = options.stateFile
    ? createStateStore(options.stateFile, () => allocator.list(), (error) => logger.log('error', 'state.write_failed', { file: options.stateFile, error: error.message }))
    : undefined;
  const byId = new Map<string, TunnelSession>();
  const byPort = new Map<number, TunnelSession>();
  const byClient = new Map<string, TunnelSession>();
  const routes: RouteTable = createRouteTable(options);
  const cluster: Cluster | undefined = options.store ? createCluster(options, logger) : undefined;
  const pushes = pushesOf(options, deps.metrics);
  /** With several replicas: the route's members the other replicas hold, as their records say. */
  const membersElsewhere = (route: Route): RouteMember[] =>
    cluster
      ? cluster.view
          .owners()
          .filter((o) => o.route === route.config.name && cluster.elsewhere(o) !== undefined)
          .map((o) => ({ name: o.name, port: o.port, state: o.offline ? 'offline' : 'connected', localPort: undefined }))
      : [];
  /**
   * A port accepts browsers as long as someone holds it, with or without a live tunnel: a browser
   * reaching a reserved port gets a clear 503 tunnel_offline naming the tunnel, rather than a
   * refused connection the cluster proxy turns into an anonymous 502.
   */
  const listener: TunnelListener = createTunnelListener({
    options,
    lookup: (p) => byPort.get(p),
    holder: (p) => allocator.holderOf(p)?.name,
    route: (p) => routes.byPort(p),
    routeMembers: (route) => routeMembers(route, membersElsewhere(route)),
    ...(cluster
      ? {
          elsewhere: (p: number) => cluster.elsewhere(cluster.view.byPort(p)),
          memberElsewhere: (route: string, name: string) => cluster.elsewhere(cluster.view.byRouteName(route, name)),
          hop: cluster.hop,
        }
      : {}),
    upstreamFinished: deps.upstreamFinished,
    finished: deps.finished,
    rejected: deps.rejected,
  });
  let sweepTimer: NodeJS.Timeout | undefined;
  let serial: Promise<unknown> = Promise.resolve();
  let draining = false;
  const identities = createIdentityGate({ now, expireMs: options.expireMs, logger });
  const replicas: ReplicaSide | undefined = cluster
    ? createReplicaSide({ cluster, options, logger, allocator, listener, identities, tunnelOf: (clientId) => byClient.get(clientId), routePort: (route) => routes.byName(route)?.config.port, end })
    : undefined;
  /** With a store: this replica's claim on each tunnel it holds, by identity. */
  const owned = replicas?.owned ?? new Map<string, OwnerRecord>();
  /** Identities whose last tunnel was closed by its owner or an administrator, not lost: listed `closed`. */
  const closedByOwner = new Set<string>();

  function end(tunnel: TunnelSession, reason: string, error: HttpError): void {
    byId.delete(tunnel.id);
    if (byPort.get(tunnel.port) === tunnel) byPort.delete(tunnel.port);
    if (byClient.get(tunnel.clientId) === tunnel) byClient.delete(tunnel.clientId);
    if (tunnel.route !== undefined) routes.byName(tunnel.route)?.leave(tunnel);
    const claim = owned.get(tunnel.clientId);
    if (claim && claim.tunnelId === tunnel.id) {
      owned.delete(tunnel.clientId);
      // Taken over by another replica: the claim is no longer ours to give up.
      if (reason !== 'replaced_elsewhere') void cluster?.release(claim);
    }
    tunnel.close(error, new HttpError('client_disconnected', `The tunnel "${tunnel.name}" closed (${reason}) while this request was in progress.`));
    allocator.touch(tunnel.clientId);
    if (reason === 'deregistered' || reason === 'closed_by_admin') closedByOwner.add(tunnel.clientId);
    else closedByOwner.delete(tunnel.clientId);
    logger.log('info', 'tunnel.closed', { tunnel: tunnel.name, port: tunnel.port, id: tunnel.id, reason });
    deps.metrics.tunnelClosed(reason);
    store?.save();
  }

  async function doRegister(body: unknown, hostHeader: string | undefined): Promise<RegisterResponse> {
    if (draining) throw new HttpError('server_shutting_down', 'The tunnel server is shutting down; register again in a moment.', { retryAfter: 2 });
    const req = validRegistration(body);
    identities.admit(req, byClient.get(req.clientId));
    const name = req.name ?? 'tunnel';
    const route = routeFor(req, name, routes, cluster);
    // The same identity registering again (a client restart, or after a server restart) replaces
    // its old session and keeps its port.
    const previous = byClient.get(req.clientId);
    const isActive = (clientId: string) => byClient.get(clientId)?.isActive() ?? false;
    let port: number | undefined;
    // Bounded: each failed listen marks one more port unusable.
    for (let attempt = 0; attempt <= options.portRange.to - options.portRange.from + 1; attempt++) {
      const { port: candidate, evicted } = replicas ? await replicas.assign(req.clientId, name, req.preferredPort ?? previous?.port) : allocator.assign(req.clientId, name, req.preferredPort ?? previous?.port, isActive);
      if (evicted) {
        closedByOwner.delete(evicted);
        const loser = byClient.get(evicted);
        if (loser) end(loser, 'port_reused', new HttpError('unknown_tunnel', 'This tunnel expired and its port went to another developer; register again.'));
        logger.log('info', 'port.reused', { port: candidate });
      }
      try {
        await listener.listen(candidate);
        port = candidate;
        break;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== 'EADDRINUSE' && code !== 'EACCES') throw error;
        logger.log('warn', 'port.unusable', { port: candidate, code });
        allocator.markUnusable(candidate, UNUSABLE_PORT_MS);
        allocator.release(req.clientId);
        if (cluster) await cluster.releasePort(req.clientId);
      }
    }
    if (port === undefined) throw new HttpError('port_range_full', 'No port of the tunnel range can be listened on.', { retryAfter: 30 });
    if (previous) {
      // Another process of this identity (its instance differs) takes over, once: the one it
      // replaces stops for good. The same process registering again just renews its session.
      const takeover = identities.takesOver(req, previous);
      end(previous, 'replaced', takeover ? identities.replacedBy(req.localPort) : new HttpError('unknown_tunnel', 'This tunnel was replaced by a newer registration of the same client.'));
    }

    const id = randomId();
    // With a store, this replica takes the tunnel over (the newest claim wins), before the
    // session exists: a store that is away refuses the registration, and nothing is left behind.
    if (cluster) owned.set(req.clientId, await cluster.claim({ tunnelId: id, clientId: req.clientId, instance: req.instance, port, name, route: route?.config.name }));
    const secret = randomBytes(32).toString('hex');
    const secretBytes = Buffer.from(secret);
    const tunnel = createTunnelSession(
      { id, clientId: req.clientId, instance: req.instance, name, port, localPort: req.localPort, version: req.version, features: new Set(req.features ?? []), route: route?.config.name },
      {
        options,
        logger: logger.child({ tunnel: name, port }),
        // Constant-time compare of equal-length values; a wrong length is simply wrong.
        verifySecret: (candidate) => candidate.length === secretBytes.length && timingSafeEqual(Buffer.from(candidate), secretBytes),
        pushes,
      },
    );
    byId.set(id, tunnel);
    byPort.set(port, tunnel);
    byClient.set(req.clientId, tunnel);
    route?.join(tunnel);
    closedByOwner.delete(req.clientId);
    store?.save();
    const url = publicUrl(options, port, hostHeader);
    deps.metrics.tunnelRegistered();
    logger.log('info', 'tunnel.registered', { tunnel: name, port, id, owner: owner(req.clientId), localPort: req.localPort, version: req.version, replaced: previous !== undefined, ...(route ? { route: route.config.name } : {}) });
    return {
      protocol: PROTOCOL_VERSION,
      id,
      secret,
      name,
      port,
      url,
      timing: {
        pollTimeoutMs: options.pollTimeoutMs,
        leaseMs: options.leaseMs,
        localTimeoutMs: options.localTimeoutMs,
        bodyIdleTimeoutMs: options.bodyIdleTimeoutMs,
      },
      maxPolls: options.maxPolls,
      features: offeredFeatures(options),
      ...(route ? { route: { name: route.config.name, selector: name, link: routeLink(options, route, name, hostHeader) } } : {}),
    };
  }

  function sweep(): void {
    const t = now();
    identities.sweep(t);
    for (const tunnel of [...byId.values()]) {
      tunnel.sweep(t);
      replicas?.sweep(tunnel);
      if (tunnel.isActive()) allocator.touch(tunnel.clientId);
      else if (tunnel.state() === 'offline' && t - tunnel.stats.lastSeen > options.expireMs) {
        end(tunnel, 'expired', new HttpError('unknown_tunnel', 'This tunnel expired; register again.'));
      }
    }
  }

  return {
    cluster,
    hopIn: (req, res, port) => listener.hopIn(req, res, port),
    hopInUpgrade: (req, socket, head, port) => listener.hopInUpgrade(req, socket, head, port),
    async start() {
      for (const route of routes.all) await listener.listen(route.config.port);
      routes.start();
      await replicas?.start();
      if (store) {
        allocator.load(await store.load());
        for (const { port, clientId } of allocator.list()) {
          try {
            await listener.listen(port);
          } catch (error) {
            logger.log('warn', 'port.unusable', { port, code: (error as NodeJS.ErrnoException).code });
            allocator.markUnusable(port, UNUSABLE_PORT_MS);
            allocator.release(clientId);
          }
        }
      }
      // A quarter of the lease, at most 2 s: a tunnel goes offline within lease + 2 s.
      sweepTimer = setInterval(sweep, Math.max(50, Math.min(2000, Math.floor(options.leaseMs / 4))));
      sweepTimer.unref();
    },

    register(body, hostHeader) {
      // One registration at a time: port choice and listen() must not interleave.
      const result = serial.then(() => doRegister(body, hostHeader));
      serial = result.catch(() => {});
      return result;
    },

    get: (id) => byId.get(id),

    remove(id, reason) {
      const tunnel = byId.get(id);
      if (!tunnel) return;
      // Closed by an admin: tell the client to stop, not to register again at once.
      const error = reason === 'closed_by_admin'
        ? new HttpError('tunnel_closed', 'An administrator of the tunnel server closed this tunnel. Start the client again if you still need it.')
        : new HttpError('unknown_tunnel', `This tunnel was closed (${reason}).`);
      end(tunnel, reason, error);
    },

    list() {
      return allocator
        .list()
        .map((a) => {
          const local = byClient.get(a.clientId);
          const shown = snapshot(a, local, closedByOwner.has(a.clientId) ? 'closed' : 'expired');
          // Held by another replica: connected there (its counters are that replica's).
          return !local && replicas ? replicas.shownElsewhere(shown, a.clientId) : shown;
        })
        .sort((x, y) => x.port - y.port);
    },

    routes: () => routes.all.map((r) => routeSnapshot(r, membersElsewhere(r))),
    route: (name) => routes.byName(name),
    routeAt: (port) => routes.byPort(port),

    get size() {
      return byId.size;
    },

    async drain(budgetMs) {
      draining = true;
      const deadline = now() + budgetMs;
      // Several replicas and the store answering: the tunnels move to the others, their waiting
      // requests with them (handover.ts). What is left then (clients that did not move) drains.
      if (cluster?.storeUp) await handOver(() => [...byId.values()], cluster.hop, now, deadline);
      const reason = new HttpError('server_shutting_down', 'The tunnel server is restarting; it will be back in a moment.', { retryAfter: 2 });
      for (const tunnel of byId.values()) tunnel.drain(reason);
      listener.stop();
      // Bounded wait for in-flight requests to finish, checked on a short interval.
      const busy = () => [...byId.values()].some((t) => t.inFlight > 0) || routes.all.some((r) => r.upstream.inFlight > 0);
      while (now() < deadline && busy()) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },

    async close() {
      draining = true;
      if (sweepTimer) clearInterval(sweepTimer);
      const reason = new HttpError('server_shutting_down', 'The tunnel server stopped.', { retryAfter: 2 });
      for (const tunnel of [...byId.values()]) {
        tunnel.close(reason);
        allocator.touch(tunnel.clientId);
      }
      if (cluster) {
        // Given up, so the other replicas stop sending here before the clients come back to them.
        await Promise.all([...owned.values()].map((claim) => cluster.release(claim)));
        owned.clear();
        await cluster.close();
      }
      byId.clear();
      byPort.clear();
      byClient.clear();
      // First the real apps' upgraded connections: the listener's close waits for every socket.
      await routes.close();
      await listener.destroy();
      if (store) {
        store.save();
        await store.flush();
      }
    },
  };
}
