import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { CONTENT_TYPE_FRAME, HEADER, HEARTBEAT, MAX_BATCH, encodeFrames, encodeHead, type CancelMessage, type DownstreamMessage, type RequestMessage } from '@devtunnel/core/protocol';
import { sendError } from './error-response';
import { randomId } from './ids';
import { HttpError, offlineError } from './errors';
import type { ServerLogger } from './logger';
import type { ResolvedServerOptions } from './options';

/**
 * One registered tunnel: its waiting polls, the browser requests queued for a poll, and the
 * requests handed to the client and not yet answered. This is where a browser request meets a
 * long-poll. Every wait here has a timer; every map entry has a way out.
 */

/**
 * The browser side of an upgrade request (WebSocket…): Node hands over the raw socket, so answers
 * are written by hand (upgrade.ts). Lives from the request until the upgraded connection closes.
 */
export interface UpgradeState {
  readonly socket: Socket;
  /** Bytes that followed the request head in the same packet: the start of the browser's stream. */
  readonly head: Buffer;
  /** Status written to the browser, once one was. */
  status: number | undefined;
  /** The client's `GET …/upstream`, which carries the browser's bytes after the 101. */
  upstream: { req: IncomingMessage; res: ServerResponse } | undefined;
  /** Called when the upstream request arrives (set while the 101 is being set up). */
  onUpstream: (() => void) | undefined;
  /** Run once by `close()`. */
  readonly onClose: Array<() => void>;
  /** Answers the browser with an error and closes the connection. */
  fail(error: HttpError): void;
  /** Tears the whole upgraded connection down (browser socket, upload, upstream). Idempotent. */
  close(): void;
}

/** One browser request on its way through the tunnel. */
export interface Exchange {
  /** Dispatch id: 128-bit random, single-use, valid for this tunnel only. */
  readonly id: string;
  /** `X-Request-Id` seen by the local app and the logs. */
  readonly requestId: string;
  readonly req: IncomingMessage;
  /** The browser's response; absent for an upgrade request (see `upgrade`). */
  readonly res: ServerResponse | undefined;
  readonly upgrade: UpgradeState | undefined;
  readonly message: RequestMessage;
  /** `upgraded`: a 101 went out and bytes flow both ways until either side closes. */
  state: 'queued' | 'dispatched' | 'responding' | 'upgraded' | 'done';
  readonly arrivedAt: number;
  dispatchedAt: number | undefined;
  respondedAt: number | undefined;
  timer: NodeJS.Timeout | undefined;
  /** The client's response upload, while the response streams. */
  upload: IncomingMessage | undefined;
  /** The downstream that carried it to the client, if one did. */
  via: ServerResponse | undefined;
  /** Error code when the tunnel answered with an error. */
  code: string | undefined;
  bytesIn: number;
  bytesOut: number;
}

interface Poll {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  timer: NodeJS.Timeout | undefined;
}

export type TunnelState = 'connected' | 'offline' | 'closed';

/** One finished request, as the dashboard shows it: never bodies, queries, tokens or cookies. */
export interface RecentRequest {
  time: number;
  method: string;
  /** Path without the query string. */
  path: string;
  status: number;
  durationMs: number;
  code?: string;
}

/** Most requests a client may take at once on a downstream (its `maxInFlight` is at most this). */
const MAX_WINDOW = 10_000;

/**
 * Safe methods (RFC 9110 §9.2.1): a request of these that a broken downstream may have lost is sent
 * again, as browsers and proxies retry them on a broken connection; never one that changes state.
 */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

/** A downstream holding this much its client has not read gets no more requests until it drains. */
const STREAM_BACKLOG_BYTES = 1024 * 1024;

/** How many finished requests a tunnel remembers for the dashboard. */
export const RECENT_REQUESTS = 20;

export interface TunnelStats {
  requests: number;
  errors: number;
  bytesIn: number;
  bytesOut: number;
  firstSeen: number;
  lastSeen: number;
  lastRequestAt: number | undefined;
  /** The last {@link RECENT_REQUESTS} finished requests, newest last. */
  recent: RecentRequest[];
}

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
  readonly stats: TunnelStats;
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
  /** Stops taking requests and answers polls with `reason`; in-flight requests may finish. */
  drain(reason: HttpError): void;
  /** Ends everything now: polls answered with `reason`, requests failed. */
  close(reason: HttpError, pendingReason?: HttpError): void;
}

