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
  /** A claim's session went offline or came back (ignored unless `gen` is the current claim's). */
  offline(clientId: string, gen: number, offline: boolean): void;
  byPort(port: number): OwnerRecord | undefined;
  byTunnelId(id: string): OwnerRecord | undefined;
  byRouteName(route: string, name: string): OwnerRecord | undefined;
  byClient(clientId: string): OwnerRecord | undefined;
  /** A live replica's control URL. */
  urlOf(replica: string): string | undefined;
  /**
   * A hop to `url` could not connect: its replica counts as dead until a heartbeat read shows it
   * alive again, so its clients are told at once to register elsewhere (not after the lease).
   */
  markDown(url: string): void;
  /** Whether `owner`'s replica counts as alive (seen alive, or its claim is fresh). */
  isLive(owner: OwnerRecord): boolean;
  liveReplicas(): string[];
  owners(): OwnerRecord[];
}

/** A claim from a replica not yet seen alive (it just started) counts as alive this long. */
const FRESH_CLAIM_MS = 10_000;

export function createClusterView(now: () => number = Date.now): ClusterView {
  const byClient = new Map<string, OwnerRecord>();
  const byPort = new Map<number, OwnerRecord>();
  const byId = new Map<string, OwnerRecord>();
  const byRoute = new Map<string, OwnerRecord>();
  let replicas = new Map<string, string>();
  /** Replicas a hop could not reach, by id, and when: dead until a heartbeat read after that. */
  const down = new Map<string, number>();
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
  const live = (o: OwnerRecord | undefined) => (o && !down.has(o.replica) && (replicas.has(o.replica) || now() - o.claimedAt < FRESH_CLAIM_MS) ? o : undefined);

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
      // A dead replica's heartbeat outlives it by up to a lease: a mark holds that long, then a
      // replica still beating (the connection error was brief) is alive again.
      for (const [id, at] of down) if (now() - at >= FRESH_CLAIM_MS) down.delete(id);
      for (const id of down.keys()) replicas.delete(id);
    },
    markDown(url) {
      for (const [id, u] of replicas) if (u === url) down.set(id, now());
      for (const o of byClient.values()) if (o.url === url) down.set(o.replica, now());
      for (const id of down.keys()) replicas.delete(id);
    },
    claimed(o) {
      const old = byClient.get(o.clientId);
      if (old && old.gen > o.gen) return false;
      add(o);
      return true;
    },
    offline(clientId, gen, offline) {
      const o = byClient.get(clientId);
      if (o && o.gen === gen) o.offline = offline;
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
    isLive: (o) => live(o) !== undefined,
    owners: () => [...byClient.values()],
  };
}
