import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { createBackoff } from './backoff';
import { batchFrames, createControlChannel, release, ServerAnswerError, type BatchItem, type PollResult, type Session } from './control';
import { createCancel, type Cancel } from './cancel';
import { TunnelError, isFinal } from './errors';
import { createForwarder, isUpgraded, originOf, type LocalResponse } from './forward';
import { discard } from './http-call';
import { resolveTunnelOptions, type ResolvedTunnelOptions, type TunnelOptions } from './options';
import { CLIENT_FEATURES, FrameError, MAX_BATCH, type RequestMessage, type ServerMessage } from './protocol';
import { defaultStateDir, loadIdentity, type ClientIdentity } from './state';
import { createStreamLink, type StreamLink } from './client/streams';
import { VERSION } from './version';

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
}

/** One finished request, as the CLI logs it. */
export interface RequestEvent {
  method: string;
  /** Path without the query string (queries may carry tokens). */
  path: string;
  /** Status the browser got; for failures of the local app, the tunnel's error status. */
  status: number;
  /** Error code when the local app failed (`local_app_refused`…) or the browser left (`cancelled`). */
  error?: string;
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
  closed: [];
}

export interface TunnelClient {
  /** Registers (retrying network failures with backoff) and starts serving. Rejects on a final error. */
  start(): Promise<TunnelInfo>;
  /** The current registration, once there is one. */
  readonly info: TunnelInfo | undefined;
  /** `connecting`, `connected`, `reconnecting` or `closed`. */
  readonly status: 'connecting' | 'connected' | 'reconnecting' | 'closed';
  on<E extends keyof TunnelEvents>(event: E, listener: (...args: TunnelEvents[E]) => void): TunnelClient;
  off<E extends keyof TunnelEvents>(event: E, listener: (...args: TunnelEvents[E]) => void): TunnelClient;
  once<E extends keyof TunnelEvents>(event: E, listener: (...args: TunnelEvents[E]) => void): TunnelClient;
  /**
   * Points the tunnel at the local app's new address, keeping the registration and the tunnel port
   * (a dev server that restarted on another port or address).
   */
  retarget(target: { port?: number; host?: string; https?: boolean }): void;
  /** Deregisters and stops. Idempotent; resolves when everything is released. */
  close(): Promise<void>;
}

/** A started tunnel: what {@link openTunnel} resolves to. */
export type Tunnel = TunnelClient & TunnelInfo;

/** The body of a message that has none (requests from the downstream). */
const EMPTY = new Uint8Array(0);

/**
 * A registration lost sooner than this after it was made counts as churn: the next one waits a
 * delay that grows while it goes on (see `churn` in createTunnelClient).
 */
const STABLE_SESSION_MS = 60_000;

function isAbort(error: unknown): boolean {
  const code = (error as { code?: string; name?: string })?.code;
  const name = (error as { name?: string })?.name;
  return code === 'UND_ERR_ABORTED' || code === 'UND_ERR_DESTROYED' || name === 'AbortError' || code === 'ABORT_ERR';
}

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/** A local socket's bytes after an upgrade, starting with what came with the 101. */
async function* fromSocket(socket: Socket, rest: Buffer): AsyncIterable<Uint8Array> {
  if (rest.length > 0) yield rest;
  for await (const chunk of socket) yield chunk as Uint8Array;
}

/** Counts the bytes of a body as they pass, for the request log. */
async function* counted(body: Readable, counter: { bytes: number }): AsyncIterable<Uint8Array> {
  for await (const chunk of body) {
    counter.bytes += (chunk as Uint8Array).length;
    yield chunk as Uint8Array;
  }
}

/**
 * Creates an unstarted tunnel client. Use it when you want events from the very first attempt
 * (the CLI, the plugins); {@link openTunnel} is the one-call form.
 */