export interface TunnelDeps {
  options: ResolvedServerOptions;
  logger: ServerLogger;
  verifySecret(secret: string): boolean;
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
}

export function createTunnelSession(init: TunnelInit, deps: TunnelDeps): TunnelSession {
  const { options, logger } = deps;
  const now = options.now;
  const polls = new Set<Poll>();
  const queue: Exchange[] = [];
  const controls: CancelMessage[] = [];
  /** Dispatched or responding exchanges, by dispatch id. */
  const pending = new Map<string, Exchange>();
  const stats: TunnelStats = { requests: 0, errors: 0, bytesIn: 0, bytesOut: 0, firstSeen: now(), lastSeen: now(), lastRequestAt: undefined, recent: [] };
  /** Declared offline (lost client or lapsed lease) until the client is seen again. */
  let offline = false;
  let draining: HttpError | undefined;
  let closed = false;
  let lostTimer: NodeJS.Timeout | undefined;
  /** Upgrade requests admitted and not over (counted against maxUpgrades). */
  const upgrades = new Set<Exchange>();
  let upgraded = 0;
  /** The client's downstream (feature `stream`), while one is open. */
  let down: ServerResponse | undefined;
  /** What confirms `down`: until the client sent it back, requests go to polls only. */
  let downKey: string | undefined;
  /** The client confirmed `down`: its frames reach the client. */
  let downReady = false;
  /** The client's upstreams (feature `stream`) open now. */
  const ups = new Set<{ req: IncomingMessage; res: ServerResponse }>();
  /** Requests the client takes at once while it has a downstream (it says how many). */
  let window = 0;
  /**
   * Safe requests a downstream carried before it broke, unanswered: it may have lost them. They go
   * again once the client shows it lives (a poll, a confirmed downstream); if it never does, they
   * fail like every request of a vanished client.
   */
  const suspects = new Set<Exchange>();

  function state(): TunnelState {
    if (closed) return 'closed';
    if (polls.size > 0 || down) return 'connected';
    if (offline) return 'offline';
    // A client busy with requests up to its cap has no poll waiting, yet it is alive; a dead one
    // is caught by the disconnect grace or the request deadline.
    if (awaiting() > 0) return 'connected';
    return now() - stats.lastSeen > options.leaseMs ? 'offline' : 'connected';
  }

  function seen(): void {
    stats.lastSeen = now();
    offline = false;
  }

  const offlineFailure = () => offlineError(init.port, init.name);

  function clearTimer(ex: Exchange): void {
    if (ex.timer) clearTimeout(ex.timer);
    ex.timer = undefined;
  }

  function fail(ex: Exchange, error: HttpError): void {
    if (ex.state === 'done') return;
    settle(ex);
    ex.code = error.code;
    if (ex.upgrade) return ex.upgrade.fail(error);
    // A half-read upload leaves the connection in an unknown state: close it after the answer.
    sendError(ex.req, ex.res!, error, { context: `tunnel ${init.name}, port ${init.port}`, close: !ex.req.complete, headers: { 'x-request-id': ex.requestId } });
  }

  function settle(ex: Exchange): void {
    if (ex.state === 'queued') {
      const i = queue.indexOf(ex);
      if (i >= 0) queue.splice(i, 1);
    }
    if (ex.state === 'upgraded') upgraded--;
    if (ex.upgrade) upgrades.delete(ex);
    clearTimer(ex);
    pending.delete(ex.id);
    suspects.delete(ex);
    ex.state = 'done';
    // A full stream window kept requests queued: one answer makes room for them.
    if (downReady && queue.length > 0) scheduleFlush();
  }

  const browserGone = (ex: Exchange) => (ex.upgrade ? ex.upgrade.socket.destroyed : ex.res!.destroyed);

  /** Requests the client owes an answer: upgraded connections do not prove it is alive. */
  const awaiting = () => pending.size - upgraded;

  /** The client must answer within `deadlineMs` of `from` (the request's arrival, by default). */
  function armDeadline(ex: Exchange, from = ex.arrivedAt): void {
    clearTimer(ex);
    const left = Math.max(0, from + options.deadlineMs - now());
    ex.timer = setTimeout(() => {
      fail(ex, new HttpError('tunnel_timeout', `The developer's machine did not answer within ${Math.round(options.deadlineMs / 1000)} s. The local app may be stuck, or the devtunnel client overloaded.`));
      sendControl({ type: 'cancel', id: ex.id });
    }, left);
  }

  /**
   * Answers a poll with messages, frame after frame: cancels, then requests, of which only the last
   * may have a body (the browser's upload streams after the heads). One message for older clients;
   * everything waiting, at most {@link MAX_BATCH}, for clients with the `batch` feature.
   */
  function answer(poll: Poll, cancels: CancelMessage[], batch: Exchange[]): void {
    for (const ex of batch) dispatched(ex);
    const frames = encodeFrames([...cancels, ...batch.map((ex) => ex.message)]);
    const res = poll.res;
    const last = batch[batch.length - 1];
    if (last && last.message.bodyLength !== 0) return streamBody(res, frames, last);
    res.writeHead(200, { 'content-type': CONTENT_TYPE_FRAME, 'content-length': frames.length, 'cache-control': 'no-store' });
    res.end(frames);
    // Requests without a body can safely go to another poll if this one died under us.
    if (batch.length > 0) res.once('close', () => !res.writableFinished && batch.forEach(requeue));
  }

  /** The exchange is on its way to the client, which must answer before the deadline. */
  function dispatched(ex: Exchange): void {
    ex.state = 'dispatched';
    ex.dispatchedAt = now();
    pending.set(ex.id, ex);
    armDeadline(ex);
  }

  /**
   * Writes cancels and every queued request without a body to the downstream, in one write.
   * Requests with a body wait for a poll (their body streams as the rest of its answer); so do all
   * requests while the client has its window's worth, or does not read what it was sent.
   */
  function toStream(res: ServerResponse): void {
    if (res.destroyed || res.writableLength > STREAM_BACKLOG_BYTES) return;
    const heads: DownstreamMessage[] = controls.splice(0);
    let kept = 0;
    for (const ex of queue) {
      if (ex.state !== 'queued' || browserGone(ex)) continue;
      if (ex.message.bodyLength !== 0 || awaiting() >= window) {
        queue[kept++] = ex;
        continue;
      }
      dispatched(ex);
      ex.via = res;
      heads.push(ex.message);
    }
    queue.length = kept;
    if (heads.length > 0) res.write(encodeFrames(heads));
  }

  /** Takes what a poll should carry now: cancels first, then queued requests, a body only last. */
  function takeWork(limit: number): { cancels: CancelMessage[]; batch: Exchange[] } | undefined {
    const cancels: CancelMessage[] = [];
    const batch: Exchange[] = [];
    while (controls.length > 0 && cancels.length < limit) cancels.push(controls.shift()!);
    // With a downstream the client said how many requests it takes at once, polls included.
    const room = downReady ? window - awaiting() : Infinity;
    while (queue.length > 0 && cancels.length + batch.length < limit && batch.length < room) {
      const ex = queue[0]!;
      if (ex.state !== 'queued' || browserGone(ex)) {
        queue.shift();
        continue;
      }
      if (ex.message.bodyLength !== 0 && batch.length > 0) break; // a body must come last
      queue.shift();
      batch.push(ex);
      if (ex.message.bodyLength !== 0) break;
    }
    return cancels.length + batch.length > 0 ? { cancels, batch } : undefined;
  }

  /** Writes frame heads, then streams the browser's upload as the rest of the poll answer. */
  function streamBody(res: ServerResponse, headBytes: Uint8Array, ex: Exchange): void {
    const headers: Record<string, string | number> = { 'content-type': CONTENT_TYPE_FRAME, 'cache-control': 'no-store' };
    if (ex.message.bodyLength !== null) headers['content-length'] = headBytes.length + ex.message.bodyLength;
    res.writeHead(200, headers);
    res.write(headBytes);
    const upload = ex.req;
    // A large upload may take longer than the deadline: while it streams only the idle limit
    // applies, and the client's time to answer counts from its end (as the local app's does).
    clearTimer(ex);
    upload.once('end', () => {
      if (ex.state === 'dispatched') armDeadline(ex, now());
    });
    // pipe(), not pipeline(): if the client drops this poll, the browser must still get a 502,
    // so its socket must not be destroyed along with the poll.
    upload.pipe(res);
    upload.on('data', (chunk: Buffer) => {
      ex.bytesIn += chunk.length;
    });
    const onAbort = () => res.destroy();
    upload.once('aborted', onAbort);
    upload.once('error', onAbort);
    res.once('close', () => {
      upload.off('aborted', onAbort);
      upload.off('error', onAbort);
      if (!res.writableFinished) {
        upload.unpipe(res);
        if (ex.state === 'dispatched') {
          fail(ex, new HttpError('client_disconnected', `The developer's devtunnel client dropped the connection while receiving this request's body. Retry; if it persists, check the client's network.`));
        }
      }
    });
  }

  function closeUpgraded(ex: Exchange): void {
    settle(ex);
    ex.upgrade?.close();
  }

  function requeue(ex: Exchange): void {
    if (ex.state !== 'dispatched' || closed) return;
    pending.delete(ex.id);
    clearTimer(ex);
    ex.state = 'queued';
    ex.via = undefined;
    const poll = takePoll();
    if (poll) return answer(poll, [], [ex]);
    queue.unshift(ex);
    armDeadline(ex);
    if (downReady) scheduleFlush();
  }

  /** The client showed it lives: what a broken downstream may have lost goes again. */
  function revive(): void {
    if (suspects.size === 0) return;
    const again = [...suspects];
    suspects.clear();
    for (const ex of again) requeue(ex);
  }

  const batching = init.features.has('batch');
  let flushing = false;

  /**
   * Nagle's idea without its delay: browser requests read in the same event-loop turn (one epoll
   * wake-up often brings several) leave together, in as few poll answers as bodies allow, after
   * Node has read every ready socket. One write and one client read for all of them, at the cost
   * of one `setImmediate`.
   */
  function scheduleFlush(): void {
    if (flushing) return;
    flushing = true;
    setImmediate(flush);
  }

  function flush(): void {
    flushing = false;
    if (closed || draining) return;
    if (down && downReady) toStream(down);
    while (polls.size > 0) {
      const work = takeWork(MAX_BATCH);
      if (!work) break;
      const poll = takePoll();
      if (!poll) {
        // Every waiting poll had died: put the work back, in order, for the next one.
        queue.unshift(...work.batch);
        controls.unshift(...work.cancels);
        break;
      }
      answer(poll, work.cancels, work.batch);
    }
    for (const ex of queue) if (!ex.timer) awaitPoll(ex);
  }

  /** A queued request waits for a poll this long at most (then 503 `tunnel_busy`). */
  function awaitPoll(ex: Exchange): void {
    ex.timer = setTimeout(() => {
      fail(ex, new HttpError('tunnel_busy', `No devtunnel client poll picked this request up within ${Math.round(options.waitForPollMs / 1000)} s. The developer's machine is overloaded or its network is slow; retry.`, { retryAfter: 5 }));
    }, options.waitForPollMs);
  }

  function takePoll(): Poll | undefined {
    for (const poll of polls) {
      polls.delete(poll);
      if (poll.timer) clearTimeout(poll.timer);
      if (poll.res.destroyed) continue;
      return poll;
    }
    return undefined;
  }

  function sendControl(message: CancelMessage): void {
    if (closed) return;
    if (downReady) {
      if (controls.length >= options.queueLimit) controls.shift();
      controls.push(message);
      return scheduleFlush();
    }
    const poll = takePoll();
    if (poll) return answer(poll, [message], []);
    // Cancels are advisory: keep a bounded backlog, oldest dropped first.
    if (controls.length >= options.queueLimit) controls.shift();
    controls.push(message);
  }

  /**
   * The client is gone: queued requests get `tunnel_offline`, its upgraded connections close, and
   * requests it was handling get `inFlight` (when it vanished mid-way; a lapsed lease has none).
   */
  function goOffline(inFlight?: HttpError): void {
    offline = true;
    for (const ex of [...pending.values()]) {
      if (ex.state === 'upgraded') closeUpgraded(ex);
      else if (inFlight && ex.state === 'dispatched') fail(ex, inFlight);
    }
    for (const ex of [...queue]) fail(ex, offlineFailure());
  }

  /** Answers every waiting poll with `reason` (draining, closing); a downstream just ends. */
  function answerPolls(reason: HttpError): void {
    const d = down;
    down = undefined;
    downReady = false;
    d?.end();
    for (const poll of [...polls]) {
      polls.delete(poll);
      if (poll.timer) clearTimeout(poll.timer);
      sendError(poll.req, poll.res, reason, { fallback: 'json' });
    }
  }

  /** Every poll of the client dropped without an answer: the client probably died. */
  function pollLost(): void {
    if (closed || polls.size > 0 || down || lostTimer) return;
    const lostAt = stats.lastSeen;
    lostTimer = setTimeout(() => {
      lostTimer = undefined;
      if (closed || polls.size > 0 || down || stats.lastSeen !== lostAt) return;
      logger.log('warn', 'tunnel.client_lost', { inFlight: pending.size, queued: queue.length });
      goOffline(new HttpError('client_disconnected', `The developer's devtunnel client disconnected while handling this request. Retry once it is back.`));
    }, options.disconnectGraceMs);
    lostTimer.unref();
  }

  return {
    id: init.id,
    clientId: init.clientId,
    instance: init.instance,
    name: init.name,
    port: init.port,
    localPort: init.localPort,
    version: init.version,
    features: init.features,
    stats,
    state,
    isActive: () => state() === 'connected',
    get pollsWaiting() {
      return polls.size;
    },
    get queued() {
      return queue.length;
    },
    get inFlight() {
      return awaiting();
    },
    get upgraded() {
      return upgraded;
    },
    get streaming() {
      return downReady;
    },
    get upstreams() {
      return ups.size;
    },
    seen,

    markUpgraded(ex) {
      clearTimer(ex);
      ex.state = 'upgraded';
      upgraded++;
    },

    findUpgrade(id) {
      const ex = pending.get(id);
      if (!ex?.upgrade) return new HttpError('unknown_request', 'No upgrade with this id is in progress on this tunnel.');
      if (ex.upgrade.upstream) return new HttpError('request_answered', 'This upgrade already has its upstream.');
      seen();
      return ex;
    },
    verifySecret: deps.verifySecret,

    submit(ex) {
      stats.requests++;
      stats.lastRequestAt = now();
      if (draining) return fail(ex, draining);
      if (state() !== 'connected') return fail(ex, offlineFailure());
      if (ex.upgrade) {
        if (upgrades.size >= options.maxUpgrades) {
          return fail(ex, new HttpError('too_many_upgrades', `The tunnel "${init.name}" already carries ${options.maxUpgrades} upgraded connections (WebSockets). Close some, or raise --max-upgrades on the server.`, { retryAfter: 5 }));
        }
        upgrades.add(ex);
      }
      // Older clients get each request as it comes; batching clients get everything that
      // arrived in this event-loop turn in one poll answer (see `flush`).
      if (controls.length === 0 && !batching) {
        const poll = takePoll();
        if (poll) return answer(poll, [], [ex]);
      }
      if (queue.length >= options.queueLimit) {
        return fail(ex, new HttpError('queue_full', `The tunnel "${init.name}" already has ${options.queueLimit} requests waiting for the developer's machine. Retry in a moment.`, { retryAfter: 1 }));
      }
      queue.push(ex);
      // A poll or the downstream takes it in this turn's flush, which gives a wait deadline to
      // whatever stays.
      if (batching && (polls.size > 0 || downReady)) return scheduleFlush();
      awaitPoll(ex);
    },

    addPoll(req, res) {
      seen();
      if (closed) {
        sendError(req, res, new HttpError('unknown_tunnel', 'This tunnel is closed; register again.'), { fallback: 'json' });
        return;
      }
      if (draining) {
        sendError(req, res, draining, { fallback: 'json' });
        return;
      }
      revive();
      const poll: Poll = { req, res, timer: undefined };
      const work = takeWork(batching ? MAX_BATCH : 1);
      if (work) return answer(poll, work.cancels, work.batch);
      if (polls.size >= options.maxPolls) {
        sendError(req, res, new HttpError('too_many_polls', `This tunnel already has ${options.maxPolls} polls waiting; the client should not open more.`), { fallback: 'json' });
        return;
      }
      polls.add(poll);
      poll.timer = setTimeout(() => {
        if (!polls.delete(poll)) return;
        res.writeHead(204, { 'cache-control': 'no-store' });
        res.end();
      }, options.pollTimeoutMs);
      res.once('close', () => {
        if (!polls.delete(poll)) return;
        if (poll.timer) clearTimeout(poll.timer);
        // Dropped without an answer from us: the client went away (or closed its end).
        pollLost();
      });
    },

    attachDownstream(req, res) {
      seen();
      if (closed || draining) {
        sendError(req, res, draining ?? new HttpError('unknown_tunnel', 'This tunnel is closed; register again.'), { fallback: 'json' });
        return;
      }
      const old = down;
      down = res;
      downReady = false;
      downKey = randomId();
      old?.end();
      const asked = Number(req.headers[HEADER.window]);
      window = Number.isInteger(asked) && asked > 0 ? Math.min(asked, MAX_WINDOW) : options.maxPolls * MAX_BATCH;
      // No buffering on the way (nginx honours X-Accel-Buffering): a frame must leave at once.
      res.writeHead(200, { 'content-type': CONTENT_TYPE_FRAME, 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
      res.write(encodeHead({ type: 'stream', upstream: ups.size > 0, key: downKey }));
      const beat = setInterval(() => res.write(HEARTBEAT), options.pollTimeoutMs);
      res.once('close', () => {
        clearInterval(beat);
        // Broken, not ended by us: what it carried may not have reached the client.
        if (!res.writableFinished) {
          for (const ex of pending.values()) if (ex.via === res && ex.state === 'dispatched' && !ex.upgrade && SAFE_METHODS.has(ex.message.method)) suspects.add(ex);
        }
        if (down !== res) return;
        down = undefined;
        downReady = false;
        pollLost();
      });
    },

    confirmDownstream(key) {
      if (!down || downReady || key !== downKey) return;
      downReady = true;
      revive();
      if (queue.length > 0 || controls.length > 0) scheduleFlush();
    },

    attachUpstream(req, res) {
      seen();
      if (closed) return new HttpError('unknown_tunnel', 'This tunnel is closed; register again.');
      if (ups.size >= options.maxPolls) return new HttpError('too_many_polls', `This tunnel already has ${options.maxPolls} upstreams open; the client should not open more.`);
      const up = { req, res };
      ups.add(up);
      res.once('close', () => ups.delete(up));
      return undefined;
    },

    upstreamReady() {
      if (down && !down.destroyed) down.write(encodeHead({ type: 'stream', upstream: true }));
    },

    take(id) {
      const ex = pending.get(id);
      if (!ex) return new HttpError('unknown_request', 'No request with this id is waiting for an answer on this tunnel (answered already, abandoned, or never issued).');
      if (ex.state !== 'dispatched') return new HttpError('request_answered', 'This request is already being answered.');
      seen();
      clearTimer(ex);
      ex.state = 'responding';
      ex.respondedAt = now();
      return ex;
    },

    settle,
    fail,

    abandon(ex) {
      const was = ex.state;
      if (was === 'done') return;
      settle(ex);
      ex.code ??= 'browser_gone';
      if (was === 'dispatched') sendControl({ type: 'cancel', id: ex.id });
      // While the client uploads the answer, its upload is answered 410 browser_gone (respond.ts,
      // once the head is read, or as the browser's connection closes): the client then stops and
      // reports the browser as gone, where a destroyed upload looked like its own failure.
      ex.upgrade?.close();
    },

    sweep(t) {
      // A downstream whose client went silent (a network that drops packets without a word):
      // cut it, and the tunnel goes offline like one whose polls dropped.
      if (down && polls.size === 0 && t - stats.lastSeen > options.leaseMs) down.destroy();
      // The client stopped polling: its queue waits in vain, its upgraded connections are dead.
      if (!closed && !offline && polls.size === 0 && awaiting() === 0 && t - stats.lastSeen > options.leaseMs) goOffline();
    },

    drain(reason) {
      draining = reason;
      for (const ex of [...queue]) fail(ex, reason);
      answerPolls(reason);
    },

    close(reason, pendingReason = reason) {
      if (closed) return;
      closed = true;
      if (lostTimer) clearTimeout(lostTimer);
      answerPolls(reason);
      for (const up of [...ups]) sendError(up.req, up.res, reason, { fallback: 'json', close: true });
      for (const ex of [...queue]) fail(ex, pendingReason);
      for (const ex of [...pending.values()]) {
        if (ex.state === 'responding' || ex.state === 'upgraded') {
          settle(ex);
          ex.upload?.destroy();
          ex.res?.destroy();
          ex.upgrade?.close();
        } else fail(ex, pendingReason);
      }
      controls.length = 0;
    },
  };
}
