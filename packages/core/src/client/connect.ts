import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { createBackoff } from '../backoff';
import { ServerAnswerError, type Session } from '../control';
import { TunnelError, isFinal } from '../errors';
import { CLIENT_FEATURES, FrameError } from '../protocol';
import { defaultStateDir, loadIdentity, type ClientIdentity } from '../state';
import { VERSION } from '../version';
import type { ClientContext } from './context';

/**
 * Keeping a live session: registering, checking the session after the channel failed, telling a
 * final failure (bad token, refused registration, tunnel replaced) from one worth retrying, and
 * pacing the retries: full-jitter backoff for network failures, and the churn pace for
 * registrations that keep getting lost whatever the server answers.
 */

/**
 * A registration lost sooner than this after it was made counts as churn: the next one waits a
 * delay that grows while it goes on (see {@link createChurnPace}).
 */
export const STABLE_SESSION_MS = 60_000;

export interface ChurnPace {
  /** A registration succeeded now. */
  registered(): void;
  /** The session was lost now: how long the next registration waits first (0: at once). */
  lost(): number;
}

/**
 * Paces registrations, whatever the server answers: each registration lost within
 * {@link STABLE_SESSION_MS} makes the next one wait 0.25-0.5 s, then 0.5-1 s, … up to 15-30 s (equal
 * jitter, so the pace holds). A client never registers more than a few times a minute in a loop
 * of its own or one the server causes; a session that lasted starts over.
 */
export function createChurnPace(now: () => number = () => performance.now(), random: () => number = Math.random): ChurnPace {
  const churn = createBackoff(500, 30_000, random, 'equal');
  let registeredAt = -Infinity;
  return {
    registered() {
      registeredAt = now();
    },
    lost() {
      if (now() - registeredAt < STABLE_SESSION_MS) return churn.next();
      churn.reset();
      return 0;
    },
  };
}

/** The server's word that this tunnel is over for this client: final, whatever call got it. */
export function stopped(error: unknown): TunnelError | undefined {
  if (!(error instanceof ServerAnswerError)) return undefined;
  if (error.serverCode === 'tunnel_closed') return new TunnelError('TUNNEL_CLOSED_BY_SERVER', error.message, { status: error.status, cause: error });
  if (error.serverCode === 'tunnel_replaced') {
    return new TunnelError('TUNNEL_REPLACED', `${error.message} This client stopped and leaves the tunnel to it. Two dev servers of one project, or two clients of one local port, share an identity: stop one of them, or give one its own (the identity option, or --identity).`, { status: error.status, cause: error });
  }
  return undefined;
}

/**
 * Statuses that something which is not a devtunnel server gives for good: a 4xx but for 404
 * (something in front, during a rollout), 408 and 429, and a 5xx but for the gateway errors of a
 * proxy whose backend is away (502-504).
 */
const forGood = (status: number) => (status >= 400 && status < 500 && status !== 404 && status !== 408 && status !== 429) || (status >= 500 && (status < 502 || status > 504));

