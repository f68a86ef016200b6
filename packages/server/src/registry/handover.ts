import type { Exchange } from '../exchange';
import { HttpError } from '../errors';
import type { Hop } from '../cluster/hop';
import type { TunnelSession } from '../session';
import { remoteOf } from '../tunnel-port/request';

/**
 * A replica that rolls (SIGTERM, several replicas) hands its tunnels over instead of failing
 * their requests: each tunnel is held (requests wait, none goes to the client), those in flight
 * finish, then its client is told to register again, which another replica's claim answers; the
 * requests that waited here follow the tunnel there by the internal hop. None of them had reached
 * the client, so none is delivered twice. A developer sees one quiet re-registration, no failure.
 */

/** How long the requests the clients are answering get to finish before the tunnels move. */
export const SETTLE_MS = 5_000;
/** How long the clients get to register elsewhere. */
export const MOVE_MS = 10_000;
const STEP_MS = 50;

const moveOn = () => new HttpError('unknown_tunnel', 'This tunnel server replica is stopping: register again, and another replica takes the tunnel over.');

/** Holds every tunnel, lets what is in flight finish, tells the clients to move, waits for them (bounded). */
export async function handOver(tunnels: () => TunnelSession[], hop: Hop, now: () => number, deadline: number): Promise<void> {
  for (const tunnel of tunnels()) tunnel.hold();
  const settleBy = Math.min(deadline, now() + SETTLE_MS);
  while (now() < settleBy && tunnels().some((t) => t.inFlight > 0)) await sleep(STEP_MS);
  const reason = moveOn();
  for (const tunnel of tunnels()) tunnel.moveOn(reason);
  // Each tunnel leaves this replica when another claims it (the registry's `lost`).
  const movedBy = Math.min(deadline, now() + MOVE_MS);
  while (now() < movedBy && tunnels().length > 0) await sleep(STEP_MS);
  // Clients' polls and streams that pass through here for tunnels held elsewhere (a keep-alive
  // connection the Service opened before this replica left it) move too, before it exits.
  hop.release(reason);
}

/**
 * The requests that waited on `tunnel` here, to `there`, the replica that holds it now, as if they
 * had arrived there: on the tunnel's port, or on their route's port (`routePort`).
 */
export function sendQueuedOn(tunnel: TunnelSession, there: string, hop: Hop, routePort: (route: string) => number | undefined): number {
  const waiting = tunnel.takeQueued();
  for (const ex of waiting) rehop(ex, tunnel.port, there, hop, routePort);
  return waiting.length;
}

function rehop(ex: Exchange, tunnelPort: number, there: string, hop: Hop, routePort: (route: string) => number | undefined): void {
  const port = (ex.route !== undefined ? routePort(ex.route) : undefined) ?? tunnelPort;
  const arrival = { port, remote: remoteOf(ex.req) };
  if (ex.upgrade) hop.upgrade(ex.req, ex.upgrade.socket, ex.upgrade.head, there, arrival);
  else hop.forward(ex.req, ex.res!, there, arrival);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
