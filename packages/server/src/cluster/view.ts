import type { OwnerRecord } from './store';

/**
 * What one replica knows of the others: who holds each live tunnel (by identity, tunnel port,
 * tunnel id and route name) and which replicas are alive, with their control URLs. Fed by the
 * store's events and a periodic full read; read per request, so lookups are map hits.
 */
export interface ClusterView {
  /** Replaces everything (a full read). */
  reset(owners: OwnerRecord[], replicas: Map<string, string>): void;
  setReplicas(replicas: Map<string, string>): void;
  /** A claim: kept when its gen is the highest seen for its identity. Returns whether it was. */
  claimed(owner: OwnerRecord): boolean;
  released(clientId: string, gen: number): void;
  byPort(port: number): OwnerRecord | undefined;
  byTunnelId(id: string): OwnerRecord | undefined;
  byRouteName(route: string, name: string): OwnerRecord | undefined;
  byClient(clientId: string): OwnerRecord | undefined;
  /** A live replica's control URL. */
  urlOf(replica: string): string | undefined;
  liveReplicas(): string[];
  owners(): OwnerRecord[];
}

export function createClusterView(): ClusterView {
  const byClient = new Map<string, OwnerRecord>();
  const byPort = new Map<number, OwnerRecord>();
  const byId = new Map<string, OwnerRecord>();
  const byRoute = new Map<string, OwnerRecord>();
  let replicas = new Map<string, string>();
  const routeKey = (route: string, name: string) => `${route}\0${name}`;

  function drop(o: OwnerRecord): void {
    byClient.delete(o.clientId);
    if (byPort.get(o.port) === o) byPort.delete(o.port);
    if (byId.get(o.tunnelId) === o) byId.delete(o.tunnelId);
    if (o.route !== undefined && byRoute.get(routeKey(o.route, o.name)) === o) byRoute.delete(routeKey(o.route, o.name));
  }

  function add(o: OwnerRecord): void {
    const old = byClient.get(o.clientId);
    if (old) drop(old);
    byClient.set(o.clientId, o);
    byPort.set(o.port, o);
    byId.set(o.tunnelId, o);
    if (o.route !== undefined) byRoute.set(routeKey(o.route, o.name), o);
  }

  /** Only tunnels of live replicas count: a dead replica's records lapse with its heartbeat. */
  const live = (o: OwnerRecord | undefined) => (o && replicas.has(o.replica) ? o : undefined);

  return {
    reset(owners, live) {
      byClient.clear();
      byPort.clear();
      byId.clear();
      byRoute.clear();
      replicas = live;
      for (const o of owners) add(o);
    },
    setReplicas(live) {
      replicas = live;
    },
    claimed(o) {
      const old = byClient.get(o.clientId);
      if (old && old.gen > o.gen) return false;
      add(o);
      return true;
    },
    released(clientId, gen) {
      const old = byClient.get(clientId);
      if (old && old.gen === gen) drop(old);
    },
    byPort: (port) => live(byPort.get(port)),
    byTunnelId: (id) => live(byId.get(id)),
    byRouteName: (route, name) => live(byRoute.get(routeKey(route, name))),
    byClient: (clientId) => byClient.get(clientId),
    urlOf: (replica) => replicas.get(replica),
    liveReplicas: () => [...replicas.keys()],
    owners: () => [...byClient.values()],
  };
}
