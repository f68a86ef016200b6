import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { PROTOCOL_VERSION, RegistrationError, parseRegisterRequest, type RegisterRequest, type RegisterResponse } from '@devtunnel/core/protocol';
import { HttpError } from '../errors';
import type { Exchange } from '../exchange';
import { randomId } from '../ids';
import type { ServerLogger } from '../logger';
import type { ServerMetrics } from '../metrics';
import { offeredFeatures, type ResolvedServerOptions } from '../options';
import { createPortAllocator, type PortAllocator } from '../ports';
import { createRouteTable, routeSnapshot, type Route, type RouteSnapshot, type RouteTable } from '../routes';
import type { UpstreamOutcome } from '../routes/upstream';
import { createTunnelSession, type TunnelDeps, type TunnelSession } from '../session';
import { createStateStore, type StateStore } from '../state-store';
import { createTunnelListener, type TunnelListener } from '../tunnel-port/listener';
import { createCluster, type Cluster, type OwnerRecord } from '../cluster';
import { handOver, sendQueuedOn } from './handover';
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




function validRegistration(body: unknown): RegisterRequest {
  try {
    return parseRegisterRequest(body);
  } catch (error) {
    if (error instanceof RegistrationError) throw new HttpError('invalid_request', error.message);
    throw error;
  }
}

/**
 * Push bounds (docs/speculation.md): a browser request waits this long at most for a promised push;
 * a tunnel keeps this many pushes and bytes, the server this many bytes over all tunnels.
 */
