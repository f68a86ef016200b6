import type { BatchItem, PollResult, Session } from '../control';
import type { ClientContext } from './context';
import { createStreamLink } from './streams';

/**
 * When the current session's streams (streams.ts) are opened and closed, and what they tell the
 * rest of the client: requests to the handlers, a change to the poll pool, answers they may have
 * lost to the outbox. A stream found blocked (a buffering proxy on the way) is not tried again in
 * this client's life; long polls do its work.
 */
export interface LinkWiring {
  /** Opens the streams of session `s` when both sides can, and nothing blocked them. */
  up(s: Session): void;
  /** Closes the streams, if any. */
  down(): void;
}

export interface LinkWiringDeps {
  dispatch(s: Session, result: NonNullable<PollResult>): void;
  topUp(): void;
  resend(s: Session, answers: BatchItem[] | Uint8Array): void;
}

/** The body of a message that has none (requests from the downstream). */
const EMPTY = new Uint8Array(0);

export function createLinkWiring(ctx: ClientContext, deps: LinkWiringDeps): LinkWiring {
  const { o, log, control } = ctx;
  const { dispatch, topUp, resend } = deps;
  let streamsBlocked = false;
  let upstreamBlocked = false;

  return {
    up(s) {
      if (ctx.link || o.transport !== 'auto' || streamsBlocked || !s.features?.includes('stream')) return;
      ctx.link = createStreamLink({
        control,
        session: s,
        window: o.maxInFlight,
        log,
        upstreamBlocked,
        onMessages: (messages) => {
          if (s === ctx.session && !ctx.closed) dispatch(s, { messages, body: EMPTY });
        },
        onChange: topUp,
        onUnsure: (frames) => {
          for (const batch of frames) resend(s, batch);
        },
        onBlocked: (which) => {
          log.warn(`devtunnel: the way to ${o.server.origin} holds streamed ${which === 'downstream' ? 'answers' : 'uploads'} back (a buffering proxy?); using ${which === 'downstream' ? 'long polls' : 'an upload per answer'} instead, which works but is slower.`);
          if (which === 'downstream') {
            streamsBlocked = true;
            ctx.link = undefined;
          } else upstreamBlocked = true;
          topUp();
        },
      });
    },

    down() {
      const l = ctx.link;
      ctx.link = undefined;
      l?.close();
    },
  };
}
