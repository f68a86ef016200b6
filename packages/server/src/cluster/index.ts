import { randomBytes } from 'node:crypto';
import { HttpError } from '../errors';
import type { ServerLogger } from '../logger';
import type { ResolvedServerOptions } from '../options';
import { createHop, type Hop } from './hop';
import { createRedisStore, type ClusterStore, type OwnerRecord, type PortChange, type PortRecord } from './store';
import { createClusterView, type ClusterView } from './view';

export type { HopArrival } from './hop';
export type { OwnerRecord, PortChange } from './store';

/**
 * One replica's part in a cluster of tunnel servers sharing a store (`--store`): its heartbeat,
 * its view of the others, the events it publishes and follows, the internal hop. The registry
 * asks it for ports and claims; the request paths ask it where a tunnel lives.
 */
export interface Cluster {
  readonly replica: string;
  readonly view: ClusterView;
  readonly hop: Hop;
  readonly storeUp: boolean;
  /** A port for `clientId` (the allocator's rules, in one atomic script). */
  /** `skip`: ports this replica cannot listen on now; the store never offers them. */
  assignPort(clientId: string, name: string, preferred: number | undefined, skip?: number[]): Promise<{ port: number; evicted: string | undefined }>;
  releasePort(clientId: string): Promise<void>;
  /** Takes a tunnel over for this replica; published to the others. */
  claim(owner: Omit<OwnerRecord, 'gen' | 'replica' | 'url' | 'claimedAt'>): Promise<OwnerRecord>;
  /** Who holds a tunnel by id: the view, else the store (a claim whose event has not arrived). */
  findTunnel(tunnelId: string): Promise<OwnerRecord | undefined>;
  /** Gives a tunnel up (closed, expired), best effort: never rejects. */
  release(owner: OwnerRecord): Promise<void>;
  /** This replica's session of a claim went offline or came back: recorded and told to the others. */
  setOffline(owner: OwnerRecord, offline: boolean): Promise<void>;
  /** The live replica's URL holding `owner`, unless it is this one. */
  elsewhere(owner: OwnerRecord | undefined): string | undefined;
  ports(): Promise<Map<number, PortRecord>>;
  start(hooks: ClusterHooks): Promise<void>;
  close(): Promise<void>;
}

export interface ClusterHooks {
  /** Another replica claimed a tunnel this one holds (a newer registration): end it here. */
  lost(owner: OwnerRecord): void;
  /**
   * Reservations changed: one (`change`, listen on its port), or perhaps many (reread them all
   * and listen on every reserved port).
   */
  portsChanged(change?: PortChange): void;
  /** What this replica holds now, to write back after Redis came back. */
  held(): OwnerRecord[];
}

/** A replica is dead when its heartbeat is this old. */
const LEASE_MS = 10_000;
/** Heartbeat, and the read of who is alive. */
const BEAT_MS = 3_000;
/** A full read of the shared state, beside the events (a lost event heals within this). */
const SYNC_MS = 30_000;

/** A reservation from an event, when it is one (another version's event may carry anything). */
function validChange(change: unknown): PortChange | undefined {
  const c = change as Partial<PortChange> | undefined;
  return c && Number.isInteger(c.port) && typeof c.clientId === 'string' && typeof c.name === 'string' ? { port: c.port!, clientId: c.clientId, name: c.name } : undefined;
}

export function storeUnavailable(): HttpError {
  return new HttpError('store_unavailable', 'The tunnel servers\' shared store (Redis) cannot be reached; running tunnels keep working. Registering again is retried by the client.', { retryAfter: 5 });
}

