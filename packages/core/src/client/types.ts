import type { TunnelError } from '../errors';
import type { RequestErrorCode, RouteMembership } from '../protocol';

// The public face of a tunnel client: what it reports and what it offers, exported as they are
// from `@devtunnel/core`. The parts of the client import them from here, not from index.ts, so
// that no part imports the root that wires it. (Line comments: this note stays out of the .d.ts.)

/** What `registered` reports, and what {@link TunnelClient.start} resolves to. */
export interface TunnelInfo {
  /** The tunnel's own port on the server. */
  port: number;
  /** Where the tunnel answers, as the server sees it. */
  url: string;
  name: string;
  /** Server-side tunnel id (not a secret). */
  id: string;
  /** The local app this tunnel replays requests to. */
  target: string;
  /** On a route: its name, the name that selects this tunnel there, and the page that turns it on. */
  route?: RouteMembership;
  /**
   * The inspector's page on this machine, its key included (see `TunnelOptions.inspect`); absent
   * when it is off or could not listen.
   */
  inspector?: string;
}

/** One finished request, as the CLI logs it. */
export interface RequestEvent {
  method: string;
  /** Path without the query string (queries may carry tokens). */
  path: string;
  /** Status the browser got; for failures of the local app, the tunnel's error status. */
  status: number;
  /** Error code when the local app failed (`local_app_refused`…), the browser left (`cancelled`, `browser_gone`) or the upload broke (`upload_failed`). */
  error?: RequestErrorCode;
  durationMs: number;
  bytesOut: number;
}

export interface TunnelEvents {
  /**
   * Registered; or live again after a server restart or a network loss (`reconnected: true`),
   * whether the server registered it anew or still knew it.
   */
  registered: [info: TunnelInfo & { reconnected: boolean }];
  request: [event: RequestEvent];
  /** The server could not be reached; the client retries after `delayMs`. */
  reconnecting: [event: { attempt: number; delayMs: number; error: TunnelError }];
  /** A final problem (bad token, refused registration): the tunnel closes after this event. */
  error: [error: TunnelError];
  /**
   * The local app does not answer (`answering: false`, said once, with the connection's error
   * code), or answers again after it did not. Nothing is said while it answers from the start.
   */
  local: [event: LocalEvent];
  closed: [];
}

/** See {@link TunnelEvents.local}. */
export interface LocalEvent {
  answering: boolean;
  /** The local app's origin, e.g. `http://localhost:5173`. */
  target: string;
  /** Why it does not answer: `ECONNREFUSED`, `ETIMEDOUT`… */
  error?: string;
}

export interface TunnelClient {
  /** Registers (retrying network failures with backoff) and starts serving. Rejects on a final error. */
  start(): Promise<TunnelInfo>;
  /** The current registration, once there is one. */
  readonly info: TunnelInfo | undefined;
  /** `connecting`, `connected`, `reconnecting` or `closed`. */
  readonly status: 'connecting' | 'connected' | 'reconnecting' | 'closed';
  /** The inspector's page (its key included), from just after {@link start} while it listens. */
  readonly inspector: string | undefined;
  on<E extends keyof TunnelEvents>(event: E, listener: (...args: TunnelEvents[E]) => void): TunnelClient;
  off<E extends keyof TunnelEvents>(event: E, listener: (...args: TunnelEvents[E]) => void): TunnelClient;
  once<E extends keyof TunnelEvents>(event: E, listener: (...args: TunnelEvents[E]) => void): TunnelClient;
  /**
   * Points the tunnel at the local app's new address, keeping the registration and the tunnel port
   * (a dev server that restarted on another port or address).
   */
  retarget(target: { port?: number; host?: string; https?: boolean }): void;
  /**
   * The local app's files changed: every push the server keeps for this tunnel is dropped before
   * anything else is sent, and pushes under way are not sent (docs/speculation.md, "Staleness").
   * The Vite and webpack plugins call it on every change; nothing happens without speculation.
   */
  dropPushes(): void;
  /** Deregisters and stops. Idempotent; resolves when everything is released. */
  close(): Promise<void>;
}

/** A started tunnel: what {@link openTunnel} resolves to. */
export type Tunnel = TunnelClient & TunnelInfo;
