import { Redis } from 'ioredis';
import type { ServerLogger } from '../logger';

/**
 * The shared state of several replicas, in Redis (or Valkey: the same protocol). No consensus of
 * our own: each decision is one Lua script, which Redis runs atomically.
 *
 *   dt:ports     hash  port → {clientId, name, lastActive}    port reservations
 *   dt:clients   hash  clientId → port
 *   dt:owners    hash  clientId → OwnerRecord                 who holds each live tunnel
 *   dt:tunnel-owner hash tunnel id → clientId                 a tunnel's calls find their replica
 *   dt:gen       counter                                      orders claims: the highest wins
 *   dt:replicas  hash  replica id → control URL               every replica ever seen (bounded: pruned)
 *   dt:alive:<id> string with a 10 s lease                    a replica's heartbeat
 *   dt:events    channel (dt:events:<db> beyond DB 0)         claims, releases, reservations, offline
 *
 * Ownership rides on the replica's heartbeat, not on a lease per tunnel: an idle tunnel costs
 * Redis nothing per minute, and a dead replica's tunnels all lapse with its one key.
 */

export interface OwnerRecord {
  replica: string;
  /** The replica's control URL (its `advertiseUrl`): where the hop goes. */
  url: string;
  /** When the claim was made (ms): a replica not seen alive yet counts as alive this long after. */
  claimedAt: number;
  /** Claim order: a claim with a higher gen supersedes. */
  gen: number;
  tunnelId: string;
  clientId: string;
  instance: string | undefined;
  port: number;
  name: string;
  route: string | undefined;
  /** The holder's session is offline (its client stopped calling): other replicas list it so. */
  offline?: boolean;
}

export interface PortRecord {
  clientId: string;
  name: string;
  lastActive: number;
}

/** One reservation made, carried in its event so that no replica rereads them all. */
export interface PortChange {
  port: number;
  clientId: string;
  name: string;
}

export type StoreEvent =
  | { type: 'claimed'; owner: OwnerRecord }
  | { type: 'released'; clientId: string; gen: number }
  | { type: 'offline'; clientId: string; gen: number; offline: boolean }
  /** Without `change` (older replicas send none): reread every reservation. */
  | { type: 'ports'; change?: PortChange };

export interface ClusterStore {
  /** Whether the last command reached Redis. */
  readonly up: boolean;
  /** `skip`: ports the asking replica cannot listen on (another program holds them there). */
  assignPort(a: { clientId: string; name: string; preferred: number | undefined; from: number; to: number; live: string[]; skip?: number[] }): Promise<{ port: number; evicted: string | undefined }>;
  /** Takes a tunnel over: returns the record with its gen (always wins: the newest claim). */
  claim(owner: Omit<OwnerRecord, 'gen'>): Promise<OwnerRecord>;
  /** Gives a tunnel up, if this claim is still the current one. */
  release(clientId: string, gen: number): Promise<void>;
  /** Marks a claim's session offline or back (if the claim is still the current one). */
  setOffline(clientId: string, gen: number, offline: boolean): Promise<void>;
  /** Who holds the tunnel with this id, read from the store (a replica that missed the event). */
  ownerOfTunnel(tunnelId: string): Promise<OwnerRecord | undefined>;
  /** Gives a port back (it could not be listened on). */
  releasePort(clientId: string): Promise<void>;
  heartbeat(replica: string, url: string, leaseMs: number): Promise<void>;
  /** Live replicas (heartbeat present) with their URLs. */
  replicas(): Promise<Map<string, string>>;
  owners(): Promise<OwnerRecord[]>;
  ports(): Promise<Map<number, PortRecord>>;
  publish(event: StoreEvent): Promise<void>;
  /** Calls `onEvent` for every event, and `onReconnect` after Redis came back. */
  subscribe(onEvent: (event: StoreEvent) => void, onReconnect: () => void): Promise<void>;
  close(): Promise<void>;
}

