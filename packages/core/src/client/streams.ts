import { createBackoff } from '../backoff';
import { ServerAnswerError, type ControlChannel, type Downstream, type Session, type Upstream } from '../control';
import type { Logger } from '../logger';
import type { DownstreamMessage, ServerMessage } from '../protocol';

/**
 * The client's streams (feature `stream`): a downstream that brings requests without a poll per
 * request, and an upstream that takes answers without an upload per answer. Long polls remain the
 * way that always works: each stream is used only once it proved that nothing on the way holds its
 * bytes back (the downstream: its first notice arrived and the server got its key back; the
 * upstream: the server announced its first bytes), and the client goes back to polls whenever one
 * is down.
 */
export interface StreamLink {
  /** Requests without a body arrive on the downstream now. */
  readonly downstreamReady: boolean;
  /** Answers may go up the upstream now. */
  readonly upstreamReady: boolean;
  /** Sends answer frames up the upstream (only while `upstreamReady`). */
  send(frames: Uint8Array): void;
  /** Closes both streams (what was sent up still arrives) and says nothing more. Idempotent. */
  close(): void;
}

export interface StreamLinkDeps {
  control: ControlChannel;
  session: Session;
  /** Requests the client takes at once (its `maxInFlight`): the server sends no more. */
  window: number;
  log: Logger;
  /** Requests and cancels from the downstream, those of one read together. */
  onMessages(messages: ServerMessage[]): void;
  /** A stream became ready or went down: the client adjusts its polls. */
  onChange(): void;
  /**
   * A stream did not prove itself within {@link STREAM_PROOF_MS}: something on the way (a proxy
   * that buffers) holds its bytes back. The link stops using it (a blocked downstream closes the
   * link); the client remembers.
   */
  onBlocked(which: 'downstream' | 'upstream'): void;
  /** The upstream was found blocked before: do not try it. */
  upstreamBlocked: boolean;
  /**
   * The upstream broke: these frames (each what one `send()` took) went up in the last moments
   * and may not have arrived. Sending them again is safe: the server skips an answer whose request
   * was answered already.
   */
  onUnsure(frames: Uint8Array[]): void;
}

/** What an upstream that breaks may have lost: what it took in this long, at most this much. */
const UNSURE_MS = 2_000;
const UNSURE_BYTES = 1024 * 1024;

/** One try at a downstream: its stream once the server accepted it. */
interface Attempt {
  stream: Downstream | undefined;
}

/** How long a new stream has to prove that its bytes pass: the server's first notice on it. */
export const STREAM_PROOF_MS = 5_000;

