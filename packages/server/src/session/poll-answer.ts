import type { ServerResponse } from 'node:http';
import { CONTENT_TYPE_FRAME, encodeFrames, type CancelMessage } from '@devtunnel/core/protocol';
import { HttpError } from '../errors';
import type { Exchange } from '../exchange';

/** What answering a poll does to the requests it carries; the session keeps their state. */
export interface PollAnswerHooks {
  /** The request is on its way to the client. */
  dispatch(ex: Exchange): void;
  /** The answer broke before the client had it: the request goes to another poll. */
  requeue(ex: Exchange): void;
  fail(ex: Exchange, error: HttpError): void;
  /** The client's time to answer counts from now (the end of a large upload). */
  armFromNow(ex: Exchange): void;
  disarm(ex: Exchange): void;
}

/**
 * Answers a poll with messages, frame after frame: cancels, then requests, of which only the last
 * may have a body (the browser's upload streams after the heads). The HTTP edge of the session.
 */
export function answerPoll(res: ServerResponse, cancels: CancelMessage[], batch: Exchange[], hooks: PollAnswerHooks): void {
  for (const ex of batch) hooks.dispatch(ex);
  const frames = encodeFrames([...cancels, ...batch.map((ex) => ex.message)]);
  const last = batch[batch.length - 1];
  if (last && last.message.bodyLength !== 0) return streamBody(res, frames, last, hooks);
  res.writeHead(200, { 'content-type': CONTENT_TYPE_FRAME, 'content-length': frames.length, 'cache-control': 'no-store' });
  res.end(frames);
  // Requests without a body can safely go to another poll if this one died under us.
  if (batch.length > 0) res.once('close', () => !res.writableFinished && batch.forEach(hooks.requeue));
}

/** Writes frame heads, then streams the browser's upload as the rest of the poll answer. */
function streamBody(res: ServerResponse, headBytes: Uint8Array, ex: Exchange, hooks: PollAnswerHooks): void {
  const headers: Record<string, string | number> = { 'content-type': CONTENT_TYPE_FRAME, 'cache-control': 'no-store' };
  if (ex.message.bodyLength !== null) headers['content-length'] = headBytes.length + ex.message.bodyLength;
  res.writeHead(200, headers);
  res.write(headBytes);
  const upload = ex.req;
  // A large upload may take longer than the deadline: while it streams only the idle limit
  // applies, and the client's time to answer counts from its end (as the local app's does).
  hooks.disarm(ex);
  upload.once('end', () => {
    if (ex.state === 'dispatched') hooks.armFromNow(ex);
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
        hooks.fail(ex, new HttpError('client_disconnected', `The developer's devtunnel client dropped the connection while receiving this request's body. Retry; if it persists, check the client's network.`));
      }
    }
  });
}
