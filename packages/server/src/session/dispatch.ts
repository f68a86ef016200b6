import type { IncomingMessage, ServerResponse } from 'node:http';
import { encodeFrames, MAX_BATCH, type CancelMessage, type DownstreamMessage } from '@devtunnel/core/protocol';
import type { Clock } from '../clock';
import { HttpError } from '../errors';
import type { Exchange } from '../exchange';
import type { ResolvedServerOptions } from '../options';
import type { Downstream } from './downstream';
import type { Pending } from './pending';
import { answerPoll, type PollAnswerHooks } from './poll-answer';
import type { PollHandle, PollSet } from './polls';
import type { Work, WorkQueue } from './queue';

/** A poll held by the session; its HTTP answer is written at the edge (poll-answer.ts). */
export interface Poll extends PollHandle {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
}

export function httpPoll(req: IncomingMessage, res: ServerResponse): Poll {
  return {
    req,
    res,
    get gone() {
      return res.destroyed;
    },
    idle() {
      res.writeHead(204, { 'cache-control': 'no-store' });
      res.end();
    },
  };
}

/** The parts of a session that requests travel through, and what the session decides. */
export interface DispatchParts {
  /** The tunnel's name, for messages. */
  name: string;
  clock: Clock;
  options: ResolvedServerOptions;
  polls: PollSet<Poll>;
  queue: WorkQueue<Exchange>;
  pending: Pending<Exchange>;
  /** The client's confirmed downstream, if one is open. */
  downstream(): Downstream | undefined;
  /** Closed, draining or held: nothing more is handed over. */
  stopped(): boolean;
  closed(): boolean;
  fail(ex: Exchange, error: HttpError): void;
}

export interface Dispatcher {
  /** Hands requests over: to a waiting poll or the downstream now, else when one comes. */
  enqueue(ex: Exchange, batching: boolean): void;
  /** What a poll should carry now; with a downstream, within the window the client gave. */
  takeWork(limit: number): Work<Exchange> | undefined;
  answer(poll: Poll, cancels: CancelMessage[], batch: Exchange[]): void;
  /** A request a broken answer or downstream may have lost goes to the client again. */
  requeue(ex: Exchange): void;
  /** The client showed it lives: what a broken downstream may have lost goes again. */
  revive(): void;
  sendControl(message: CancelMessage): void;
  scheduleFlush(): void;
}

/**
 * How requests reach the client: the queue, the polls and the downstream, batched per event-loop
 * turn; every request waits for a poll with a bound (`tunnel_busy`).
 */
export function createDispatcher(p: DispatchParts): Dispatcher {
  const { clock, options, polls, queue, pending } = p;
  let flushing = false;
  /** On its way to the client, saying how long it waited here (the inspector's time in the cluster). */
  function handOver(ex: Exchange): void {
    pending.dispatch(ex);
    ex.message.waitedMs = Math.max(0, Math.round(ex.dispatchedAt! - ex.arrivedAt));
  }
  const hooks: PollAnswerHooks = {
    dispatch: handOver,
    requeue,
    fail: (ex, error) => p.fail(ex, error),
    armFromNow: (ex) => pending.arm(ex, clock.now()),
    disarm: (ex) => pending.disarm(ex),
  };
  const answer = (poll: Poll, cancels: CancelMessage[], batch: Exchange[]) => answerPoll(poll.res, cancels, batch, hooks);

  function takeWork(limit: number): Work<Exchange> | undefined {
    // Held (a rolling replica) or draining: requests wait, polls carry nothing.
    if (p.stopped()) return undefined;
    const down = p.downstream();
    return queue.takeWork(limit, down ? down.window - pending.awaiting() : Infinity);
  }

  /**
   * Writes cancels and every queued request without a body to the downstream, in one write.
   * Requests with a body wait for a poll (their body streams as the rest of its answer); so do all
   * requests while the client has its window's worth, or does not read what it was sent.
   */
  function toStream(d: Downstream): void {
    if (d.backedUp) return;
    const heads: DownstreamMessage[] = queue.takeCancels();
    for (const ex of queue.takeBodyless(d.window - pending.awaiting())) {
      handOver(ex);
      ex.via = d.res;
      heads.push(ex.message);
    }
    if (heads.length > 0) d.write(encodeFrames(heads));
  }

  function requeue(ex: Exchange): void {
    if (ex.state !== 'dispatched' || p.closed()) return;
    pending.forget(ex);
    ex.state = 'queued';
    ex.via = undefined;
    const poll = polls.take();
    if (poll) return answer(poll, [], [ex]);
    queue.unshift([ex]);
    pending.arm(ex);
    if (p.downstream()) scheduleFlush();
  }

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
    if (p.stopped()) return;
    const down = p.downstream();
    if (down) toStream(down);
    while (polls.size > 0) {
      const work = takeWork(MAX_BATCH);
      if (!work) break;
      const poll = polls.take();
      if (!poll) {
        // Every waiting poll had died: put the work back, in order, for the next one.
        queue.unshift(work.batch);
        queue.unshiftCancels(work.cancels);
        break;
      }
      answer(poll, work.cancels, work.batch);
    }
    for (const ex of queue.requests()) if (!ex.timer) awaitPoll(ex);
  }

  /** A queued request waits for a poll this long at most (then 503 `tunnel_busy`). */
  function awaitPoll(ex: Exchange): void {
    ex.timer = clock.setTimeout(() => {
      p.fail(ex, new HttpError('tunnel_busy', `No devtunnel client poll picked this request up within ${Math.round(options.waitForPollMs / 1000)} s. The developer's machine is overloaded or its network is slow; retry.`, { retryAfter: 5 }));
    }, options.waitForPollMs);
  }

  return {
    enqueue(ex, batching) {
      // Older clients get each request as it comes; batching clients get everything that
      // arrived in this event-loop turn in one poll answer (see `flush`).
      if (queue.cancels === 0 && !batching) {
        const poll = polls.take();
        if (poll) return answer(poll, [], [ex]);
      }
      if (!queue.push(ex)) {
        return p.fail(ex, new HttpError('queue_full', `The tunnel "${p.name}" already has ${options.queueLimit} requests waiting for the developer's machine. Retry in a moment.`, { retryAfter: 1 }));
      }
      // A poll or the downstream takes it in this turn's flush, which gives a wait deadline to
      // whatever stays.
      if (batching && (polls.size > 0 || p.downstream())) return scheduleFlush();
      awaitPoll(ex);
    },
    takeWork,
    answer,
    requeue,
    revive() {
      if (pending.suspects > 0) for (const ex of pending.takeSuspects()) requeue(ex);
    },
    sendControl(message) {
      if (p.closed()) return;
      if (p.downstream()) {
        queue.pushCancel(message);
        return scheduleFlush();
      }
      const poll = polls.take();
      if (poll) return answer(poll, [message], []);
      // Cancels are advisory: a bounded backlog, oldest dropped first.
      queue.pushCancel(message);
    },
    scheduleFlush,
  };
}
