import type { Reference } from './scan';

/**
 * What the client remembers to keep pushes small on a reload (docs/speculation.md, "Reloads"): per
 * browser identity, which URLs it delivered (answered or pushed) with which `ETag`, and whether the
 * browser keeps them without asking (immutable); per URL and `ETag`, the references its body
 * holds, so that a 304 (no body to scan) still says what comes next. Bounded: the oldest go first.
 */

export interface Delivered {
  etag: string | undefined;
  immutable: boolean;
  /** The request headers the answer varied on (lower case). */
  vary: string[];
}

export interface SpeculationMemory {
  delivered(identity: string, url: string): Delivered | undefined;
  deliver(identity: string, url: string, what: Delivered): void;
  /** The browser's cache for `identity` is probably empty (a page loaded without a validator): forget it. */
  forget(identity: string): void;
  references(url: string, etag: string): Reference[] | undefined;
  /** `page`: the body was HTML (a 304 for it starts a page load). */
  remember(url: string, etag: string, refs: Reference[], page?: boolean): void;
  isPage(url: string, etag: string): boolean;
}

export interface MemoryLimits {
  identities: number;
  urlsPerIdentity: number;
  scanned: number;
}

export const memoryDefaults: MemoryLimits = Object.freeze({ identities: 32, urlsPerIdentity: 8_192, scanned: 16_384 });

/** A Map used as a bounded LRU: reading moves an entry to the end, the first one goes first. */
function touch<K, V>(map: Map<K, V>, key: K): V | undefined {
  const v = map.get(key);
  if (v !== undefined) {
    map.delete(key);
    map.set(key, v);
  }
  return v;
}

function put<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > max) map.delete(map.keys().next().value as K);
}

export function createSpeculationMemory(limits: MemoryLimits = memoryDefaults): SpeculationMemory {
  const byIdentity = new Map<string, Map<string, Delivered>>();
  const scanned = new Map<string, Reference[]>();
  const pages = new Set<string>();

  return {
    delivered: (identity, url) => byIdentity.get(identity)?.get(url),
    deliver(identity, url, what) {
      let urls = touch(byIdentity, identity);
      if (!urls) put(byIdentity, identity, (urls = new Map()), limits.identities);
      put(urls, url, what, limits.urlsPerIdentity);
    },
    forget(identity) {
      byIdentity.delete(identity);
    },
    references: (url, etag) => touch(scanned, `${url}\0${etag}`),
    remember(url, etag, refs, page = false) {
      const key = `${url}\0${etag}`;
      put(scanned, key, refs, limits.scanned);
      if (page) {
        pages.add(key);
        if (pages.size > limits.scanned) pages.delete(pages.values().next().value as string);
      }
    },
    isPage: (url, etag) => pages.has(`${url}\0${etag}`),
  };
}