const ASSIGN = `
local ports, clients, owners = KEYS[1], KEYS[2], KEYS[3]
local clientId, name = ARGV[1], ARGV[2]
local preferred, from, to, now = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local live = {}
for id in string.gmatch(ARGV[7], '[^,]+') do live[id] = true end
local skip = {}
for p in string.gmatch(ARGV[8] or '', '[^,]+') do skip[tonumber(p)] = true end
local function take(port, evicted)
  local prev = redis.call('HGET', clients, clientId)
  if prev and tonumber(prev) ~= port then redis.call('HDEL', ports, prev) end
  redis.call('HSET', ports, tostring(port), cjson.encode({clientId = clientId, name = name, lastActive = now}))
  redis.call('HSET', clients, clientId, tostring(port))
  if evicted then
    redis.call('HDEL', clients, evicted)
    redis.call('HDEL', owners, evicted)
  end
  return {port, evicted or ''}
end
local function holder(port)
  local v = redis.call('HGET', ports, tostring(port))
  if v then return cjson.decode(v).clientId end
end
if preferred and preferred >= from and preferred <= to and not skip[preferred] then
  local h = holder(preferred)
  if not h or h == clientId then return take(preferred) end
end
local own = tonumber(redis.call('HGET', clients, clientId) or '')
if own and own >= from and own <= to and not skip[own] then return take(own) end
local used = {}
for _, k in ipairs(redis.call('HKEYS', ports)) do used[tonumber(k)] = true end
for p = from, to do
  if not used[p] and not skip[p] then return take(p) end
end
local best, bestAt, bestClient
local all = redis.call('HGETALL', ports)
for i = 1, #all, 2 do
  local p, e = tonumber(all[i]), cjson.decode(all[i + 1])
  local active = false
  local o = redis.call('HGET', owners, e.clientId)
  if o and live[cjson.decode(o).replica] then active = true end
  if e.clientId ~= clientId and not active and not skip[p] and p >= from and p <= to and (not best or e.lastActive < bestAt) then
    best, bestAt, bestClient = p, e.lastActive, e.clientId
  end
end
if not best then return {0, ''} end
return take(best, bestClient)
`;

const CLAIM = `
local gen = redis.call('INCR', KEYS[2])
local record = cjson.decode(ARGV[2])
record.gen = gen
local encoded = cjson.encode(record)
local previous = redis.call('HGET', KEYS[1], ARGV[1])
if previous then redis.call('HDEL', KEYS[3], cjson.decode(previous).tunnelId) end
redis.call('HSET', KEYS[1], ARGV[1], encoded)
redis.call('HSET', KEYS[3], record.tunnelId, ARGV[1])
return encoded
`;

const RELEASE = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and tonumber(cjson.decode(cur).gen) == tonumber(ARGV[2]) then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[4], cjson.decode(cur).tunnelId)
  local port = redis.call('HGET', KEYS[2], ARGV[1])
  if port then
    local e = redis.call('HGET', KEYS[3], port)
    if e then
      local d = cjson.decode(e)
      d.lastActive = tonumber(ARGV[3])
      redis.call('HSET', KEYS[3], port, cjson.encode(d))
    end
  end
  return 1
end
return 0
`;

const SET_OFFLINE = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
local d = cjson.decode(cur)
if tonumber(d.gen) ~= tonumber(ARGV[2]) then return 0 end
d.offline = ARGV[3] == '1'
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(d))
return 1
`;

/**
 * The event channel of a store in database `db`. Redis's channels are one namespace for all its
 * databases: installations sharing a server on different DB numbers must not hear each other's
 * events. Database 0 keeps the plain name (what replicas before this change use).
 */
export function channelOf(db: number): string {
  return db === 0 ? 'dt:events' : `dt:events:${db}`;
}

