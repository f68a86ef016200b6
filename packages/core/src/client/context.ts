import { EventEmitter } from 'node:events';
import type { Cancel } from '../cancel';
import { createControlChannel, type ControlChannel, type Session } from '../control';
import { createForwarder, originOf, type Forwarder, type LocalTarget } from '../forward';
import { noTap, type RequestTap } from '../inspector';
import type { Logger } from '../logger';
import type { ResolvedTunnelOptions } from '../options';
import { VERSION } from '../version';
import type { Speculator } from '../speculate';
import type { StreamLink } from './streams';
import type { TunnelClient, TunnelEvents, TunnelInfo } from './types';

/**
 * What the parts of one tunnel client share, in one place so that who reads and writes what stays
 * visible. State only one part needs stays inside it (the connection's backoff and pacing, the
 * pool's quiet flag, the outbox's batch, which streams were found blocked).
 */
export interface ClientContext {
  readonly o: ResolvedTunnelOptions;
  readonly log: Logger;
  readonly control: ControlChannel;
  /** Replays requests against the local app. */
  readonly forwarder: Forwarder;
  /** The local app as the forwarder reaches it; `retarget()` changes it in place. */
  readonly target: LocalTarget;
  readonly emitter: EventEmitter;
  emit<E extends keyof TunnelEvents>(event: E, ...args: TunnelEvents[E]): boolean;
  /** The current registration (connect.ts sets it); every part compares its own to it. */
  session: Session | undefined;
  /** What `registered` reported last. */
  info: TunnelInfo | undefined;
  status: TunnelClient['status'];
  /** close() ran: nothing new starts, nothing more is reported. */
  closed: boolean;
  /** The channel failed and a check or registration is under way: no polls meanwhile. */
  recovering: boolean;
  /** Polls (and response uploads acting as polls) currently waiting on the server. */
  waiting: number;
  /** Requests being replayed or answered. */
  active: number;
  /** The streams of the current session (feature `stream`), while they are tried or in use. */
  link: StreamLink | undefined;
  /** The local app's origin, as messages name it. */
  targetName: string;
  /** Requests being handled, by id: a cancel from the server aborts one. */
  readonly inFlight: Map<string, Cancel>;
  /** Open upgraded connections (WebSockets), to close with the channel. */
  readonly upgrades: Map<string, Cancel>;
  /** Where the handlers report each request: the inspector's, or one that does nothing. */
  tap: RequestTap;
  /** The inspector's URL (its key included) once it listens. */
  inspector: string | undefined;
  /** Speculative delivery (feature `push`), when the option is on. */
  speculator: Speculator | undefined;
}

export function createClientContext(o: ResolvedTunnelOptions): ClientContext {
  const emitter = new EventEmitter();
  // An 'error' event without a listener must not crash the host (a Vite dev server).
  emitter.on('error', () => {});
  const target: LocalTarget = { host: o.host, port: o.port, https: o.https, rewriteHost: o.rewriteHost, allowedHosts: o.allowedHosts };
  const ctx: ClientContext = {
    o,
    log: o.logger,
    control: createControlChannel({ server: o.server, token: o.token, proxy: o.proxy, version: VERSION }),
    forwarder: createForwarder(
      target,
      () => ({
        localTimeoutMs: ctx.session?.timing.localTimeoutMs ?? 50_000,
        bodyIdleTimeoutMs: ctx.session?.timing.bodyIdleTimeoutMs ?? 60_000,
      }),
      // Encoded answers only for a server that decodes them for browsers that need it.
      () => o.compress && ctx.session?.features?.includes('encode') === true,
    ),
    target,
    emitter,
    emit: (event, ...args) => emitter.emit(event, ...args),
    session: undefined,
    info: undefined,
    status: 'connecting',
    closed: false,
    recovering: false,
    waiting: 0,
    active: 0,
    link: undefined,
    targetName: originOf(target),
    inFlight: new Map(),
    upgrades: new Map(),
    tap: noTap,
    inspector: undefined,
    speculator: undefined,
  };
  return ctx;
}
