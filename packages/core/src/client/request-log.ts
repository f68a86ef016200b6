import type { Readable } from 'node:stream';
import { ServerAnswerError } from '../control';
import type { LocalResponse } from '../forward';
import type { Captured, RequestTap } from '../inspector';
import type { RequestErrorCode, RequestMessage } from '../protocol';
import type { ClientContext } from './context';
import type { RequestEvent } from './types';

/** What the `request` event (the CLI's request log) and the inspector say of each request a tunnel handled. */

/** Reports a finished request: its status, error code, duration and the bytes of its answer. */
export function finished(ctx: ClientContext, message: RequestMessage, started: number, statusCode: number, bytesOut: number, error?: RequestErrorCode, record?: Captured): void {
  if (record) ctx.tap.end(record, statusCode, bytesOut, error);
  const event: RequestEvent = {
    method: message.method,
    path: pathOf(message.url),
    status: statusCode,
    durationMs: Math.round(performance.now() - started),
    bytesOut,
  };
  if (error) event.error = error;
  ctx.emit('request', event);
}

/** What the request log says of a request whose upload failed: the status and error code. */
export function failedUpload(error: unknown, aborted: boolean, asPoll: boolean, response: LocalResponse | undefined): [number, RequestErrorCode | undefined] {
  if (aborted || isAbort(error)) return [499, 'cancelled'];
  if (error instanceof ServerAnswerError) {
    // The server answers an upload only once the body is through: the browser has its
    // response; only the poll part was refused.
    if (asPoll && (error.serverCode === 'server_shutting_down' || error.serverCode === 'too_many_polls')) return [response?.head.status ?? 502, response?.head.error?.code];
    // The browser left, or the server already answered it (deadline): nothing to recover.
    if (error.status === 404 || error.status === 410 || error.status === 409) return [499, error.serverCode ?? 'cancelled'];
  }
  // The upload broke: the server cut it (the browser left), the local app's body failed mid-way,
  // or the network did. The browser has been told (a cut connection).
  return [502, 'upload_failed'];
}

/** Counts the bytes of a body as they pass, for the request log; the tap sees them too. */
export async function* counted(body: Readable, counter: { bytes: number }, tap: RequestTap, record: Captured | undefined): AsyncIterable<Uint8Array> {
  for await (const chunk of body) {
    counter.bytes += (chunk as Uint8Array).length;
    tap.chunk(record, chunk as Uint8Array);
    yield chunk as Uint8Array;
  }
  tap.localDone(record);
}

function isAbort(error: unknown): boolean {
  const code = (error as { code?: string; name?: string })?.code;
  const name = (error as { name?: string })?.name;
  return code === 'UND_ERR_ABORTED' || code === 'UND_ERR_DESTROYED' || name === 'AbortError' || code === 'ABORT_ERR';
}

/** The path without the query string (queries may carry tokens). */
function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}