/** Turns a failed registration or check against `server` into a TunnelError, final or retryable. */
export function classify(error: unknown, server: URL): TunnelError {
  if (error instanceof TunnelError) return error;
  const over = stopped(error);
  if (over) return over;
  const fix = 'Check --server / DEVTUNNEL_SERVER: it must be the tunnel server\'s URL, with the path prefix it is mounted under, if any.';
  if (error instanceof ServerAnswerError) {
    const { status, serverCode } = error;
    if (status === 401 && serverCode === 'unauthorized') {
      return new TunnelError('TUNNEL_UNAUTHORIZED', `The tunnel server at ${server.href} refused the token (401). Check DEVTUNNEL_TOKEN / --token against the token the server was started with.`, { status, cause: error });
    }
    if (serverCode === undefined && forGood(status)) {
      // No devtunnel error code: another app (or a proxy's own page) answered at that URL.
      return new TunnelError('TUNNEL_REGISTRATION_REFUSED', `The server at ${server.href} answered ${status} and is not a devtunnel tunnel server (its answer has no devtunnel error code). ${fix}`, { status, cause: error });
    }
    if (serverCode === 'unknown_route') {
      // The server has no such route: asking again will not add one.
      return new TunnelError('TUNNEL_REGISTRATION_REFUSED', error.message, { status, cause: error });
    }
    if (status === 404 && serverCode === 'not_found') {
      // The tunnel server itself answered, with nothing at that path: the URL is wrong, and
      // asking again will not fix it. (A 404 from something in front, during a rollout, is retried.)
      return new TunnelError('TUNNEL_REGISTRATION_REFUSED', `${error.message}. ${fix}`, { status, cause: error });
    }
    if (serverCode === 'port_range_full') {
      return new TunnelError('TUNNEL_PORT_RANGE_FULL', `${error.message}. Every tunnel port is in use; retrying. Ask the server's operator to widen --tunnel-ports.`, { status, cause: error });
    }
    if (forGood(status)) return new TunnelError('TUNNEL_REGISTRATION_REFUSED', error.message, { status, cause: error });
    const rollout = status === 404 ? ` Not a devtunnel server's answer: retrying in case a rollout is under way; if it lasts, ${fix.charAt(0).toLowerCase()}${fix.slice(1)}` : '';
    return new TunnelError('TUNNEL_SERVER_UNREACHABLE', `${error.message}.${rollout}`, { status, cause: error });
  }
  if (error instanceof FrameError) {
    return new TunnelError('TUNNEL_PROTOCOL_ERROR', `The tunnel server at ${server.href} sent an answer this client cannot read (${error.message}). A proxy may be altering the traffic, or the client and server versions differ; retrying.`, { cause: error });
  }
  const e = error as Error & { code?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code;
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' && server.protocol === 'https:') {
    // The TLS handshake met plain HTTP: asking again will not change what the server speaks.
    return new TunnelError('TUNNEL_REGISTRATION_REFUSED', `The server at ${server.href} does not speak https (it answered the TLS handshake in plain HTTP). Use ${server.href.replace(/^https:/, 'http:')} in --server / DEVTUNNEL_SERVER, or put TLS in front of the tunnel server.`, { cause: error });
  }
  const tls = server.protocol === 'http:' && (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET') ? ' If the server speaks https, use https:// in --server.' : '';
  return new TunnelError('TUNNEL_SERVER_UNREACHABLE', `Cannot reach the tunnel server at ${server.href}: ${e.message.trim()}${code ? ` (${code})` : ''}. Retrying; check the URL, your VPN and HTTPS_PROXY.${tls}`, { cause: error });
}

export interface Connection {
  /**
   * Makes sure there is a live session: checks the current one, or registers (again). Retries
   * network failures with capped full-jitter backoff; throws a final error at once.
   */
  connect(): Promise<void>;
  /** The channel failed (network, server restart, lost session): recover once, for all polls. */
  channelFailed(error: unknown): void;
  /**
   * An upload failed. Only two answers say the channel itself is gone (the server is shutting
   * down, or no longer knows the tunnel); anything else concerns that one upload, and whether the
   * channel is down is for the polls to find out.
   */
  uploadFailed(s: Session, error: unknown): void;
  /** A final failure: reported (log and `error` event), then the tunnel closes. */
  fail(failure: unknown): void;
  /** close() ran: a retry's wait ends now. */
  stop(): void;
}

export interface ConnectionDeps {
  /** A recovery ended: polls may be opened again. */
  topUp(): void;
  /** Closes the current session's streams. */
  linkDown(): void;
  close(): Promise<void>;
}

const closedError = () => new TunnelError('TUNNEL_CLOSED', 'The tunnel was closed.');

export function createConnection(ctx: ClientContext, deps: ConnectionDeps): Connection {
  const { o, log, control } = ctx;
  const backoff = createBackoff();
  const pace = createChurnPace();
  /** This process's instance: tells our own re-registrations from another process's (same identity). */
  const instance = randomBytes(16).toString('hex');
  let identity: ClientIdentity | undefined;
  /** A `reconnecting` was reported since the tunnel was last live: its return is reported too. */
  let lossReported = false;
  const sleeper = new AbortController();

  function reportLoss(delayMs: number, error: TunnelError): void {
    lossReported = true;
    ctx.emit('reconnecting', { attempt: backoff.attempt, delayMs, error });
  }

  /** The tunnel is live at `info` (registered, or back after an outage the server outlived). */
  function reportLive(message: string, reconnected: boolean): void {
    log.info(`devtunnel: ${message}: ${ctx.info!.url} → ${ctx.targetName}`, { port: ctx.info!.port });
    lossReported = false;
    ctx.emit('registered', { ...ctx.info!, reconnected });
  }

  async function sleep(ms: number): Promise<void> {
    try {
      await delay(ms, undefined, { signal: sleeper.signal });
    } catch {
      // Aborted by close(): the caller checks `closed`.
    }
  }

  async function register(reconnected: boolean): Promise<void> {
    identity ??= await loadIdentity(o.stateDir === undefined ? defaultStateDir() : o.stateDir, o.server, o.port, o.identity, (m) => log.warn(m));
    const s = await control.register({
      clientId: identity.clientId,
      name: o.name ?? (o.route ? identity.routeName : identity.defaultName),
      preferredPort: o.preferredPort ?? ctx.info?.port ?? identity.lastPort,
      localPort: o.port,
      version: VERSION,
      features: ctx.o.speculate ? [...CLIENT_FEATURES] : CLIENT_FEATURES.filter((f) => f !== 'push'),
      instance,
      ...(o.route ? { route: o.route } : {}),
    });
    if (ctx.closed) {
      // close() ran while the server registered us: take that registration back, say nothing.
      void control.deregister(s).catch(() => {});
      throw closedError();
    }
    ctx.session = s;
    ctx.info = { port: s.port, url: s.url, name: s.name, id: s.id, target: ctx.targetName, ...(s.route ? { route: s.route } : {}), ...(ctx.inspector ? { inspector: ctx.inspector } : {}) };
    try {
      await identity.savePort(s.port);
    } catch (error) {
      log.warn(`devtunnel: could not save the tunnel port to the state file: ${(error as Error).message}`);
    }
    ctx.status = 'connected';
    backoff.reset();
    pace.registered();
    reportLive(reconnected ? 'registered again' : 'registered', reconnected);
  }

  async function connect(): Promise<void> {
    for (;;) {
      if (ctx.closed) throw closedError();
      try {
        if (ctx.session) {
          try {
            await control.check(ctx.session);
            if (ctx.closed) throw closedError();
            ctx.status = 'connected';
            backoff.reset();
            // The server kept the tunnel through the outage: it is back without a registration.
            if (lossReported && ctx.info) reportLive('back', true);
            return;
          } catch (error) {
            // 404/401: the server restarted or expired us. Register again (same identity, same port).
            if (!(error instanceof ServerAnswerError) || (error.status !== 404 && error.status !== 401)) throw error;
            ctx.session = undefined;
          }
        }
        await register(ctx.info !== undefined);
        return;
      } catch (error) {
        if (ctx.closed) throw closedError();
        const failure = classify(error, o.server);
        if (isFinal(failure)) throw failure;
        const retryAfterMs = error instanceof ServerAnswerError ? error.retryAfterMs : undefined;
        const delayMs = Math.max(backoff.next(), retryAfterMs ?? 0);
        if (ctx.status !== 'connecting') ctx.status = 'reconnecting';
        // Said at debug level: the `reconnecting` event carries it, and the CLI and plugins say it once.
        log.debug(`devtunnel: ${failure.message} (retry in ${(delayMs / 1000).toFixed(1)} s)`);
        reportLoss(delayMs, failure);
        await sleep(delayMs);
      }
    }
  }

  function channelFailed(error: unknown): void {
    if (ctx.closed || ctx.recovering) return;
    log.debug(`devtunnel: channel error: ${(error as Error).message}`);
    // Their far ends lived on the server: whatever happened to it, they are gone.
    for (const abort of ctx.upgrades.values()) abort.abort();
    deps.linkDown();
    if (ctx.status === 'connected') ctx.status = 'reconnecting';
    const paceMs = pace.lost();
    ctx.recovering = true;
    void (async () => {
      const retryAfterMs = error instanceof ServerAnswerError ? error.retryAfterMs : undefined;
      if (retryAfterMs !== undefined || !(error instanceof ServerAnswerError)) {
        const delayMs = Math.max(backoff.next(), retryAfterMs ?? 0, paceMs);
        reportLoss(delayMs, classify(error, o.server));
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
        ctx.recovering = false;
        deps.topUp();
      });
  }

  function uploadFailed(s: Session, error: unknown): void {
    if (s !== ctx.session || !(error instanceof ServerAnswerError)) return;
    const over = stopped(error);
    if (over) fail(over);
    else if (error.serverCode === 'server_shutting_down' || error.serverCode === 'unknown_tunnel') channelFailed(error);
  }

  function fail(failure: unknown): void {
    if (ctx.closed) return;
    const error = failure instanceof TunnelError ? failure : classify(failure, o.server);
    if (error.code === 'TUNNEL_CLOSED') return;
    log.error(`devtunnel: ${error.message}`);
    ctx.emit('error', error);
    void deps.close();
  }

  return { connect, channelFailed, uploadFailed, fail, stop: () => sleeper.abort() };
}