export function createCluster(options: ResolvedServerOptions, logger: ServerLogger, store: ClusterStore = createRedisStore(options.store!, options.storePassword, logger, options.now)): Cluster {
  const replica = randomBytes(8).toString('hex');
  const view = createClusterView(options.now);
  /** Claims of this replica waiting for their own event to come back (see claim). */
  const echoes = new Map<number, () => void>();
  const hop = createHop(options.token, {
    now: options.now,
    idleMs: Math.max(options.bodyIdleTimeoutMs, options.pollTimeoutMs + 5_000) * 2,
    unreachable(target) {
      logger.log('warn', 'cluster.replica_unreachable', { url: target });
      view.markDown(target);
    },
  });
  let hooks: ClusterHooks | undefined;
  let beat: NodeJS.Timeout | undefined;
  let sync: NodeJS.Timeout | undefined;
  let closed = false;

  /** Runs a store command, turning an unreachable store into the coded 503. */
  async function stored<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof HttpError) throw error;
      logger.log('warn', 'store.failed', { error: (error as Error).message });
      throw storeUnavailable();
    }
  }

  async function heartbeat(): Promise<void> {
    try {
      await store.heartbeat(replica, options.advertiseUrl!, LEASE_MS);
      view.setReplicas(await store.replicas());
    } catch {
      // Redis away: keep the last view; the store logs the outage once.
    }
  }

  async function fullSync(): Promise<void> {
    try {
      const [owners, replicas] = await Promise.all([store.owners(), store.replicas()]);
      view.reset(owners, replicas);
      hooks?.portsChanged();
      // Ours that another replica claimed while we did not hear it: end them here.
      for (const held of hooks?.held() ?? []) {
        const current = view.byClient(held.clientId);
        if (current && current.gen > held.gen && current.replica !== replica) hooks?.lost(current);
      }
    } catch {
      // Next round.
    }
  }

  /** Redis is back (perhaps empty): write back what this replica holds, then read everything. */
  async function restore(): Promise<void> {
    for (const held of hooks?.held() ?? []) {
      try {
        const current = (await store.owners()).find((o) => o.clientId === held.clientId);
        if (current && current.gen > held.gen) continue;
        await store.assignPort({ clientId: held.clientId, name: held.name, preferred: held.port, from: options.portRange.from, to: options.portRange.to, live: [replica] });
        const again = await store.claim({ ...held });
        await store.publish({ type: 'claimed', owner: again });
        Object.assign(held, { gen: again.gen });
      } catch {
        return;
      }
    }
    await heartbeat();
    await fullSync();
  }

  return {
    replica,
    view,
    hop,
    get storeUp() {
      return store.up;
    },
    assignPort(clientId, name, preferred, skip) {
      return stored(() => store.assignPort({ clientId, name, preferred, from: options.portRange.from, to: options.portRange.to, live: [...new Set([...view.liveReplicas(), replica])], skip }));
    },
    releasePort(clientId) {
      return stored(() => store.releasePort(clientId));
    },
    async claim(owner) {
      const record = await stored(() => store.claim({ ...owner, replica, url: options.advertiseUrl!, claimedAt: options.now() }));
      view.claimed(record);
      // Answer the registration once the event came back to this replica: Redis has then sent it
      // to every replica, so the client's next call finds its tunnel wherever it lands (bounded).
      const echoed = new Promise<void>((resolve) => {
        echoes.set(record.gen, resolve);
        setTimeout(resolve, 500).unref();
      });
      await store.publish({ type: 'claimed', owner: record }).catch(() => {});
      // The reservation rides in the event: each replica sets one entry and listens on one port,
      // rather than rereading every reservation (a mass re-registration after a replica died
      // made that O(n) per registration on every replica).
      await store.publish({ type: 'ports', change: { port: record.port, clientId: record.clientId, name: record.name } }).catch(() => {});
      await echoed;
      echoes.delete(record.gen);
      // Another replica's newer claim may have come while this one was on its way: its event
      // found nothing held here to end. Lost at once, then, after the caller set its session up.
      const current = view.byClient(record.clientId);
      if (current && current.gen > record.gen && current.replica !== replica) setImmediate(() => hooks?.lost(current));
      return record;
    },
    async findTunnel(tunnelId) {
      const known = view.byTunnelId(tunnelId);
      if (known) return known;
      try {
        const found = await store.ownerOfTunnel(tunnelId);
        if (found) view.claimed(found);
        return found;
      } catch {
        return undefined;
      }
    },
    setOffline(owner, offline) {
      owner.offline = offline;
      view.offline(owner.clientId, owner.gen, offline);
      return store
        .setOffline(owner.clientId, owner.gen, offline)
        .then(() => store.publish({ type: 'offline', clientId: owner.clientId, gen: owner.gen, offline }))
        .catch(() => {});
    },
    release(owner) {
      view.released(owner.clientId, owner.gen);
      return store
        .release(owner.clientId, owner.gen)
        .then(() => store.publish({ type: 'released', clientId: owner.clientId, gen: owner.gen }))
        .catch(() => {});
    },
    elsewhere(owner) {
      if (!owner || owner.replica === replica || !view.isLive(owner)) return undefined;
      return view.urlOf(owner.replica) ?? owner.url;
    },
    ports: () => stored(() => store.ports()),
    async start(h) {
      hooks = h;
      await store.subscribe(
        (event) => {
          if (event.type === 'claimed') {
            echoes.get(event.owner.gen)?.();
            const mine = hooks?.held().find((o) => o.clientId === event.owner.clientId);
            if (view.claimed(event.owner) && mine && event.owner.replica !== replica && event.owner.gen > mine.gen) hooks?.lost(event.owner);
          } else if (event.type === 'released') view.released(event.clientId, event.gen);
          else if (event.type === 'offline') view.offline(event.clientId, event.gen, event.offline === true);
          else if (event.type === 'ports') hooks?.portsChanged(validChange(event.change));
        },
        () => void restore(),
      );
      await heartbeat();
      await fullSync();
      beat = setInterval(() => void heartbeat(), BEAT_MS);
      beat.unref();
      sync = setInterval(() => void fullSync(), SYNC_MS);
      sync.unref();
      logger.log('info', 'cluster.joined', { replica, advertiseUrl: options.advertiseUrl, replicas: view.liveReplicas().length, store: store.up ? 'up' : 'down' });
    },
    async close() {
      if (closed) return;
      closed = true;
      if (beat) clearInterval(beat);
      if (sync) clearInterval(sync);
      await hop.close();
      await store.close();
    },
  };
}
