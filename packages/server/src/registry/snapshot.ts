import type { PortAssignment } from '../ports';
import type { RecentRequest, TunnelSession } from '../session';

/** A tunnel or reserved port as `/api/v1/tunnels` and the dashboard show it. */
export interface TunnelSnapshot {
  id: string | undefined;
  /** Upgraded connections (WebSockets) open now. */
  upgraded: number;
  /** The last finished requests (method, path, status, time; never bodies, queries, cookies). */
  recent: RecentRequest[];
  name: string;
  /** The route this tunnel serves (its `name` selects it there), if any. */
  route: string | undefined;
  /** `user@host:localPort` without the random part of the identity. */
  owner: string;
  port: number;
  /** `closed`: closed by its owner (or an administrator); `expired`: its client went away. Either way the port stays reserved. */
  state: 'connected' | 'offline' | 'closed' | 'expired';
  localPort: number | undefined;
  version: string | undefined;
  pollsWaiting: number;
  /** Whether the client's downstream is open (feature `stream`): requests then need no poll. */
  downstream: boolean;
  /** The client's upstreams open now (feature `stream`): answers then need no upload each. */
  upstreams: number;
  queued: number;
  inFlight: number;
  requests: number;
  errors: number;
  bytesIn: number;
  bytesOut: number;
  firstSeen: string | undefined;
  lastSeen: string;
  lastRequestAt: string | undefined;
}

/** `user@host:localPort` without the random part of the identity. */
export function owner(clientId: string): string {
  const hash = clientId.lastIndexOf('#');
  return hash > 0 ? clientId.slice(0, hash) : clientId;
}

const iso = (t: number | undefined) => (t === undefined ? undefined : new Date(t).toISOString());

/** A reserved port, with its tunnel when one is registered now (else how its last one ended). */
export function snapshot(a: PortAssignment, t: TunnelSession | undefined, ended: 'closed' | 'expired' = 'expired'): TunnelSnapshot {
  const live = t?.state();
  const state = live === undefined ? ended : live === 'closed' ? 'expired' : live;
  return {
    id: t?.id,
    name: t?.name ?? a.name,
    route: t?.route,
    owner: owner(a.clientId),
    port: a.port,
    state,
    localPort: t?.localPort,
    version: t?.version,
    upgraded: t?.upgraded ?? 0,
    recent: t ? [...t.stats.recent] : [],
    pollsWaiting: t?.pollsWaiting ?? 0,
    downstream: t?.streaming ?? false,
    upstreams: t?.upstreams ?? 0,
    queued: t?.queued ?? 0,
    inFlight: t?.inFlight ?? 0,
    requests: t?.stats.requests ?? 0,
    errors: t?.stats.errors ?? 0,
    bytesIn: t?.stats.bytesIn ?? 0,
    bytesOut: t?.stats.bytesOut ?? 0,
    firstSeen: iso(t?.stats.firstSeen),
    lastSeen: iso(t?.stats.lastSeen ?? a.lastActive)!,
    lastRequestAt: iso(t?.stats.lastRequestAt),
  };
}
