import type { IncomingMessage, ServerResponse } from 'node:http';
import { MAX_BATCH } from '@devtunnel/core/protocol';
import { systemClock } from '../clock';
import { sendError } from '../error-response';
import { createPushCache } from '../push-cache';
import { SERVED_BY } from '../routes/selection';
import { HttpError, offlineError } from '../errors';
import type { Exchange } from '../exchange';
import { createDispatcher, httpPoll, type Poll } from './dispatch';
import { openDownstream, type Downstream } from './downstream';
import { createLiveness } from './liveness';
import { createPending } from './pending';
import { createPollSet } from './polls';
import { createWorkQueue } from './queue';
import { createStats } from './stats';
import type { TunnelDeps, TunnelInit, TunnelSession, TunnelState } from './types';

/**
 * One registered tunnel: where a browser request meets its client. The parts are one concept
 * each, and all but the HTTP edge are free of sockets: the queue of requests and cancels
 * (queue.ts), the polls held (polls.ts), the requests handed over with their deadlines
 * (pending.ts), whether the client lives (liveness.ts); the downstream (downstream.ts) and poll
 * answers (poll-answer.ts) write HTTP. Every wait has a timer; every map entry has a way out.
 */

export type { TunnelDeps, TunnelInit, TunnelSession, TunnelState } from './types';
export type { RecentRequest, TunnelStats } from './stats';
export { remember } from './stats';

/**
 * Safe methods (RFC 9110 §9.2.1): a request of these that a broken downstream may have lost is sent
 * again, as browsers and proxies retry them on a broken connection; never one that changes state.
 */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

const browserGone = (ex: Exchange) => (ex.upgrade ? ex.upgrade.socket.destroyed : ex.res!.destroyed);