const PUSH_WAIT_MS = 5_000;
const PUSH_ENTRIES_PER_TUNNEL = 8_192;
const PUSH_BYTES_PER_TUNNEL = 32 * 1024 * 1024;
const PUSH_BYTES_TOTAL = 256 * 1024 * 1024;

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
  /** Every tunnel's pushes share one byte budget (docs/speculation.md, "Memory"). */
  const pushes: TunnelDeps['pushes'] = options.pushLifetimeMs > 0
    ? {
        limits: { lifetimeMs: options.pushLifetimeMs, waitMs: PUSH_WAIT_MS, maxEntries: PUSH_ENTRIES_PER_TUNNEL, maxBytes: PUSH_BYTES_PER_TUNNEL },
        budget: { bytes: 0, maxBytes: PUSH_BYTES_TOTAL },
        events: { received: (n) => deps.metrics.pushReceived(n), used: (_n, notModified) => deps.metrics.pushUsed(notModified), dropped: (reason, n) => deps.metrics.pushDropped(reason, n) },
      }
    : undefined;
  /** With a store: this replica's claim on each tunnel it holds, by identity. */
  const owned = new Map<string, OwnerRecord>();
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
  /** Identities whose last tunnel was closed by its owner or an administrator, not lost: listed `closed`. */
  const closedByOwner = new Set<string>();

  function publicUrl(port: number, hostHeader: string | undefined): string {
    const host = (hostHeader ?? 'localhost').replace(/:\d+$/, '');
    return options.publicUrl.replace('{host}', host).replace('{port}', String(port));
  }

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
    const route = req.route === undefined ? undefined : routes.byName(req.route);
    if (req.route !== undefined && !route) {
      const known = routes.all.map((r) => r.config.name);
      throw new HttpError('unknown_route', `This tunnel server has no route "${req.route}" (${known.length ? `its routes: ${known.join(', ')}` : 'it has no routes'}). Check --route / DEVTUNNEL_ROUTE, or ask the server's operator to add it (devtunnel-server --route ${req.route}:PORT=URL).`);
    }
    // A name selects one tunnel per route: another developer's live tunnel keeps it.
    const holder = route?.member(name);
    const remoteHolder = route && cluster ? cluster.view.byRouteName(route.config.name, name) : undefined;
    const taken = holder && holder.clientId !== req.clientId && holder.isActive() ? holder.clientId : remoteHolder && remoteHolder.clientId !== req.clientId && cluster!.elsewhere(remoteHolder) ? remoteHolder.clientId : undefined;
    if (taken !== undefined) {
      throw new HttpError('route_name_taken', `Another developer's tunnel (${owner(taken)}) serves route "${route!.config.name}" under the name "${name}". Choose another name (--name / the name option).`);
    }
    // The same identity registering again (a client restart, or after a server restart) replaces
    // its old session and keeps its port.
    const previous = byClient.get(req.clientId);
    const isActive = (clientId: string) => byClient.get(clientId)?.isActive() ?? false;
    let port: number | undefined;
    // Bounded: each failed listen marks one more port unusable.
    for (let attempt = 0; attempt <= options.portRange.to - options.portRange.from + 1; attempt++) {
      const { port: candidate, evicted } = cluster ? await clusterAssign(req.clientId, name, req.preferredPort ?? previous?.port) : allocator.assign(req.clientId, name, req.preferredPort ?? previous?.port, isActive);
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
    const url = publicUrl(port, hostHeader);
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
      ...(route ? { route: { name: route.config.name, selector: name, link: routeLink(route, name, hostHeader) } } : {}),
    };
  }

  /** The route's page offering this tunnel, where browsers reach the route. */
  function routeLink(route: Route, name: string, hostHeader: string | undefined): string {
    const base = route.config.publicUrl ?? publicUrl(route.config.port, hostHeader).replace(/\/+$/, '');
    return `${base}/__devtunnel/?use=${name}`;
  }

  /** A port from the store (one atomic script for every replica), mirrored here. */
  async function clusterAssign(clientId: string, name: string, preferred: number | undefined): Promise<{ port: number; evicted: string | undefined }> {
    const result = await cluster!.assignPort(clientId, name, preferred);
    if (result.port === 0) {
      throw new HttpError('port_range_full', `Every tunnel port (${options.portRange.from}-${options.portRange.to}) is held by an active tunnel. Try again later, or ask the operator to widen --tunnel-ports.`, { retryAfter: 30 });
    }
    const kept = allocator.list().filter((a) => a.clientId !== clientId && a.port !== result.port && a.clientId !== result.evicted);
    allocator.replace([...kept, { clientId, name, port: result.port, lastActive: now() }]);
    return result;
  }

  /** Listens on every port the store reserves (any replica serves any tunnel), mirrored here. */
  let syncingPorts: Promise<void> | undefined;
  let portsAgain = false;
  function syncPorts(): void {
    if (syncingPorts) {
      portsAgain = true;
      return;
    }
    syncingPorts = (async () => {
      do {
        portsAgain = false;
        try {
          const ports = await cluster!.ports();
          allocator.replace([...ports].map(([port, p]) => ({ port, clientId: p.clientId, name: p.name, lastActive: p.lastActive })));
          for (const port of ports.keys()) {
            await listener.listen(port).catch((error: NodeJS.ErrnoException) => logger.log('warn', 'port.unusable', { port, code: error.code }));
          }
        } catch {
          // The store is away: the next change or full read tries again.
        }
      } while (portsAgain);
      syncingPorts = undefined;
    })();
  }

  function sweep(): void {
    const t = now();
    identities.sweep(t);
    for (const tunnel of [...byId.values()]) {
      tunnel.sweep(t);
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
      if (cluster) {
        await cluster.start({
          held: () => [...owned.values()],
          portsChanged(change) {
            if (!change) return syncPorts();
            // Our own claim's echo: set already (clusterAssign), listened on by the registration.
            if (owned.get(change.clientId)?.port === change.port) return;
            if (!allocator.put({ ...change, lastActive: now() })) return;
            listener.listen(change.port).catch((error: NodeJS.ErrnoException) => logger.log('warn', 'port.unusable', { port: change.port, code: error.code }));
          },
          lost(owner) {
            const tunnel = byClient.get(owner.clientId);
            if (!tunnel) return;
            // Requests that waited here (never handed to the client) follow the tunnel there.
            const there = cluster!.elsewhere(owner);
            if (there) {
              const sent = sendQueuedOn(tunnel, there, cluster!.hop, (route) => routes.byName(route)?.config.port);
              if (sent > 0) logger.log('info', 'tunnel.requests_moved', { tunnel: tunnel.name, port: tunnel.port, requests: sent });
            }
            // A newer registration on another replica: the same process moved (its polls come
            // there now), or another process of the identity took it over for good.
            const error = owner.instance !== undefined && tunnel.instance !== undefined && owner.instance !== tunnel.instance
              ? identities.replacedBy(tunnel.localPort)
              : new HttpError('unknown_tunnel', 'This tunnel is held by another tunnel server replica now; register again.');
            end(tunnel, 'replaced_elsewhere', error);
          },
        });
        await syncingPorts;
      }
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
          const there = !local && cluster ? cluster.view.byPort(a.port) : undefined;
          return there && there.clientId === a.clientId ? { ...shown, id: there.tunnelId, name: there.name, route: there.route, state: 'connected' as const } : shown;
        })
        .sort((x, y) => x.port - y.port);
    },

    routes: () => routes.all.map(routeSnapshot),
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
