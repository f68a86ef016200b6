import { HttpError } from '../errors';
import type { ServerLogger } from '../logger';
import type { ResolvedServerOptions } from '../options';
import type { PortAllocator } from '../ports';
import type { TunnelSession } from '../session';
import type { TunnelListener } from '../tunnel-port/listener';
import type { Cluster, OwnerRecord } from '../cluster';
import { sendQueuedOn } from './handover';
import type { IdentityGate } from './identities';
import type { TunnelSnapshot } from './snapshot';

/**
 * The registry's side of several replicas (`--store`): ports come from the store and are mirrored
 * in the local allocator, every replica listens on every reserved port, and a tunnel that another
 * replica claims leaves this one, its waiting requests following it there (docs/protocol.md).
 */
export interface ReplicaSide {
  /** This replica's claim on each tunnel it holds, by identity. */
  readonly owned: Map<string, OwnerRecord>;
  /** A port from the store (one atomic script for every replica), mirrored here. */
  assign(clientId: string, name: string, preferred: number | undefined): Promise<{ port: number; evicted: string | undefined }>;
  /** Joins the cluster; resolves once the reserved ports are listened on. */
  start(): Promise<void>;
  /** An assignment without a local session, shown as the replica holding it has it. */
  shownElsewhere(shown: TunnelSnapshot, clientId: string): TunnelSnapshot;
  /** A session here went offline or came back: the other replicas are told (they list it). */
  sweep(tunnel: TunnelSession): void;
}

export interface ReplicaSideDeps {
  cluster: Cluster;
  options: ResolvedServerOptions;
  logger: ServerLogger;
  allocator: PortAllocator;
  listener: TunnelListener;
  identities: IdentityGate;
  /** This replica's live session of an identity. */
  tunnelOf(clientId: string): TunnelSession | undefined;
  /** The port of a route, for requests that move with their tunnel. */
  routePort(route: string): number | undefined;
  /** Ends a session here (the registry's `end`). */
  end(tunnel: TunnelSession, reason: string, error: HttpError): void;
}

export function createReplicaSide(deps: ReplicaSideDeps): ReplicaSide {
  const { cluster, options, logger, allocator, listener } = deps;
  const owned = new Map<string, OwnerRecord>();
  const listenOrWarn = (port: number) => listener.listen(port).catch((error: NodeJS.ErrnoException) => logger.log('warn', 'port.unusable', { port, code: error.code }));

  let syncing: Promise<void> | undefined;
  let again = false;
  /** Rereads every reservation (a bare `ports` event, or the periodic full read). One at a time. */
  function syncPorts(): void {
    if (syncing) {
      again = true;
      return;
    }
    syncing = (async () => {
      do {
        again = false;
        try {
          const ports = await cluster.ports();
          allocator.replace([...ports].map(([port, p]) => ({ port, clientId: p.clientId, name: p.name, lastActive: p.lastActive })));
          for (const port of ports.keys()) await listenOrWarn(port);
        } catch {
          // The store is away: the next change or full read tries again.
        }
      } while (again);
      syncing = undefined;
    })();
  }

  /** Another replica claimed a tunnel held here: it leaves, its waiting requests follow it. */
  function lost(owner: OwnerRecord): void {
    const tunnel = deps.tunnelOf(owner.clientId);
    if (!tunnel) return;
    const there = cluster.elsewhere(owner);
    if (there) {
      const sent = sendQueuedOn(tunnel, there, cluster.hop, deps.routePort);
      if (sent > 0) logger.log('info', 'tunnel.requests_moved', { tunnel: tunnel.name, port: tunnel.port, requests: sent });
    }
    // A newer registration on another replica: the same process moved (its polls come there
    // now), or another process of the identity took it over for good.
    const error = owner.instance !== undefined && tunnel.instance !== undefined && owner.instance !== tunnel.instance
      ? deps.identities.replacedBy(tunnel.localPort)
      : new HttpError('unknown_tunnel', 'This tunnel is held by another tunnel server replica now; register again.');
    deps.end(tunnel, 'replaced_elsewhere', error);
  }

  return {
    owned,

    async assign(clientId, name, preferred) {
      // Ports another program holds here stay out, or each attempt would draw the same one again.
      const result = await cluster.assignPort(clientId, name, preferred, allocator.unusable());
      if (result.port === 0) {
        throw new HttpError('port_range_full', `Every tunnel port (${options.portRange.from}-${options.portRange.to}) is held by an active tunnel. Try again later, or ask the operator to widen --tunnel-ports.`, { retryAfter: 30 });
      }
      // One entry set (the port's old holder, the evicted identity, and this one's old port go):
      // copying every reservation per registration made 5,000 registrations O(n²).
      allocator.put({ clientId, name, port: result.port, lastActive: options.now() });
      return result;
    },

    async start() {
      await cluster.start({
        held: () => [...owned.values()],
        portsChanged(change) {
          if (!change) return syncPorts();
          // Our own claim's echo: set already (assign), listened on by the registration.
          if (owned.get(change.clientId)?.port === change.port) return;
          if (!allocator.put({ ...change, lastActive: options.now() })) return;
          void listenOrWarn(change.port);
        },
        lost,
      });
      await syncing;
    },

    shownElsewhere(shown, clientId) {
      const there = cluster.view.byPort(shown.port);
      return there && there.clientId === clientId ? { ...shown, id: there.tunnelId, name: there.name, route: there.route, state: there.offline ? ('offline' as const) : ('connected' as const) } : shown;
    },

    sweep(tunnel) {
      const claim = owned.get(tunnel.clientId);
      if (!claim || claim.tunnelId !== tunnel.id) return;
      const offline = tunnel.state() === 'offline';
      if ((claim.offline ?? false) !== offline) void cluster.setOffline(claim, offline);
    },
  };
}