export function createTunnelClient(options: TunnelOptions): TunnelClient {
  const o: ResolvedTunnelOptions = resolveTunnelOptions(options);
  const log = o.logger;
  const emitter = new EventEmitter();
  // An 'error' event without a listener must not crash the host (a Vite dev server).
  emitter.on('error', () => {});
  const control = createControlChannel({ server: o.server, token: o.token, proxy: o.proxy, version: VERSION });
  const target = { host: o.host, port: o.port, https: o.https, rewriteHost: o.rewriteHost, allowedHosts: o.allowedHosts };
  let session: Session | undefined;
  const forwarder = createForwarder(target, () => ({
    localTimeoutMs: session?.timing.localTimeoutMs ?? 50_000,
    bodyIdleTimeoutMs: session?.timing.bodyIdleTimeoutMs ?? 60_000,
  }));
  const backoff = createBackoff();
  /**
   * Paces registrations, whatever the server answers: each registration lost within
   * {@link STABLE_SESSION_MS} makes the next one wait 0.25-0.5 s, then 0.5-1 s, … up to 15-30 s (equal
   * jitter, so the pace holds). A client never registers more than a few times a minute in a loop
   * of its own or one the server causes; a session that lasted starts over.
   */
  const churn = createBackoff(500, 30_000, Math.random, 'equal');
  let registeredAt = -Infinity;
  /** This process's instance: tells our own re-registrations from another process's (same identity). */
  const instance = randomBytes(16).toString('hex');
  const inFlight = new Map<string, Cancel>();
  /** Open upgraded connections (WebSockets), to close with the channel. */
  const upgrades = new Map<string, Cancel>();
  let identity: ClientIdentity | undefined;
  let info: TunnelInfo | undefined;
  let status: TunnelClient['status'] = 'connecting';
  let started: Promise<TunnelInfo> | undefined;
  let recovering: Promise<void> | undefined;
  let closing: Promise<void> | undefined;
  let closed = false;
  /** Polls (and response uploads acting as polls) currently waiting on the server. */
  let waiting = 0;
  /** Requests being replayed or answered. */
  let active = 0;
  let targetName = originOf(target);
  /** The streams of the current session (feature `stream`), while it is tried or in use. */
  let link: StreamLink | undefined;
  /**
   * A poll came back empty and no request came since: only a quarter of the polls are renewed.
   * A poll answer carries every request queued in its turn (feature `batch`), so a burst on a
   * quiet tunnel still leaves at once, and the other polls come back with it. 500 quiet tunnels
   * cost the server 1,000 poll renewals per poll timeout instead of 4,000.
   */
  let quiet = false;
  /** Something on the way holds streamed bytes back: long polls only (or answers by upload only). */
  let streamsBlocked = false;
  let upstreamBlocked = false;

  const emit = <E extends keyof TunnelEvents>(event: E, ...args: TunnelEvents[E]) => emitter.emit(event, ...args);
  /** A `reconnecting` was reported since the tunnel was last live: its return is reported too. */
  let lossReported = false;
  function reportLoss(delayMs: number, error: TunnelError): void {
    lossReported = true;
    emit('reconnecting', { attempt: backoff.attempt, delayMs, error });
  }
  /** The tunnel is live at `info` (registered, or back after an outage the server outlived). */
  function reportLive(message: string, reconnected: boolean): void {
    log.info(`devtunnel: ${message}: ${info!.url} → ${targetName}`, { port: info!.port });
    lossReported = false;
    emit('registered', { ...info!, reconnected });
  }

  function pollTarget(): number {
    const polls = Math.min(o.polls, session?.maxPolls ?? o.polls);
    // With a downstream, polls only carry requests with a body (and prove the client lives).
    return link?.downstreamReady ? Math.max(1, Math.floor(polls / 4)) : polls;
  }

  /** Opens the streams of the current session when both sides can, and nothing blocked them. */
  function linkUp(s: Session): void {
    if (link || o.transport !== 'auto' || streamsBlocked || !s.features?.includes('stream')) return;
    link = createStreamLink({
      control,
      session: s,
      window: o.maxInFlight,
      log,
      upstreamBlocked,
      onMessages: (messages) => {
        if (s === session && !closed) dispatch(s, { messages, body: EMPTY });
      },
      onChange: topUp,
      onUnsure: (frames) => {
        for (const batch of frames) resend(s, batch);
      },
      onBlocked: (which) => {
        log.warn(`devtunnel: the way to ${o.server.origin} holds streamed ${which === 'downstream' ? 'answers' : 'uploads'} back (a buffering proxy?); using ${which === 'downstream' ? 'long polls' : 'an upload per answer'} instead, which works but is slower.`);
        if (which === 'downstream') {
          streamsBlocked = true;
          link = undefined;
        } else upstreamBlocked = true;
        topUp();
      },
    });
  }

  function linkDown(): void {
    const l = link;
    link = undefined;
    l?.close();
  }

  async function register(reconnected: boolean): Promise<void> {
    identity ??= await loadIdentity(o.stateDir === undefined ? defaultStateDir() : o.stateDir, o.server, o.port, o.identity, (m) => log.warn(m));
    const s = await control.register({
      clientId: identity.clientId,
      name: o.name ?? identity.defaultName,
      preferredPort: o.preferredPort ?? info?.port ?? identity.lastPort,
      localPort: o.port,
      version: VERSION,
      features: [...CLIENT_FEATURES],
      instance,
    });
    if (closed) {
      // close() ran while the server registered us: take that registration back, say nothing.
      void control.deregister(s).catch(() => {});
      throw new TunnelError('TUNNEL_CLOSED', 'The tunnel was closed.');
    }
    session = s;
    info = { port: s.port, url: s.url, name: s.name, id: s.id, target: targetName };
    try {
      await identity.savePort(s.port);
    } catch (error) {
      log.warn(`devtunnel: could not save the tunnel port to the state file: ${(error as Error).message}`);
    }
    status = 'connected';
    backoff.reset();
    registeredAt = performance.now();
    reportLive(reconnected ? 'registered again' : 'registered', reconnected);
  }

  /** The server's word that this tunnel is over for this client: final, whatever call got it. */
  function stopped(error: unknown): TunnelError | undefined {
    if (!(error instanceof ServerAnswerError)) return undefined;
    if (error.serverCode === 'tunnel_closed') return new TunnelError('TUNNEL_CLOSED_BY_SERVER', error.message, { status: error.status, cause: error });
    if (error.serverCode === 'tunnel_replaced') {
      return new TunnelError('TUNNEL_REPLACED', `${error.message} This client stopped and leaves the tunnel to it. Two dev servers of one project, or two clients of one local port, share an identity: stop one of them, or give one its own (the identity option, or --identity).`, { status: error.status, cause: error });
    }
    return undefined;
  }

  /** Turns a failed registration or check into a TunnelError, final or retryable. */
  function classify(error: unknown): TunnelError {
    if (error instanceof TunnelError) return error;
    const over = stopped(error);
    if (over) return over;
    if (error instanceof ServerAnswerError) {
      if (error.status === 401) {
        return new TunnelError('TUNNEL_UNAUTHORIZED', `The tunnel server at ${o.server.href} refused the token (401). Check DEVTUNNEL_TOKEN / --token against the token the server was started with.`, { status: 401, cause: error });
      }
      if (error.status === 404 && error.serverCode === 'not_found') {
        // The tunnel server itself answered, with nothing at that path: the URL is wrong, and
        // asking again will not fix it. (A 404 from something in front, during a rollout, is retried.)
        return new TunnelError('TUNNEL_REGISTRATION_REFUSED', `${error.message}. Check --server / DEVTUNNEL_SERVER: it must be the tunnel server's URL, with the path prefix it is mounted under, if any.`, { status: 404, cause: error });
      }
      if (error.serverCode === 'port_range_full') {
        return new TunnelError('TUNNEL_PORT_RANGE_FULL', `${error.message}. Every tunnel port is in use; retrying. Ask the server's operator to widen --tunnel-ports.`, { status: error.status, cause: error });
      }
      if (error.status >= 400 && error.status < 500 && error.status !== 404 && error.status !== 408 && error.status !== 429) {
        return new TunnelError('TUNNEL_REGISTRATION_REFUSED', error.message, { status: error.status, cause: error });
      }
      return new TunnelError('TUNNEL_SERVER_UNREACHABLE', error.message, { status: error.status, cause: error });
    }
    if (error instanceof FrameError) {
      return new TunnelError('TUNNEL_PROTOCOL_ERROR', `The tunnel server at ${o.server.href} sent an answer this client cannot read (${error.message}). A proxy may be altering the traffic, or the client and server versions differ; retrying.`, { cause: error });
    }
    const e = error as Error & { code?: string; cause?: { code?: string } };
    const code = e.code ?? e.cause?.code;
    return new TunnelError('TUNNEL_SERVER_UNREACHABLE', `Cannot reach the tunnel server at ${o.server.href}: ${e.message}${code ? ` (${code})` : ''}. Retrying; check the URL, your VPN and HTTPS_PROXY.`, { cause: error });
  }

  /**
   * Makes sure there is a live session: checks the current one, or registers (again). Retries
   * network failures with capped full-jitter backoff; throws a final error at once.
   */
  async function connect(): Promise<void> {
    for (;;) {
      if (closed) throw new TunnelError('TUNNEL_CLOSED', 'The tunnel was closed.');
      try {
        if (session) {
          try {
            await control.check(session);
            if (closed) throw new TunnelError('TUNNEL_CLOSED', 'The tunnel was closed.');
            status = 'connected';
            backoff.reset();
            // The server kept the tunnel through the outage: it is back without a registration.
            if (lossReported && info) reportLive('back', true);
            return;
          } catch (error) {
            // 404/401: the server restarted or expired us. Register again (same identity, same port).
            if (!(error instanceof ServerAnswerError) || (error.status !== 404 && error.status !== 401)) throw error;
            session = undefined;
          }
        }
        await register(info !== undefined);
        return;
      } catch (error) {
        if (closed) throw new TunnelError('TUNNEL_CLOSED', 'The tunnel was closed.');
        const failure = classify(error);
        if (isFinal(failure)) throw failure;
        const retryAfterMs = error instanceof ServerAnswerError ? error.retryAfterMs : undefined;
        const delayMs = Math.max(backoff.next(), retryAfterMs ?? 0);
        if (status !== 'connecting') status = 'reconnecting';
        log.warn(`devtunnel: ${failure.message} (retry in ${(delayMs / 1000).toFixed(1)} s)`);
        reportLoss(delayMs, failure);
        await sleep(delayMs);
      }
    }
  }

  const sleeper = new AbortController();
  async function sleep(ms: number): Promise<void> {
    try {
      await delay(ms, undefined, { signal: sleeper.signal });
    } catch {
      // Aborted by close(): the caller checks `closed`.
    }
  }

  /** The channel failed (network, server restart, lost session): recover once, for all polls. */
  function channelFailed(error: unknown): void {
    if (closed || recovering) return;
    log.debug(`devtunnel: channel error: ${(error as Error).message}`);
    // Their far ends lived on the server: whatever happened to it, they are gone.
    for (const abort of upgrades.values()) abort.abort();
    linkDown();
    if (status === 'connected') status = 'reconnecting';
    // A registration that lasted is no churn: the pace starts over.
    const churning = performance.now() - registeredAt < STABLE_SESSION_MS;
    if (!churning) churn.reset();
    recovering = (async () => {
      const retryAfterMs = error instanceof ServerAnswerError ? error.retryAfterMs : undefined;
      const paceMs = churning ? churn.next() : 0;
      if (retryAfterMs !== undefined || !(error instanceof ServerAnswerError)) {
        const delayMs = Math.max(backoff.next(), retryAfterMs ?? 0, paceMs);
        reportLoss(delayMs, classify(error));
        await sleep(delayMs);
      } else {
        // The server answered (it restarted, or forgot this tunnel): register again, quietly and
        // at once the first time, paced when it keeps happening.
        await sleep(paceMs);
      }
      await connect();
    })()
      .catch((failure: unknown) => fail(failure))
      .finally(() => {
        recovering = undefined;
        topUp();
      });
  }

  /**
   * An upload failed. Only two answers say the channel itself is gone (the server is shutting
   * down, or no longer knows the tunnel); anything else concerns that one upload, and whether the
   * channel is down is for the polls to find out.
   */
  function uploadFailed(s: Session, error: unknown): void {
    if (s !== session || !(error instanceof ServerAnswerError)) return;
    const over = stopped(error);
    if (over) fail(over);
    else if (error.serverCode === 'server_shutting_down' || error.serverCode === 'unknown_tunnel') channelFailed(error);
  }

  function fail(failure: unknown): void {
    if (closed) return;
    const error = failure instanceof TunnelError ? failure : classify(failure);
    if (error.code === 'TUNNEL_CLOSED') return;
    log.error(`devtunnel: ${error.message}`);
    emit('error', error);
    void close();
  }

  /**
   * Keeps enough polls on the server. A request being handled counts as a poll to come: its
   * response upload goes back as one (`x-devtunnel-poll`), so under load the client sends two
   * requests per browser request (the local one and the upload), not three. A few polls always
   * wait idle anyway, so a burst or a long request (SSE) never leaves the server without one.
   */
  function topUp(): void {
    if (closed || recovering || !session) return;
    linkUp(session);
    const full = pollTarget();
    // A quarter of them, at least one, always wait; when the tunnel is quiet, only those.
    const floor = Math.max(1, Math.floor(full / 4));
    const target = quiet ? floor : full;
    if (link?.downstreamReady) {
      while (waiting < target && waiting + active < o.maxInFlight) {
        waiting++;
        void pollOnce(session);
      }
      return;
    }
    while ((waiting < floor || waiting + active < target) && waiting < target && waiting + active < o.maxInFlight) {
      waiting++;
      void pollOnce(session);
    }
  }

  async function pollOnce(s: Session): Promise<void> {
    let result: PollResult;
    try {
      result = await control.poll(s);
    } catch (error) {
      waiting--;
      if (closed) return;
      if (error instanceof ServerAnswerError && error.serverCode === 'too_many_polls') return;
      if (s !== session) return;
      const over = stopped(error);
      if (over) fail(over);
      else channelFailed(error);
      return;
    }
    waiting--;
    // Came back empty: the tunnel was quiet for a whole poll timeout (see `quiet`).
    if (result) dispatch(s, result);
    else quiet = true;
    topUp();
  }

  function dispatch(s: Session, result: NonNullable<PollResult>): void {
    quiet = false;
    const { messages, body } = result;
    const last = messages[messages.length - 1]!;
    const bodyOwner = last.type === 'request' && last.bodyLength !== 0 ? last : undefined;
    // No body follows: let the (ended) stream go so its connection returns to the pool.
    if (!bodyOwner) release(result);
    for (const message of messages) {
      if (message.type === 'cancel') {
        inFlight.get(message.id)?.abort();
        continue;
      }
      const b = message === bodyOwner ? body : null;
      if (message.upgrade) void handleUpgrade(s, message);
      else void handle(s, message, b);
    }
  }

  /**
   * Answers a broken connection (an upstream, a batch upload) may have lost, posted once more by
   * batch upload: safe, the server skips those it delivered already.
   */
  function resend(s: Session, answers: BatchItem[] | Uint8Array): void {
    void control.respondBatch(s, answers, false).then(release, (error: unknown) => uploadFailed(s, error));
  }

  /**
   * Small answers ready in the same event-loop turn leave in one upload (feature `batch`): one
   * write and one read on the control channel for all of them instead of one each.
   */
  let outbox: { s: Session; items: BatchItem[] } | undefined;

  function send(s: Session, item: BatchItem): void {
    if (outbox && outbox.s !== s) flushOutbox();
    if (!outbox) {
      outbox = { s, items: [] };
      setImmediate(flushOutbox);
    }
    outbox.items.push(item);
    if (outbox.items.length >= MAX_BATCH) flushOutbox();
  }

  function flushOutbox(): void {
    const box = outbox;
    outbox = undefined;
    if (!box || box.items.length === 0 || closed) return;
    if (link?.upstreamReady && box.s === session) return link.send(batchFrames(box.items));
    const asPoll = waiting < pollTarget();
    if (asPoll) waiting++;
    control
      .respondBatch(box.s, box.items, asPoll)
      .then(
        (next) => {
          if (next && !closed) dispatch(box.s, next);
          else release(next);
        },
        (error: unknown) => {
          // A connection that broke may have lost the answers: once more, on another connection
          // (the server skips those it delivered already). The answers were reported when sent;
          // beyond that only a lost channel still matters.
          if (!(error instanceof ServerAnswerError) && box.s === session && !closed) resend(box.s, box.items);
          else uploadFailed(box.s, error);
        },
      )
      .finally(() => {
        if (asPoll) waiting--;
        topUp();
      });
  }

  /**
   * An upgrade (WebSocket): replayed against the local app; a refusal goes back like any response.
   * After a 101 the app's bytes stream up in the response upload and the browser's come down in
   * `GET …/upstream`, until either side closes (docs/protocol.md, "Upgrades").
   */
  async function handleUpgrade(s: Session, message: RequestMessage): Promise<void> {
    active++;
    const t0 = performance.now();
    const abort = createCancel();
    inFlight.set(message.id, abort);
    const result = await forwarder.upgrade(message, abort.signal);
    inFlight.delete(message.id);
    if (!isUpgraded(result)) {
      const counter = { bytes: 0 };
      try {
        await control.respond(s, message.id, result.head, result.body ? counted(result.body, counter) : null, false, abort);
        finished(message, t0, result.head.status, counter.bytes, result.head.error?.code);
      } catch {
        if (result.body) discard(result.body);
        finished(message, t0, 502, counter.bytes, abort.aborted ? 'cancelled' : 'upload_failed');
      } finally {
        active--;
        topUp();
      }
      return;
    }
    // An open upgraded connection holds no poll slot: it may live for hours.
    active--;
    topUp();
    finished(message, t0, 101, 0);
    const { socket, head, rest } = result;
    upgrades.set(message.id, abort);
    const end = () => {
      socket.destroy();
      abort.abort();
      upgrades.delete(message.id);
    };
    abort.onAbort(() => socket.destroy());
    socket.on('error', end);
    socket.once('close', end);
    // The app's bytes, up. Ends when the app closes its side; a refusal (410) means the browser left.
    control.respond(s, message.id, head, fromSocket(socket, rest), false, abort).then(release, end);
    // The browser's bytes, down. Their end half-closes the local side, as the browser did.
    control.upstream(s, message.id, abort.signal).then((down) => {
      down.on('error', end);
      down.pipe(socket);
    }, end);
  }

  /** What the request log says of a request whose upload failed: the status and error code. */
  function failedUpload(error: unknown, aborted: boolean, asPoll: boolean, response: LocalResponse | undefined): [number, string | undefined] {
    if (aborted || isAbort(error)) return [499, 'cancelled'];
    if (error instanceof ServerAnswerError) {
      // The server answers an upload only once the body is through: the browser has its
      // response; only the poll part was refused.
      if (asPoll && (error.serverCode === 'server_shutting_down' || error.serverCode === 'too_many_polls')) return [response?.head.status ?? 502, response?.head.error?.code];
      // The browser left, or the server already answered it (deadline): nothing to recover.
      if (error.status === 404 || error.status === 410 || error.status === 409) return [499, error.serverCode ?? 'cancelled'];
    }
    // The upload broke: the server cut it (the browser left), the local app's body failed mid-way,
    // or the network did. The browser has been told (a cut connection).
    return [502, 'upload_failed'];
  }

  function finished(message: RequestMessage, started: number, statusCode: number, bytesOut: number, error?: string): void {
    const event: RequestEvent = {
      method: message.method,
      path: pathOf(message.url),
      status: statusCode,
      durationMs: Math.round(performance.now() - started),
      bytesOut,
    };
    if (error) event.error = error;
    emit('request', event);
  }

  async function handle(s: Session, message: RequestMessage, body: Readable | Uint8Array | null): Promise<void> {
    active++;
    const t0 = performance.now();
    const abort = createCancel();
    inFlight.set(message.id, abort);
    let asPoll = false;
    let reported = false;
    let next: PollResult = null;
    const counter = { bytes: 0 };
    let response: LocalResponse | undefined;
    let batched = false;
    try {
      response = await forwarder.forward(message, body, abort);
      if (response.body === null && s.features?.includes('batch')) {
        // A whole answer: into this turn's batch upload, reported now (it is on its way).
        batched = true;
        counter.bytes = response.bytes?.length ?? 0;
        finished(message, t0, response.head.status, counter.bytes, response.head.error?.code);
        // The head is ours (made by the forwarder): it names its request, as a batch needs.
        send(s, { head: Object.assign(response.head, { id: message.id, bodyLength: response.bytes?.length ?? 0 }), bytes: response.bytes });
        return;
      }
      // A whole (small) answer lets its upload double as the next poll when polls are short: one
      // request fewer per browser request. A streamed one (large, SSE) never holds a poll slot.
      asPoll = response.body === null && !closed && waiting < pollTarget();
      if (asPoll) waiting++;
      if (response.bytes) counter.bytes = response.bytes.length;
      const upload = control.respond(s, message.id, response.head, response.bytes ?? (response.body ? counted(response.body, counter) : null), asPoll, abort);
      // Its answer may wait for the next browser request: report this one now, it is on its way.
      if (asPoll) {
        reported = true;
        finished(message, t0, response.head.status, counter.bytes, response.head.error?.code);
      }
      next = await upload;
      if (!reported) finished(message, t0, response.head.status, counter.bytes, response.head.error?.code);
    } catch (error) {
      if (response?.body) discard(response.body);
      if (body && !(body instanceof Uint8Array)) discard(body);
      uploadFailed(s, error);
      // An answer reported as sent (it rode an upload-as-poll) needs nothing more.
      if (!reported) {
        const [statusCode, code] = failedUpload(error, abort.aborted, asPoll, response);
        finished(message, t0, statusCode, counter.bytes, code);
      }
    } finally {
      if (asPoll) waiting--;
      active--;
      inFlight.delete(message.id);
    }
    // A batched answer's upload tops the polls up when it leaves.
    if (batched) return;
    if (next && !closed) dispatch(s, next);
    else release(next);
    topUp();
  }

  async function close(): Promise<void> {
    if (closing) return closing;
    closed = true;
    status = 'closed';
    sleeper.abort();
    linkDown();
    closing = (async () => {
      for (const abort of inFlight.values()) abort.abort();
      for (const abort of upgrades.values()) abort.abort();
      const s = session;
      if (s) {
        try {
          await control.deregister(s);
        } catch (error) {
          // The server expires tunnels whose polls stopped; a failed goodbye loses nothing.
          log.debug(`devtunnel: deregistration failed: ${(error as Error).message}`);
        }
      }
      await Promise.allSettled([control.close(), forwarder.close()]);
      emit('closed');
    })();
    return closing;
  }

  const client: TunnelClient = {
    start() {
      started ??= (async () => {
        try {
          await connect();
        } catch (error) {
          // A final error at the first attempt (a bad token) is reported like one later: the
          // `error` event, which is all a dev-server plugin listens to (it never awaits start()).
          fail(error);
          await close();
          throw error;
        }
        topUp();
        return info!;
      })();
      return started;
    },
    get info() {
      return info;
    },
    get status() {
      return status;
    },
    on(event, listener) {
      emitter.on(event, listener as (...args: unknown[]) => void);
      return client;
    },
    off(event, listener) {
      emitter.off(event, listener as (...args: unknown[]) => void);
      return client;
    },
    once(event, listener) {
      emitter.once(event, listener as (...args: unknown[]) => void);
      return client;
    },
    retarget(next) {
      forwarder.retarget(next);
      targetName = originOf(target);
      if (info) info = { ...info, target: targetName };
      log.info(`devtunnel: now forwarding to ${targetName}`);
    },
    close,
  };
  return client;
}

/**
 * Registers a tunnel and starts serving. Resolves with the assigned port and URL once registered;
 * rejects on a final error (bad token, refused registration). Network failures are retried.
 *
 * @example
 * const tunnel = await openTunnel({ server: 'https://devtunnel.test.example.com', token, port: 5173 })
 * console.log(tunnel.url)
 * await tunnel.close()
 */
export async function openTunnel(options: TunnelOptions): Promise<Tunnel> {
  const client = createTunnelClient(options);
  await client.start();
  return Object.defineProperties(client, {
    port: { get: () => client.info!.port, enumerable: true },
    url: { get: () => client.info!.url, enumerable: true },
    name: { get: () => client.info!.name, enumerable: true },
    id: { get: () => client.info!.id, enumerable: true },
    target: { get: () => client.info!.target, enumerable: true },
  }) as Tunnel;
}

export type { ServerMessage };