function parseOwner(text: string): OwnerRecord | undefined {
  try {
    const o = JSON.parse(text) as OwnerRecord;
    return typeof o.replica === 'string' && typeof o.clientId === 'string' && Number.isInteger(o.port) ? o : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A store on `url` (`redis://` or `rediss://`, password in the URL or `password`). Commands fail
 * at once while Redis is away (no offline queue): a registration is refused with a coded 503
 * rather than left waiting; the client reconnects by itself, and `onReconnect` lets the replica
 * write back what it holds.
 */
export function createRedisStore(url: string, password: string | undefined, logger: ServerLogger, now: () => number = Date.now): ClusterStore {
  const common = {
    ...(password ? { password } : {}),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 3_000,
    // Reconnect forever, at most every 2 s: Redis coming back must be noticed by itself.
    retryStrategy: (times: number) => Math.min(2_000, 100 * times),
    lazyConnect: true,
  };
  const redis = new Redis(url, common);
  const sub = new Redis(url, common);
  const channel = channelOf(redis.options.db ?? 0);
  let up = false;
  let wasDown = false;
  let onReconnect: (() => void) | undefined;
  const onError = (error: Error) => {
    if (up || !wasDown) logger.log('warn', 'store.error', { error: error.message });
    up = false;
    wasDown = true;
  };
  redis.on('error', onError);
  sub.on('error', () => {});
  redis.on('close', () => {
    if (up) logger.log('warn', 'store.down', {});
    up = false;
    wasDown = true;
  });
  redis.on('ready', () => {
    up = true;
    logger.log('info', 'store.up', {});
    if (wasDown) onReconnect?.();
  });

  async function run<T>(fn: () => Promise<T>): Promise<T> {
    if (redis.status === 'wait') await redis.connect().catch(() => {});
    return fn();
  }

  return {
    get up() {
      return up && redis.status === 'ready';
    },
    async assignPort(a) {
      const [port, evicted] = (await run(() => redis.eval(ASSIGN, 3, 'dt:ports', 'dt:clients', 'dt:owners', a.clientId, a.name, String(a.preferred ?? ''), String(a.from), String(a.to), String(now()), a.live.join(','), (a.skip ?? []).join(',')))) as [number, string];
      return { port: Number(port), evicted: evicted || undefined };
    },
    async claim(owner) {
      const text = (await run(() => redis.eval(CLAIM, 3, 'dt:owners', 'dt:gen', 'dt:tunnel-owner', owner.clientId, JSON.stringify(owner)))) as string;
      return parseOwner(text)!;
    },
    async release(clientId, gen) {
      await run(() => redis.eval(RELEASE, 4, 'dt:owners', 'dt:clients', 'dt:ports', 'dt:tunnel-owner', clientId, String(gen), String(now())));
    },
    async setOffline(clientId, gen, offline) {
      await run(() => redis.eval(SET_OFFLINE, 1, 'dt:owners', clientId, String(gen), offline ? '1' : '0'));
    },
    async ownerOfTunnel(tunnelId) {
      return run(async () => {
        const clientId = await redis.hget('dt:tunnel-owner', tunnelId);
        const text = clientId ? await redis.hget('dt:owners', clientId) : null;
        return text ? parseOwner(text) : undefined;
      });
    },
    async releasePort(clientId) {
      await run(async () => {
        const port = await redis.hget('dt:clients', clientId);
        if (port) await redis.multi().hdel('dt:ports', port).hdel('dt:clients', clientId).exec();
      });
    },
    async heartbeat(replica, controlUrl, leaseMs) {
      await run(() => redis.multi().set(`dt:alive:${replica}`, controlUrl, 'PX', leaseMs).hset('dt:replicas', replica, controlUrl).exec());
    },
    async replicas() {
      return run(async () => {
        const all = await redis.hgetall('dt:replicas');
        const ids = Object.keys(all);
        const live = new Map<string, string>();
        if (ids.length === 0) return live;
        const alive = await redis.mget(...ids.map((id) => `dt:alive:${id}`));
        const gone: string[] = [];
        ids.forEach((id, i) => (alive[i] ? live.set(id, all[id]!) : gone.push(id)));
        // Replicas that died and will never come back (a pod's id is new each start): forget them.
        if (gone.length > 64) await redis.hdel('dt:replicas', ...gone.slice(0, gone.length - 64));
        return live;
      });
    },
    async owners() {
      const all = await run(() => redis.hgetall('dt:owners'));
      return Object.values(all).map(parseOwner).filter((o): o is OwnerRecord => o !== undefined);
    },
    async ports() {
      const all = await run(() => redis.hgetall('dt:ports'));
      const out = new Map<number, PortRecord>();
      for (const [port, text] of Object.entries(all)) {
        try {
          out.set(Number(port), JSON.parse(text) as PortRecord);
        } catch {
          // A malformed entry is skipped, never fatal.
        }
      }
      return out;
    },
    async publish(event) {
      await run(() => redis.publish(channel, JSON.stringify(event)));
    },
    async subscribe(onEvent, reconnected) {
      onReconnect = reconnected;
      sub.on('message', (_channel: string, text: string) => {
        try {
          onEvent(JSON.parse(text) as StoreEvent);
        } catch {
          // Not ours: ignored.
        }
      });
      // On every (re)connection: a first connection that failed leaves nothing for ioredis to
      // subscribe again by itself.
      sub.on('ready', () => void sub.subscribe(channel).catch(() => {}));
      await redis.connect().catch(() => {});
      await sub.connect().catch(() => {});
    },
    async close() {
      redis.disconnect();
      sub.disconnect();
    },
  };
}
