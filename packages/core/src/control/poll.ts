import type { Readable } from 'node:stream';
import { call, discard, type CallAnswer } from '../http-call';
import { clientPollDeadlineMs, createHeadReader, FrameError, MAX_BATCH, parseServerMessage, paths, readFrameHead, type ServerMessage } from '../protocol';
import { answerError } from './answer-error';
import { bearer, WHOLE_ANSWER, type Endpoint } from './dispatcher';
import type { Session } from './session-calls';

/**
 * A long poll, and the reading of what a poll (or a response upload asked to act as one) brings
 * back. It is per browser request on a tunnel without a downstream, so it goes through `call()`
 * (http-call.ts), not undici's `request()`.
 */

/**
 * What a poll, or a response upload asked to act as a poll, brought back: one message, or several
 * (feature `batch`); only the last may have a body: the rest of the stream `body`, or, when the
 * whole answer was small, the bytes `body`.
 */
export type PollResult = { messages: ServerMessage[]; body: Readable | Uint8Array } | null;

/** Lets go of a poll answer's body nobody will read, so its connection returns to the pool. */
export function release(result: PollResult): void {
  if (!result || result.body instanceof Uint8Array) return;
  // A failure while it drains concerns nobody; unheard, it would crash the host process.
  result.body.on('error', () => {});
  result.body.resume();
}

export function createPoll(endpoint: Endpoint): (session: Session) => Promise<PollResult> {
  const { dispatcher, origin, base } = endpoint;
  return async function poll(session) {
    const res = await call(dispatcher, {
      origin,
      path: base + paths.poll(session.id),
      method: 'GET',
      headers: { authorization: bearer(session.secret) },
      headersTimeout: clientPollDeadlineMs(session.timing.pollTimeoutMs),
      bodyTimeout: session.timing.bodyIdleTimeoutMs,
      bufferUpTo: WHOLE_ANSWER,
    });
    return pollAnswer(res, 'poll');
  };
}

/** A poll answer (or an upload's answer acting as one): whole when small, else a stream. */
export function pollAnswer(res: CallAnswer, what: string): PollResult | Promise<PollResult> {
  if (res.statusCode === 204) {
    if (res.body) discard(res.body);
    return null;
  }
  if (res.statusCode !== 200) {
    if (res.body) discard(res.body); // an error page too large to read: the status says enough
    return Promise.reject(answerError(res.statusCode, res.headers, res.bytes?.toString() ?? '', what));
  }
  if (res.bytes) return framesOf(res.bytes);
  const body = res.body!;
  return streamedMessages(body).catch((error: unknown) => {
    // A bad frame: the rest of the answer means nothing, and its connection must not stay held.
    discard(body);
    throw error;
  });
}

/** Splits a whole poll answer into its messages; the bytes after the last head are its body. */
export function framesOf(bytes: Buffer): { messages: ServerMessage[]; body: Uint8Array } {
  const messages: ServerMessage[] = [];
  let rest: Uint8Array = bytes;
  do {
    const got = createHeadReader().push(rest);
    if (!got) throw new FrameError('the poll answer ended inside a frame head');
    const message = parseServerMessage(got.head);
    messages.push(message);
    rest = got.rest;
    if (message.type === 'request' && message.bodyLength !== 0) {
      if (message.bodyLength !== rest.length) throw new FrameError(`the poll answer carries ${rest.length} body bytes, not ${String(message.bodyLength)}`);
      break;
    }
  } while (rest.length > 0 && messages.length < MAX_BATCH);
  return { messages, body: rest };
}

/** The messages at the start of a streamed poll answer; the rest of the stream is the last one's body. */
async function streamedMessages(body: Readable): Promise<PollResult> {
  const messages = [parseServerMessage(await readFrameHead(body))];
  // A batch: more heads may follow as long as the last one carries no body.
  for (let last = messages[0]!; messages.length < MAX_BATCH && (last.type === 'cancel' || last.bodyLength === 0); ) {
    const head = await readFrameHead(body, undefined, true);
    if (head === undefined) break;
    last = parseServerMessage(head);
    messages.push(last);
  }
  return { messages, body };
}
