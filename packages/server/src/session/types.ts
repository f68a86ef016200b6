import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../clock';
import type { HttpError } from '../errors';
import type { Exchange } from '../exchange';
import type { ServerLogger } from '../logger';
import type { ResolvedServerOptions } from '../options';
import type { PushBudget, PushCache, PushEvents, PushLimits } from '../push-cache';
import type { TunnelStats } from './stats';

/** What the rest of the server sees of a tunnel's session, and what it takes to make one. */

export type TunnelState = 'connected' | 'offline' | 'closed';
export interface TunnelSession {
  readonly id: string;
  readonly clientId: string;
  /** The client process that registered it (see `RegisterRequest.instance`); absent for older clients. */
  readonly instance: string | undefined;
  readonly name: string;
  readonly port: number;
  readonly localPort: number | undefined;
  readonly version: string | undefined;
  /** What the client said it can do (`upgrade`…). */
  readonly features: ReadonlySet<string>;
  /** The route this tunnel serves, if it registered for one. */
  readonly route: string | undefined;
  readonly stats: TunnelStats;
  /** The pushes its client sent (feature `push`, both sides); undefined without the feature. */
  readonly pushes: PushCache | undefined;
  state(): TunnelState;
  /** Whether a client is polling now (for port reuse decisions). */
  isActive(): boolean;
  readonly pollsWaiting: number;
  readonly queued: number;
  /** Requests handed to the client and not answered yet. */
  readonly inFlight: number;
  /** Upgraded connections (WebSockets) open now. */
  readonly upgraded: number;
  /** Marks an exchange upgraded (a 101 went out). */
  markUpgraded(exchange: Exchange): void;
  /** The client's `GET …/upstream` for an upgrade: the exchange, or why not. */
  findUpgrade(id: string): Exchange | HttpError;
  /** Checks the per-tunnel secret in constant time. */
  verifySecret(secret: string): boolean;
  /** A browser request arrived on this tunnel's port. */
  submit(exchange: Exchange): void;
  /** A client poll (or a response upload acting as one) arrived. */
  addPoll(req: IncomingMessage, res: ServerResponse): void;
  /**
   * The client opened its downstream (feature `stream`): from now on requests without a body are
   * written to it as they come, with no poll per request. A newer downstream replaces an older one.
   */
  attachDownstream(req: IncomingMessage, res: ServerResponse): void;
  /** An upstream of the client (feature `stream`) arrived: the answer says why it is refused. */
  attachUpstream(req: IncomingMessage, res: ServerResponse): HttpError | undefined;
  /** The first bytes of an upstream arrived: the client may send answers on it (a frame says so). */
  upstreamReady(): void;
  /** Bytes came from the client on a stream: it lives. */
  seen(): void;
  /** The client confirmed the key of its downstream's first notice: requests may go on it now. */
  confirmDownstream(key: string): void;
  /** Whether a confirmed downstream is open now. */
  readonly streaming: boolean;
  /** Upstreams open now. */
  readonly upstreams: number;
  /** The client starts answering `id`: returns the exchange, or why it cannot. */
  take(id: string): Exchange | HttpError;
  /** The exchange ended (answered, failed or abandoned): forget it. */
  settle(exchange: Exchange): void;
  /** Fails an exchange with an error response (or a cut connection if headers went out). */
  fail(exchange: Exchange, error: HttpError): void;
  /** The browser went away: stop the work wherever it is. */
  abandon(exchange: Exchange): void;
  /** Periodic check: lease expiry. */
  sweep(now: number): void;
  /**
   * Its replica rolls (several replicas): requests keep arriving and wait, none is handed to the
   * client, so that those in flight finish before the tunnel moves. Polls stay, empty.
   */
  hold(): void;
  /** Held: tells the client to register again (elsewhere); polls, streams and checks get `reason`. */
  moveOn(reason: HttpError): void;
  /** Held and told to move: the answer to the client's check. */
  readonly moving: HttpError | undefined;
  /** Takes the requests waiting here (never handed to the client) to send them elsewhere. */
  takeQueued(): Exchange[];
  /** Stops taking requests and answers polls with `reason`; in-flight requests may finish. */
  drain(reason: HttpError): void;
  /** Ends everything now: polls answered with `reason`, requests failed. */
  close(reason: HttpError, pendingReason?: HttpError): void;
}

export interface TunnelDeps {
  options: ResolvedServerOptions;
  logger: ServerLogger;
  verifySecret(secret: string): boolean;
  /** Time and timers; real ones by default (`options.now` and Node's timers). */
  clock?: Clock;
  /** The server's push bounds, shared budget and metrics; without them a tunnel keeps no pushes. */
  pushes?: { limits: PushLimits; budget: PushBudget; events: PushEvents };
}

export interface TunnelInit {
  id: string;
  clientId: string;
  instance: string | undefined;
  name: string;
  port: number;
  localPort: number | undefined;
  version: string | undefined;
  features: ReadonlySet<string>;
  /** The route this tunnel serves, if it registered for one. */
  route?: string | undefined;
}
