import { createHash } from 'node:crypto';
import { etagMatches, headerValue, joinedValue, pushIdentity, type HeaderPairs, type PushInfo, type ResponseHead } from '@devtunnel/core/protocol';
import type { Clock, Timer } from './clock';

/**
 * One tunnel's pushes (feature `push`, docs/speculation.md): answers its client sent before the
 * browser asked, kept a few seconds and used once by the browser request they match (URL, the
 * browser's identity, the request's variant, the values the answer varies on). Also the promises:
 * URLs whose pushes are on their way, for which a browser request waits instead of going to the
 * laptop. Bounded in entries and bytes per tunnel and, through a shared budget, per server. Free of
 * sockets: time comes from the clock.
 */

/** Bounds and lifetimes of every tunnel's cache (server options). */
export interface PushLimits {
  /** How long an unused push is kept. */
  lifetimeMs: number;
  /** How long a browser request waits for a promised push before it goes to the client. */
  waitMs: number;
  /** Pushes and promises kept per tunnel, at most. */
  maxEntries: number;
  /** Push body bytes kept per tunnel, at most. */
  maxBytes: number;
}

/** Body bytes kept by every tunnel's cache together, and their bound (one per server). */
export interface PushBudget {
  bytes: number;
  readonly maxBytes: number;
}

export type PushDropReason = 'expired' | 'evicted' | 'invalidated' | 'stale' | 'refused';

/** What happens to pushes, for the metrics. */
export interface PushEvents {
  received(bytes: number): void;
  used(bytes: number, notModified: boolean): void;
  /** A push dropped unused; `bytes` its body, wasted on the laptop's uplink. */
  dropped(reason: PushDropReason, bytes: number): void;
}

interface Entry {
  readonly push: PushInfo;
  readonly status: number;
  readonly headers: HeaderPairs;
  readonly body: Uint8Array | undefined;
  /** The coding the client applied for the leg (`ResponseHead.coding`), if any. */
  readonly coding: ResponseHead['coding'];
  readonly etag: string | undefined;
  readonly expiresAt: number;
}

/** A browser request as the cache matches it. */
export interface PushLookup {
  method: string;
  url: string;
  /** The browser's request headers (end-to-end, as the client would see them). */
  headers: HeaderPairs;
  /** {@link identityHash} of `headers`, computed once per request. */
  identity: string;
  variant: string;
}

/** A push that answers a request: its head and body, or 304 (`notModified`) for a conditional one. */
export interface PushHit {
  status: number;
  headers: HeaderPairs;
  body: Uint8Array | undefined;
  /** The coding the client applied for the leg: the browser gets the body decoded unless it accepts it. */
  coding: ResponseHead['coding'];
  notModified: boolean;
}

export interface PushCache {
  /** URLs whose pushes for `identity` follow (a head's `promise`). */
  promise(identity: string, urls: readonly string[]): void;
  /** A push head with its body (a push, a `none` or a `drop`). */
  put(head: ResponseHead & { push: PushInfo }, body: Uint8Array): void;
  /**
   * The push that answers `lookup` (taken: each is used once), `'wait'` when one is promised and
   * not here yet, else undefined (the request goes to the client).
   */
  match(lookup: PushLookup): PushHit | 'wait' | undefined;
  /** Calls `ready` once the promise of `lookup` is settled (a push came, none will, or waitMs passed). */
  wait(lookup: PushLookup, ready: () => void): void;
  /** Drops what outlived its lifetime. */
  sweep(now: number): void;
  /** Drops everything (the tunnel closed); waiting requests go on. */
  clear(): void;
  readonly entries: number;
  readonly bytes: number;
  /** Nothing kept and nothing promised: no request can match (checked before hashing anything). */
  readonly idle: boolean;
}

/** SHA-256 of the identity headers, base64url, 22 characters (128 bits): what the client computes too. */
export function identityHash(headers: HeaderPairs): string {
  return createHash('sha256').update(pushIdentity(headers)).digest('base64url').slice(0, 22);
}

const keyOf = (url: string, identity: string) => `${url}\0${identity}`;

/** Headers a 304 carries from the answer it stands for (RFC 9110 §15.4.5). */
const NOT_MODIFIED_HEADERS = new Set(['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary']);

