import type { HeaderPairs } from '../protocol';
import type { BodyCapture } from './body';
import type { MessageLog } from './messages';

/**
 * What the inspector keeps: the recent requests in a ring, with a budget of bytes for all of them
 * together. A request that does not fit pushes the oldest out, whole, so memory stays bounded
 * whatever the traffic (sizes, rate, bodies). Pure: no sockets, no timers.
 */

/** One request that crossed the tunnel, as the inspector keeps it. */
export interface Captured {
  /** The inspector's own number for it, in arrival order (not the protocol's request id). */
  seq: number;
  /** Wall-clock arrival at the laptop, ms since the epoch. */
  time: number;
  /** `performance.now()` at arrival: the origin of the durations below. */
  t0: number;
  method: string;
  /** Path and query as the browser sent them. */
  url: string;
  /** The request's headers as the local app got them (before a Host rewrite), kept as they came. */
  requestHeaders: HeaderPairs;
  /** Declared length of the request body; `null` for a chunked upload. */
  requestLength: number | null;
  requestBody: BodyCapture | undefined;
  upgrade: boolean;
  /**
   * `pending` until the local app answered, `streaming` while its body flows, `done` once sent;
   * an accepted upgrade is `open`, then `closed`.
   */
  state: 'pending' | 'streaming' | 'done' | 'open' | 'closed';
  /** The status the browser got (the tunnel's error status for failures). */
  status: number | undefined;
  /** The tunnel's error code (`local_app_refused`, `cancelled`…) and, from the local hop, its message. */
  error: { code: string; message?: string } | undefined;
  responseHeaders: HeaderPairs | undefined;
  responseBody: BodyCapture | undefined;
  /** Bytes of the answer sent up. */
  bytesOut: number;
  /** ms the request waited on the server before it was handed to this client (the server says). */
  waitedMs: number | undefined;
  /** ms from arrival to the local app's response head, and to its last byte. */
  headersMs: number | undefined;
  localMs: number | undefined;
  /** ms from arrival until the answer was sent (batch, poll) or confirmed (its own upload). */
  totalMs: number | undefined;
  /**
   * How the answer went up: with the turn's other small answers (`batch`), in an upload that
   * doubled as the next poll (`poll`), or in its own upload, which the server confirms once the
   * browser had the last byte (`upload`).
   */
  via: 'batch' | 'poll' | 'upload' | undefined;
  /** An event stream's or a WebSocket's messages, summarised. */
  messages: MessageLog | undefined;
  /** The latest replays of it, newest last; none until the first. */
  replays: Replay[] | undefined;
  /** What this record costs, as counted against the budget. */
  bytes: number;
  /** Pushed out of the ring: whoever still holds it (a request in flight) stops adding to it. */
  evicted: boolean;
}

/** A captured request sent to the local app again, and what it answered. */
export interface Replay {
  time: number;
  method: string;
  url: string;
  requestHeaders: HeaderPairs;
  requestBody: BodyCapture | undefined;
  status: number | undefined;
  error: { code: string; message?: string } | undefined;
  responseHeaders: HeaderPairs | undefined;
  responseBody: BodyCapture | undefined;
  headersMs: number | undefined;
  localMs: number | undefined;
}

export interface StoreLimits {
  /** Requests kept at most while a page watches. */
  maxRecords: number;
  /**
   * Requests kept at most while no page watches: what just happened, for a developer who opens the
   * page after something failed. Fewer, because what a ring keeps outlives the young generation
   * of the garbage collector, and at a load test's rate keeping 500 showed on the client's CPU.
   */
  idleRecords: number;
  /** Bytes kept at most, bodies and headers of every kept request together. */
  maxBytes: number;
}

export interface StoreStats extends StoreLimits {
  /** Requests kept now. */
  kept: number;
  /** Bytes kept now. */
  bytes: number;
  /** Requests seen since the start (or the last clear). */
  seen: number;
  /** Requests pushed out to stay within the limits. */
  evicted: number;
}

export interface Store {
  /** Takes a new request in (numbering it); the oldest leave until the ring and budget fit. */
  add(record: Captured): void;
  /** A kept request grew by `bytes` (body, headers); the oldest others leave to make room. */
  grew(record: Captured, bytes: number): void;
  get(seq: number): Captured | undefined;
  /** Every kept request, oldest first. */
  list(): Captured[];
  clear(): void;
  /** Something a watcher should see changed in `record` (new, answered, ended). */
  touch(record: Captured): void;
  /**
   * Calls `changed` after the first touch since the last {@link takeChanged} (not at every one):
   * the watcher batches. Only one watcher; `undefined` stops watching, and nothing is tracked then.
   */
  watch(changed: (() => void) | undefined): void;
  /** The kept requests touched since the last call, oldest first, and whether a clear came first. */
  takeChanged(): { records: Captured[]; cleared: boolean };
  stats(): StoreStats;
}

export function createStore(limits: StoreLimits): Store {
  const { maxRecords, idleRecords, maxBytes } = limits;
  const slots: Array<Captured | undefined> = new Array(maxRecords);
  /** Sequence numbers of the oldest kept record and of the next one: the ring holds [first, next). */
  let first = 0;
  let next = 0;
  let bytes = 0;
  let seen = 0;
  let evicted = 0;
  let watcher: (() => void) | undefined;
  const changed = new Set<Captured>();
  let cleared = false;

  function evictOldest(): void {
    const old = slots[first % maxRecords]!;
    slots[first % maxRecords] = undefined;
    first++;
    old.evicted = true;
    bytes -= old.bytes;
    evicted++;
    if (watcher) changed.delete(old);
  }

  /** The newest record always stays, even alone over budget: its own caps bound it. */
  function fit(): void {
    while (bytes > maxBytes && next - first > 1) evictOldest();
  }

  /** Nothing is waiting to be taken: the next change is the one to tell the watcher of. */
  const quiet = () => changed.size === 0 && !cleared;

  function touch(record: Captured): void {
    if (!watcher || record.evicted) return;
    const tell = quiet();
    changed.add(record);
    if (tell) watcher();
  }

  return {
    add(record) {
      const capacity = watcher ? maxRecords : idleRecords;
      while (next - first >= capacity) evictOldest();
      record.seq = next;
      slots[next % maxRecords] = record;
      next++;
      seen++;
      bytes += record.bytes;
      fit();
      touch(record);
    },
    grew(record, n) {
      record.bytes += n;
      if (record.evicted) return;
      bytes += n;
      fit();
    },
    get(seq) {
      return Number.isInteger(seq) && seq >= first && seq < next ? slots[seq % maxRecords] : undefined;
    },
    list() {
      const out: Captured[] = [];
      for (let seq = first; seq < next; seq++) out.push(slots[seq % maxRecords]!);
      return out;
    },
    clear() {
      const tell = watcher !== undefined && quiet();
      while (next > first) evictOldest();
      evicted = 0;
      seen = 0;
      if (!watcher) return;
      cleared = true;
      changed.clear();
      if (tell) watcher();
    },
    touch,
    watch(listener) {
      watcher = listener;
      changed.clear();
      cleared = false;
    },
    takeChanged() {
      const records = [...changed].sort((a, b) => a.seq - b.seq);
      const result = { records, cleared };
      changed.clear();
      cleared = false;
      return result;
    },
    stats() {
      return { kept: next - first, bytes, seen, evicted, maxRecords, idleRecords, maxBytes };
    },
  };
}