export function createTunnelSession(init: TunnelInit, deps: TunnelDeps): TunnelSession {
  const { options, logger } = deps;
  const clock = deps.clock ?? systemClock(options.now);
  const live = createLiveness(clock, { leaseMs: options.leaseMs, graceMs: options.disconnectGraceMs });
  const stats = createStats(clock.now(), () => live.lastSeen);
  const polls = createPollSet<Poll>(clock, options.pollTimeoutMs);
  const queue = createWorkQueue<Exchange>(options.queueLimit, browserGone);
  const pending = createPending<Exchange>(clock, options.deadlineMs, (ex) => {
    fail(ex, new HttpError('tunnel_timeout', `The developer's machine did not answer within ${Math.round(options.deadlineMs / 1000)} s. The local app may be stuck, or the devtunnel client overloaded.`));
    sendControl({ type: 'cancel', id: ex.id });
  });
  let draining: HttpError | undefined;
  /**
   * Held while its replica rolls (several replicas): requests wait here, none goes to the client,
   * until the tunnel moves to another replica, which they are then sent to (registry).
   */
  let holding = false;
  let closed = false;
  /** Upgrade requests admitted and not over (counted against maxUpgrades). */
  const upgrades = new Set<Exchange>();
  /** The client's downstream (feature `stream`), while one is open. */
  let down: Downstream | undefined;
  /** The client's upstreams (feature `stream`) open now. */
  const ups = new Set<{ req: IncomingMessage; res: ServerResponse }>();
  const batching = init.features.has('batch');
  const pushes = deps.pushes && init.features.has('push') ? createPushCache(clock, deps.pushes.limits, deps.pushes.budget, deps.pushes.events) : undefined;

  const state = (): TunnelState => (closed ? 'closed' : live.state(polls.size > 0 || down !== undefined, pending.awaiting() > 0));
  const offlineFailure = () => offlineError(init.port, init.name);
  const dispatcher = createDispatcher({
    name: init.name,
    clock,
    options,
    polls,
    queue,
    pending,
    downstream: () => (down?.ready ? down : undefined),
    stopped: () => closed || draining !== undefined || holding,
    closed: () => closed,
    fail,
  });
  const { revive, sendControl, scheduleFlush, takeWork, answer } = dispatcher;

  function fail(ex: Exchange, error: HttpError): void {
    if (ex.state === 'done') return;
    settle(ex);
    ex.code = error.code;
    if (ex.upgrade) return ex.upgrade.fail(error);
    // A half-read upload leaves the connection in an unknown state: close it after the answer.
    sendError(ex.req, ex.res!, error, { context: `tunnel ${init.name}, port ${init.port}`, close: !ex.req.complete, headers: ex.servedBy === undefined ? { 'x-request-id': ex.requestId } : { 'x-request-id': ex.requestId, [SERVED_BY]: ex.servedBy } });
  }

  function settle(ex: Exchange): void {
    if (ex.state === 'queued') queue.remove(ex);
    if (ex.upgrade) upgrades.delete(ex);
    pending.forget(ex);
    ex.state = 'done';
    // A full stream window kept requests queued: one answer makes room for them.
    if (down?.ready && queue.length > 0) scheduleFlush();
  }

  /**
   * The client is gone: queued requests get `tunnel_offline`, its upgraded connections close, and
   * requests it was handling get `inFlight` (when it vanished mid-way; a lapsed lease has none).
   */
  function goOffline(inFlight?: HttpError): void {
    live.markOffline();
    for (const ex of [...pending.values()]) {
      if (ex.state === 'upgraded') {
        settle(ex);
        ex.upgrade?.close();
      } else if (inFlight && ex.state === 'dispatched') fail(ex, inFlight);
    }
    for (const ex of [...queue.requests()]) fail(ex, offlineFailure());
  }

  /** Answers every waiting poll with `reason` (draining, closing); a downstream just ends. */
  function answerPolls(reason: HttpError): void {
    const d = down;
    down = undefined;
    d?.end();
    for (const poll of polls.takeAll()) sendError(poll.req, poll.res, reason, { fallback: 'json' });
  }

  /** Every poll of the client dropped without an answer: the client probably died. */
  function pollLost(): void {
    const back = () => closed || polls.size > 0 || down !== undefined;
    if (back()) return;
    live.lost(back, () => {
      logger.log('warn', 'tunnel.client_lost', { inFlight: pending.size, queued: queue.length });
      goOffline(new HttpError('client_disconnected', `The developer's devtunnel client disconnected while handling this request. Retry once it is back.`));
    });
  }

  const closedTunnel = () => new HttpError('unknown_tunnel', 'This tunnel is closed; register again.');

  return {
    id: init.id,
    clientId: init.clientId,
    instance: init.instance,
    name: init.name,
    port: init.port,
    localPort: init.localPort,
    version: init.version,
    features: init.features,
    route: init.route,
    stats,
    pushes,
    state,
    isActive: () => state() === 'connected',
    get pollsWaiting() {
      return polls.size;
    },
    get queued() {
      return queue.length;
    },
    get inFlight() {
      return pending.awaiting();
    },
    get upgraded() {
      return pending.size - pending.awaiting();
    },
    get streaming() {
      return down?.ready ?? false;
    },
    get upstreams() {
      return ups.size;
    },
    seen: live.seen,
    markUpgraded: (ex) => pending.markUpgraded(ex),

    findUpgrade(id) {
      const ex = pending.get(id);
      if (!ex?.upgrade) return new HttpError('unknown_request', 'No upgrade with this id is in progress on this tunnel.');
      if (ex.upgrade.upstream) return new HttpError('request_answered', 'This upgrade already has its upstream.');
      live.seen();
      return ex;
    },
    verifySecret: deps.verifySecret,

    submit(ex) {
      stats.requests++;
      stats.lastRequestAt = clock.now();
      if (draining && !holding) return fail(ex, draining);
      if (state() !== 'connected') return fail(ex, offlineFailure());
      if (ex.upgrade) {
        if (upgrades.size >= options.maxUpgrades) {
          return fail(ex, new HttpError('too_many_upgrades', `The tunnel "${init.name}" already carries ${options.maxUpgrades} upgraded connections (WebSockets). Close some, or raise --max-upgrades on the server.`, { retryAfter: 5 }));
        }
        upgrades.add(ex);
      }
      dispatcher.enqueue(ex, batching);
    },

    addPoll(req, res) {
      live.seen();
      // Closed first: a tunnel drained, then closed, is gone (404), not coming back (503).
      if (closed || draining) return sendError(req, res, closed ? closedTunnel() : draining!, { fallback: 'json' });
      revive();
      const poll = httpPoll(req, res);
      const work = takeWork(batching ? MAX_BATCH : 1);
      if (work) return answer(poll, work.cancels, work.batch);
      if (polls.size >= options.maxPolls) {
        return sendError(req, res, new HttpError('too_many_polls', `This tunnel already has ${options.maxPolls} polls waiting; the client should not open more.`), { fallback: 'json' });
      }
      polls.add(poll);
      // Dropped without an answer from us: the client went away (or closed its end).
      res.once('close', () => polls.remove(poll) && pollLost());
    },

    attachDownstream(req, res) {
      live.seen();
      if (closed || draining) return sendError(req, res, draining ?? closedTunnel(), { fallback: 'json' });
      const old = down;
      const d = openDownstream(req, res, {
        maxPolls: options.maxPolls,
        heartbeatMs: options.pollTimeoutMs,
        upstream: ups.size > 0,
        onClose(broken) {
          // Broken, not ended by us: what it carried may not have reached the client.
          if (broken) for (const ex of pending.values()) if (ex.via === res && ex.state === 'dispatched' && !ex.upgrade && SAFE_METHODS.has(ex.message.method)) pending.suspect(ex);
          if (down !== d) return;
          down = undefined;
          pollLost();
        },
      });
      down = d;
      old?.end();
    },

    confirmDownstream(key) {
      if (!down || down.ready || key !== down.key) return;
      down.ready = true;
      revive();
      if (queue.length > 0 || queue.cancels > 0) scheduleFlush();
    },

    attachUpstream(req, res) {
      live.seen();
      if (closed) return closedTunnel();
      if (ups.size >= options.maxPolls) return new HttpError('too_many_polls', `This tunnel already has ${options.maxPolls} upstreams open; the client should not open more.`);
      const up = { req, res };
      ups.add(up);
      res.once('close', () => ups.delete(up));
      return undefined;
    },

    upstreamReady: () => down?.upstreamOpen(),

    take(id) {
      const ex = pending.get(id);
      if (!ex) return new HttpError('unknown_request', 'No request with this id is waiting for an answer on this tunnel (answered already, abandoned, or never issued).');
      if (ex.state !== 'dispatched') return new HttpError('request_answered', 'This request is already being answered.');
      live.seen();
      pending.disarm(ex);
      ex.state = 'responding';
      ex.respondedAt = clock.now();
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
      pushes?.sweep(t);
      // A downstream whose client went silent (a network that drops packets without a word):
      // cut it, and the tunnel goes offline like one whose polls dropped.
      if (down && polls.size === 0 && live.lapsed(t)) down.destroy();
      // The client stopped polling: its queue waits in vain, its upgraded connections are dead.
      if (!closed && !live.offline && polls.size === 0 && pending.awaiting() === 0 && live.lapsed(t)) goOffline();
    },

    hold() {
      holding = true;
    },

    moveOn(reason) {
      draining = reason;
      answerPolls(reason);
    },

    get moving() {
      return holding ? draining : undefined;
    },

    takeQueued() {
      const waiting = [...queue.requests()];
      for (const ex of waiting) settle(ex);
      return waiting;
    },

    drain(reason) {
      holding = false;
      draining = reason;
      for (const ex of [...queue.requests()]) fail(ex, reason);
      answerPolls(reason);
    },

    close(reason, pendingReason = reason) {
      if (closed) return;
      closed = true;
      live.stop();
      pushes?.clear();
      answerPolls(reason);
      for (const up of [...ups]) sendError(up.req, up.res, reason, { fallback: 'json', close: true });
      for (const ex of [...queue.requests()]) fail(ex, pendingReason);
      for (const ex of [...pending.values()]) {
        if (ex.state === 'responding' || ex.state === 'upgraded') {
          settle(ex);
          ex.upload?.destroy();
          ex.res?.destroy();
          ex.upgrade?.close();
        } else fail(ex, pendingReason);
      }
      queue.clear();
    },
  };
}