export function createPushCache(clock: Clock, limits: PushLimits, budget: PushBudget, events: PushEvents): PushCache {
  /** url + identity → the pushes of its variants (usually one), in arrival order overall. */
  const entries = new Map<string, Entry[]>();
  /** Arrival order, for expiry and eviction: [key, entry]. */
  const order: Array<[string, Entry]> = [];
  let head = 0;
  /** url + identity → when the promise lapses, and the requests waiting for it. */
  const promised = new Map<string, { expiresAt: number; waiters: Set<() => void> }>();
  let bytes = 0;
  let count = 0;
  let gen = 0;

  const size = (e: Entry) => e.body?.length ?? 0;

  function remove(key: string, entry: Entry, reason: PushDropReason | undefined): void {
    const list = entries.get(key);
    if (!list) return;
    const i = list.indexOf(entry);
    if (i < 0) return;
    list.splice(i, 1);
    if (list.length === 0) entries.delete(key);
    count--;
    bytes -= size(entry);
    budget.bytes -= size(entry);
    if (reason) events.dropped(reason, size(entry));
  }

  function settle(key: string): void {
    const p = promised.get(key);
    if (!p) return;
    promised.delete(key);
    for (const ready of p.waiters) ready();
  }

  /** Oldest first: the order list holds removed entries too, skipped when met. */
  function dropOldest(reason: PushDropReason, until: (e: Entry) => boolean): void {
    while (head < order.length) {
      const [key, entry] = order[head]!;
      const live = entries.get(key)?.includes(entry) ?? false;
      if (live && !until(entry)) break;
      head++;
      if (live) remove(key, entry, reason);
    }
    if (head > 1024 && head * 2 > order.length) {
      order.splice(0, head);
      head = 0;
    }
  }

  function sweepPromises(now: number): void {
    for (const [key, p] of promised) if (p.expiresAt <= now) settle(key);
  }

  function clearAll(reason: PushDropReason): void {
    for (const [key, list] of [...entries]) for (const e of [...list]) remove(key, e, reason);
    order.length = 0;
    head = 0;
    for (const key of [...promised.keys()]) settle(key);
  }

  function put(h: ResponseHead & { push: PushInfo }, body: Uint8Array): void {
    const push = h.push;
    if (push.alike) {
      // Several validators in one head: each is put as if it came alone.
      const { alike, ...one } = push;
      put({ ...h, push: one }, body);
      for (const [url, etag] of alike) put({ ...h, headers: [...h.headers.filter(([n]) => n.toLowerCase() !== 'etag'), ['etag', etag]], push: { ...one, url } }, body);
      return;
    }
    if (push.drop) {
      gen = Math.max(gen, push.gen);
      clearAll('invalidated');
      return;
    }
    const key = keyOf(push.url, push.identity);
    if (push.gen < gen) {
      // Fetched before the last change: stale. Its promise was settled by the drop.
      events.received(body.length);
      events.dropped('stale', body.length);
      return;
    }
    if (push.none) return settle(key);
    events.received(body.length);
    const etag = headerValue(h.headers, 'etag');
    // A validator without an ETag validates nothing; a body above the tunnel's bound never fits.
    if ((push.validator && etag === undefined) || body.length > limits.maxBytes) {
      events.dropped('refused', body.length);
      return settle(key);
    }
    const now = clock.now();
    const entry: Entry = { push, status: h.status, headers: h.headers, body: push.validator ? undefined : body, coding: h.coding, etag, expiresAt: now + limits.lifetimeMs };
    // A newer push of the same variant replaces the older one.
    for (const old of entries.get(key) ?? []) if (old.push.variant === push.variant) remove(key, old, 'evicted');
    // Room: expired ones first, then the oldest, for this tunnel and for the server as a whole.
    dropOldest('expired', (e) => e.expiresAt <= now);
    dropOldest('evicted', () => count >= limits.maxEntries || bytes + size(entry) > limits.maxBytes || budget.bytes + size(entry) > budget.maxBytes);
    if (budget.bytes + size(entry) > budget.maxBytes) {
      events.dropped('evicted', size(entry));
      return settle(key);
    }
    const list = entries.get(key);
    if (list) list.push(entry);
    else entries.set(key, [entry]);
    order.push([key, entry]);
    count++;
    bytes += size(entry);
    budget.bytes += size(entry);
    settle(key);
  }

  return {
    promise(identity, urls) {
      const expiresAt = clock.now() + limits.waitMs;
      for (const url of urls) {
        const key = keyOf(url, identity);
        if (entries.has(key) || promised.has(key)) continue;
        if (promised.size >= limits.maxEntries) return;
        promised.set(key, { expiresAt, waiters: new Set() });
      }
    },

    put,
    match(lookup) {
      const key = keyOf(lookup.url, lookup.identity);
      const list = entries.get(key);
      if (!list) {
        const p = promised.get(key);
        return p && p.expiresAt > clock.now() ? 'wait' : undefined;
      }
      const now = clock.now();
      for (const entry of list) {
        if (entry.expiresAt <= now) {
          remove(key, entry, 'expired');
          return undefined;
        }
        if (entry.push.variant !== lookup.variant) continue;
        if (!entry.push.vary.every(([name, value]) => joinedValue(lookup.headers, name) === value)) continue;
        const inm = joinedValue(lookup.headers, 'if-none-match');
        const notModified = inm !== null && entry.etag !== undefined && etagMatches(inm, entry.etag);
        // A validator answers only the conditional request it matches; anything else asks the app.
        if (!entry.body && !notModified) continue;
        remove(key, entry, undefined);
        events.used(size(entry), notModified);
        if (notModified) {
          return { status: 304, headers: entry.headers.filter(([n]) => NOT_MODIFIED_HEADERS.has(n.toLowerCase())), body: undefined, coding: undefined, notModified: true };
        }
        return { status: entry.status, headers: entry.headers, body: entry.body, coding: entry.coding, notModified: false };
      }
      return undefined;
    },

    wait(lookup, ready) {
      const key = keyOf(lookup.url, lookup.identity);
      const p = promised.get(key);
      if (!p) return ready();
      let timer: Timer | undefined;
      const once = () => {
        clock.clearTimeout(timer);
        p.waiters.delete(once);
        ready();
      };
      p.waiters.add(once);
      timer = clock.setTimeout(once, Math.max(0, p.expiresAt - clock.now()));
    },

    sweep(now) {
      dropOldest('expired', (e) => e.expiresAt <= now);
      sweepPromises(now);
    },

    clear() {
      clearAll('expired');
    },

    get entries() {
      return count;
    },
    get idle() {
      return count === 0 && promised.size === 0;
    },
    get bytes() {
      return bytes;
    },
  };
}
