import { createEndpoint } from './dispatcher';
import { createPoll, type PollResult } from './poll';
import { createSessionCalls, type Session, type SessionCalls } from './session-calls';
import { createStreamsIO, type StreamsIO } from './streams-io';
import { createUploads, type Uploads } from './uploads';

/**
 * The client's side of the control API: register, poll, respond, check, deregister, and the
 * streams. Each call is one HTTP/1.1 request on one keep-alive pool (dispatcher.ts). Two call
 * styles remain, each where it fits: the per-request calls (polls, uploads, the streams) use the
 * project's `call()` (http-call.ts), about a third of the CPU of undici's `request()`; the few
 * calls of a session's life (session-calls.ts) and an upgrade's upstream keep `request()` for its
 * whole-body readers and AbortSignal.
 */

export { ServerAnswerError } from './answer-error';
export { release, type PollResult } from './poll';
export type { Session } from './session-calls';
export type { Downstream, Upstream } from './streams-io';
export { batchFrames, type BatchItem } from './uploads';

export interface ControlChannel extends SessionCalls, Uploads, StreamsIO {
  poll(session: Session): Promise<PollResult>;
  /** Ends every call now, held polls included. */
  close(): Promise<void>;
}

export interface ControlOptions {
  server: URL;
  token: string;
  proxy: string | false | undefined;
  version: string;
}

export function createControlChannel(options: ControlOptions): ControlChannel {
  const endpoint = createEndpoint(options.server, options.proxy);
  const { register, check, deregister } = createSessionCalls(endpoint, options);
  const { respond, respondBatch } = createUploads(endpoint);
  const { openDownstream, openUpstream, upstream } = createStreamsIO(endpoint);
  return {
    register,
    check,
    deregister,
    poll: createPoll(endpoint),
    respond,
    respondBatch,
    openDownstream,
    openUpstream,
    upstream,
    async close() {
      // destroy(), not close(): pending polls must end now, not after their 25 s.
      await endpoint.dispatcher.destroy();
    },
  };
}
