import { ServerAnswerError, type PollResult, type Session } from '../control';
import { stopped } from './connect';
import type { ClientContext } from './context';

/**
 * Keeps enough polls on the server. A request being handled counts as a poll to come: its
 * response upload goes back as one (`x-devtunnel-poll`), so under load the client sends two
 * requests per browser request (the local one and the upload), not three. A few polls always
 * wait idle anyway, so a burst or a long request (SSE) never leaves the server without one.
 */
export interface PollPool {
  /** Opens the polls that are missing now (and the streams, when they can be tried). */
  topUp(): void;
  /** How many polls (or uploads acting as polls) should wait on the server. */
  pollTarget(): number;
  /** Work arrived: the tunnel is not quiet (see {@link pollsToOpen}). */
  busy(): void;
}

export interface PollPoolDeps {
  /** Hands a poll answer's messages to the handlers. */
  dispatch(s: Session, result: NonNullable<PollResult>): void;
  /** Opens the session's streams if they can be tried. */
  linkUp(s: Session): void;
  fail(failure: unknown): void;
  channelFailed(error: unknown): void;
}

/**
 * How many polls to open now, `waiting` being on the server and `active` requests being handled,
 * out of `full` wanted (at most `maxInFlight` in all). A quarter of them, at least one, always
 * wait. When `quiet` (a poll came back empty and no request came since), only that quarter is
 * renewed: a poll answer carries every request queued in its turn (feature `batch`), so a burst on
 * a quiet tunnel still leaves at once, and the other polls come back with it; 500 quiet tunnels
 * cost the server 1,000 poll renewals per poll timeout instead of 4,000. With a downstream
 * (`streaming`), a request being handled does not stand for a poll.
 */
export function pollsToOpen(waiting: number, active: number, full: number, quiet: boolean, streaming: boolean, maxInFlight: number): number {
  const floor = Math.max(1, Math.floor(full / 4));
  const target = quiet ? floor : full;
  let w = waiting;
  if (streaming) {
    while (w < target && w + active < maxInFlight) w++;
  } else {
    while ((w < floor || w + active < target) && w < target && w + active < maxInFlight) w++;
  }
  return w - waiting;
}

export function createPollPool(ctx: ClientContext, deps: PollPoolDeps): PollPool {
  const { o, control } = ctx;
  const { dispatch, linkUp, fail, channelFailed } = deps;
  let quiet = false;

  function pollTarget(): number {
    const polls = Math.min(o.polls, ctx.session?.maxPolls ?? o.polls);
    // With a downstream, polls only carry requests with a body (and prove the client lives).
    return ctx.link?.downstreamReady ? Math.max(1, Math.floor(polls / 4)) : polls;
  }

  function topUp(): void {
    const s = ctx.session;
    if (ctx.closed || ctx.recovering || !s) return;
    linkUp(s);
    for (let n = pollsToOpen(ctx.waiting, ctx.active, pollTarget(), quiet, ctx.link?.downstreamReady === true, o.maxInFlight); n > 0; n--) {
      ctx.waiting++;
      void pollOnce(s);
    }
  }

  async function pollOnce(s: Session): Promise<void> {
    let result: PollResult;
    try {
      result = await control.poll(s);
    } catch (error) {
      ctx.waiting--;
      if (ctx.closed) return;
      if (error instanceof ServerAnswerError && error.serverCode === 'too_many_polls') return;
      if (s !== ctx.session) return;
      const over = stopped(error);
      if (over) fail(over);
      else channelFailed(error);
      return;
    }
    ctx.waiting--;
    // Came back empty: the tunnel was quiet for a whole poll timeout (see pollsToOpen).
    if (result) dispatch(s, result);
    else quiet = true;
    topUp();
  }

  return {
    topUp,
    pollTarget,
    busy() {
      quiet = false;
    },
  };
}
