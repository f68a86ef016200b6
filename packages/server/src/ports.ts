import { HttpError } from './errors';

/**
 * Who holds which tunnel port. Pure: no sockets, no timers; the clock is injected.
 *
 * Rules, in order, for `assign(clientId, preferred)`:
 * 1. the preferred port, when it is in the range, usable, and free or already this client's;
 * 2. the port this client already holds;
 * 3. the lowest port nobody holds;
 * 4. the port whose holder was inactive the longest, if that holder is not active now;
 * 5. otherwise 503 `port_range_full`.
 * A port is held by one client at a time: two developers never share a port.
 */
export interface PortAssignment {
  clientId: string;
  port: number;
  name: string;
  /** When the holder was last seen active (ms since epoch). */
  lastActive: number;
}

export interface AssignResult {
  port: number;
  /** The client that lost this port to make room, if any. */
  evicted?: string;
}

export interface PortAllocator {
  assign(clientId: string, name: string, preferred: number | undefined, isActive: (clientId: string) => boolean): AssignResult;
  /** The port `clientId` holds, if any. */
  portOf(clientId: string): number | undefined;
  holderOf(port: number): PortAssignment | undefined;
  /** Records activity, so the least recently active holder is the one that loses its port. */
  touch(clientId: string): void;
  /** The port cannot be listened on (taken by another process): skip it for `forMs`. */
  markUnusable(port: number, forMs: number): void;
  /** The ports skipped now (marked unusable and not yet due). */
  unusable(): number[];
  /** Gives a port up (on explicit deregistration the reservation is kept: use only for failures). */
  release(clientId: string): void;
  list(): PortAssignment[];
  /** Restores assignments from a state file; entries outside the range are dropped. */
  load(entries: PortAssignment[]): void;
  /** Replaces every assignment (the shared store's, with several replicas), usability kept. */
  replace(entries: PortAssignment[]): void;
  /**
   * Sets one assignment the shared store made: the port's previous holder and the client's
   * previous port are dropped. Returns false (nothing changed) when the entry is malformed or out
   * of range.
   */
  put(entry: PortAssignment): boolean;
}

export function createPortAllocator(range: { from: number; to: number }, now: () => number = Date.now): PortAllocator {
  const byPort = new Map<number, PortAssignment>();
  const byClient = new Map<string, PortAssignment>();
  const unusableUntil = new Map<number, number>();

  const inRange = (port: number) => Number.isInteger(port) && port >= range.from && port <= range.to;
  const usable = (port: number) => {
    const until = unusableUntil.get(port);
    if (until === undefined) return true;
    if (until <= now()) {
      unusableUntil.delete(port);
      return true;
    }
    return false;
  };

  function take(clientId: string, name: string, port: number): void {
    const previous = byClient.get(clientId);
    if (previous && previous.port !== port) byPort.delete(previous.port);
    const entry: PortAssignment = { clientId, port, name, lastActive: now() };
    byPort.set(port, entry);
    byClient.set(clientId, entry);
  }

  function drop(entry: PortAssignment): void {
    byPort.delete(entry.port);
    if (byClient.get(entry.clientId) === entry) byClient.delete(entry.clientId);
  }

  return {
    assign(clientId, name, preferred, isActive) {
      if (preferred !== undefined && inRange(preferred) && usable(preferred)) {
        const holder = byPort.get(preferred);
        if (!holder || holder.clientId === clientId) {
          take(clientId, name, preferred);
          return { port: preferred };
        }
      }
      const own = byClient.get(clientId);
      if (own && usable(own.port)) {
        take(clientId, name, own.port);
        return { port: own.port };
      }
      for (let port = range.from; port <= range.to; port++) {
        if (!byPort.has(port) && usable(port)) {
          take(clientId, name, port);
          return { port };
        }
      }
      let oldest: PortAssignment | undefined;
      for (const entry of byPort.values()) {
        if (entry.clientId === clientId || !usable(entry.port) || isActive(entry.clientId)) continue;
        if (!oldest || entry.lastActive < oldest.lastActive) oldest = entry;
      }
      if (!oldest) {
        throw new HttpError('port_range_full', `Every tunnel port (${range.from}-${range.to}) is held by an active tunnel. Try again later, or ask the operator to widen --tunnel-ports.`, { retryAfter: 30 });
      }
      drop(oldest);
      take(clientId, name, oldest.port);
      return { port: oldest.port, evicted: oldest.clientId };
    },
    portOf(clientId) {
      return byClient.get(clientId)?.port;
    },
    holderOf(port) {
      return byPort.get(port);
    },
    touch(clientId) {
      const entry = byClient.get(clientId);
      if (entry) entry.lastActive = now();
    },
    markUnusable(port, forMs) {
      unusableUntil.set(port, now() + forMs);
    },
    unusable: () => [...unusableUntil.keys()].filter((port) => !usable(port)),
    release(clientId) {
      const entry = byClient.get(clientId);
      if (entry) drop(entry);
    },
    list() {
      return [...byPort.values()].map((e) => ({ ...e }));
    },
    put(e) {
      if (typeof e.clientId !== 'string' || typeof e.name !== 'string' || !inRange(e.port)) return false;
      const holder = byPort.get(e.port);
      if (holder && holder.clientId !== e.clientId) drop(holder);
      take(e.clientId, e.name, e.port);
      byClient.get(e.clientId)!.lastActive = Number(e.lastActive) || now();
      return true;
    },
    replace(entries) {
      byPort.clear();
      byClient.clear();
      this.load(entries);
    },
    load(entries) {
      for (const e of entries) {
        if (!e || typeof e.clientId !== 'string' || !inRange(e.port) || byPort.has(e.port) || byClient.has(e.clientId)) continue;
        const entry: PortAssignment = { clientId: e.clientId, port: e.port, name: typeof e.name === 'string' ? e.name : '', lastActive: Number(e.lastActive) || 0 };
        byPort.set(entry.port, entry);
        byClient.set(entry.clientId, entry);
      }
    },
  };
}