export function createStreamLink(deps: StreamLinkDeps): StreamLink {
  const { control, session, log } = deps;
  let closed = false;
  /** The downstream being opened or in use. */
  let attempt: Attempt | undefined;
  let downReady = false;
  let up: Upstream | undefined;
  let upReady = false;
  let upBlocked = deps.upstreamBlocked;
  let proof: NodeJS.Timeout | undefined;
  let upProof: NodeJS.Timeout | undefined;
  let retry: NodeJS.Timeout | undefined;
  /** What the current upstream took lately (see {@link StreamLinkDeps.onUnsure}). */
  let recent: Array<{ at: number; frames: Uint8Array }> = [];
  let recentBytes = 0;
  // A stream that ended is opened again after a pause that grows while it keeps failing.
  const downBackoff = createBackoff(1_000, 30_000);
  const upBackoff = createBackoff(1_000, 30_000);

  function openDown(): void {
    retry = undefined;
    if (closed) return;
    const a: Attempt = { stream: undefined };
    attempt = a;
    proof = setTimeout(() => {
      if (closed || downReady || attempt !== a) return;
      deps.onBlocked('downstream');
      close();
    }, STREAM_PROOF_MS);
    control.openDownstream(session, deps.window, (messages) => onMessages(a, messages)).then(
      (d) => {
        a.stream = d;
        d.done.then(() => downEnded(a, undefined), (error: unknown) => downEnded(a, error));
        if (attempt !== a) d.close();
      },
      (error: unknown) => downEnded(a, error),
    );
  }

  function onMessages(a: Attempt, messages: DownstreamMessage[]): void {
    if (attempt !== a) return;
    let work: ServerMessage[] | undefined;
    for (const m of messages) {
      if (m.type !== 'stream') {
        (work ??= []).push(m);
        continue;
      }
      if (m.key !== undefined) {
        // The first notice: the server hands requests to this downstream once it has its key back.
        control.check(session, m.key).then(
          () => downConfirmed(a),
          (error: unknown) => downEnded(a, error),
        );
      } else if (m.upstream && up && !upReady) {
        // The notice that follows the first bytes of our upstream (the first one, the downstream's
        // opening notice, comes before the upstream exists).
        upReady = true;
        clearTimeout(upProof);
        upBackoff.reset();
        log.debug('devtunnel: upstream open');
        deps.onChange();
      }
    }
    if (work) deps.onMessages(work);
  }

  function downConfirmed(a: Attempt): void {
    if (closed || downReady || attempt !== a) return;
    downReady = true;
    clearTimeout(proof);
    downBackoff.reset();
    log.debug('devtunnel: downstream open');
    deps.onChange();
    if (!upBlocked) openUp();
  }

  /** The downstream of attempt `a` ended, failed, or was not confirmed: polls, and another later. */
  function downEnded(a: Attempt, error: unknown): void {
    if (attempt !== a) return;
    attempt = undefined;
    clearTimeout(proof);
    a.stream?.close();
    const was = downReady;
    downReady = false;
    endUp();
    if (closed) return;
    if (error) log.debug(`devtunnel: downstream ended: ${(error as Error).message}`);
    if (was) deps.onChange();
    retry = setTimeout(openDown, downBackoff.next());
  }

  function openUp(): void {
    retry = undefined;
    if (closed || up || !downReady || upBlocked) return;
    const u = control.openUpstream(session);
    up = u;
    recent = [];
    recentBytes = 0;
    const mine = recent;
    upProof = setTimeout(() => {
      if (up !== u || upReady) return;
      upBlocked = true;
      deps.onBlocked('upstream');
      endUp();
    }, STREAM_PROOF_MS);
    u.done.then(
      () => upEnded(u, undefined),
      (error: unknown) => {
        // The connection broke under it (the server did not answer), even after we ended it: the
        // last answers it took may be lost.
        const unsure = mine.filter((r) => performance.now() - r.at <= UNSURE_MS).map((r) => r.frames);
        if (!closed && !(error instanceof ServerAnswerError) && unsure.length > 0) deps.onUnsure(unsure);
        upEnded(u, error);
      },
    );
  }

  /** Ends our upstream, if any, cleanly. */
  function endUp(): void {
    clearTimeout(upProof);
    const u = up;
    up = undefined;
    u?.end();
    if (upReady) {
      upReady = false;
      if (!closed) deps.onChange();
    }
  }

  function upEnded(u: Upstream, error: unknown): void {
    if (up !== u) return;
    clearTimeout(upProof);
    up = undefined;
    const was = upReady;
    upReady = false;
    if (error) log.debug(`devtunnel: upstream ended: ${(error as Error).message}`);
    if (closed) return;
    if (was) deps.onChange();
    if (downReady && !upBlocked) retry = setTimeout(openUp, upBackoff.next());
  }

  function close(): void {
    if (closed) return;
    closed = true;
    clearTimeout(proof);
    clearTimeout(retry);
    endUp();
    downReady = false;
    attempt?.stream?.close();
    attempt = undefined;
  }

  openDown();

  return {
    get downstreamReady() {
      return downReady;
    },
    get upstreamReady() {
      return upReady;
    },
    send(frames) {
      if (!up) return;
      up.write(frames);
      // Kept a moment, in case the connection breaks before they arrive (bounded in time and size).
      const at = performance.now();
      recent.push({ at, frames });
      recentBytes += frames.length;
      while (recent.length > 1 && (at - recent[0]!.at > UNSURE_MS || recentBytes > UNSURE_BYTES)) recentBytes -= recent.shift()!.frames.length;
    },
    close,
  };
}
