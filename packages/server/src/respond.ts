import type { IncomingMessage, ServerResponse } from 'node:http';
import { FrameError, HEADER, MAX_BATCH, MAX_WHOLE_BODY, createFrameReader, endToEndFlat, headerValue, parseResponseHead, readExactly, readFrameHead, type ResponseHead } from '@devtunnel/core/protocol';
import { answerForBrowser } from './content-coding';
import { badResponse, refuseAnswer, sendError } from './error-response';
import { HttpError } from './errors';
import type { Exchange } from './exchange';
import type { TunnelSession } from './session';
import { addSelectionVary, SERVED_BY } from './routes/selection';
import { handleUpgradeUpload } from './upgrade';
import { promisePushes, receivePush } from './push-answer';

/**
 * A client's response upload (`POST /api/v1/tunnels/:id/requests/:requestId`): its frame head
 * becomes the browser's status and headers, its body streams to the browser with backpressure.
 * The server computes the browser-side framing itself: it never copies Content-Length,
 * Transfer-Encoding, Connection or any other hop-by-hop header from the client.
 */

/** Statuses that never carry a body (RFC 9110 §6.4.1, §15.4.5). */
const NO_BODY_STATUS = new Set([204, 304]);

/** Builds the browser-facing header list; throws {@link HttpError} when Node rejects a header. */
export function browserHeaders(ex: Exchange, head: ResponseHead, bodyLength: number | null, noBody: boolean): string[] {
  const flat = endToEndFlat(head.headers);
  if (noBody) {
    // On HEAD and 304 the local app's Content-Length describes the representation, not this
    // message (RFC 9110 §8.6); pass it on when it is a plain number. Never on 204.
    const cl = headerValue(head.headers, 'content-length');
    if (head.status !== 204 && cl !== undefined && /^\d{1,15}$/.test(cl)) flat.push('Content-Length', cl);
  } else if (bodyLength !== null) {
    flat.push('Content-Length', String(bodyLength));
  }
  if (!hasName(flat, HEADER.requestId)) flat.push('X-Request-Id', ex.requestId);
  if (ex.servedBy !== undefined) {
    flat.push(SERVED_BY, ex.servedBy);
    addSelectionVary(flat);
  }
  return flat;
}

/** Whether a flat header list has `lower` (a lower-case name), comparing lengths first. */
function hasName(flat: string[], lower: string): boolean {
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i]!;
    if (name.length === lower.length && name.toLowerCase() === lower) return true;
  }
  return false;
}

/** Answers the upload itself: as a poll when the client asked, else 204. */
function answerUpload(tunnel: TunnelSession, req: IncomingMessage, res: ServerResponse): void {
  if (req.headers[HEADER.poll] === '1') {
    tunnel.addPoll(req, res);
  } else {
    res.writeHead(204);
    res.end();
  }
}

/** Lets an upload body we do not need drain, then answers it. */
function discardThenAnswer(tunnel: TunnelSession, req: IncomingMessage, res: ServerResponse): void {
  if (req.complete) return answerUpload(tunnel, req, res);
  req.resume();
  req.once('end', () => answerUpload(tunnel, req, res));
}

export async function handleResponseUpload(tunnel: TunnelSession, ex: Exchange, req: IncomingMessage, res: ServerResponse): Promise<void> {
  ex.upload = req;
  let head: ResponseHead;
  try {
    head = parseResponseHead(await readFrameHead(req));
  } catch (error) {
    const message = (error as Error).message;
    return refuseAnswer(tunnel, ex, req, res, message, `Malformed response frame: ${message}`);
  }

  if (head.error) {
    tunnel.fail(ex, new HttpError(head.error.code, head.error.message));
    return discardThenAnswer(tunnel, req, res);
  }

  if (ex.upgrade) return handleUpgradeUpload(tunnel, ex, head, req, res);
  if (head.status === 101) {
    return refuseAnswer(tunnel, ex, req, res, '101 Switching Protocols in answer to a request that asked for no upgrade', '101 is only a valid answer to an upgrade request.');
  }

  const browser = ex.res!;
  if (ex.state !== 'responding' || browser.destroyed) {
    // The browser left while the client was working: tell the client to stop sending.
    sendError(req, res, new HttpError('browser_gone', 'The browser closed this request.'), { fallback: 'json', close: true });
    return;
  }

  const noBody = ex.message.method === 'HEAD' || NO_BODY_STATUS.has(head.status);
  // An encoded answer the browser cannot take is decoded on its way (content-coding.ts).
  const answer = answerForBrowser(ex.message.headers, head, null);
  if (noBody) answer.decoder?.destroy();
  const decoder = noBody ? undefined : answer.decoder;
  try {
    browser.writeHead(head.status, browserHeaders(ex, answer.head, decoder ? null : head.bodyLength, noBody));
  } catch (error) {
    // Node refuses header names or values that could split the response (CR, LF, NUL…).
    return refuseAnswer(tunnel, ex, req, res, (error as Error).message);
  }

  if (noBody || head.bodyLength === 0) {
    browser.end();
    tunnel.settle(ex);
    return discardThenAnswer(tunnel, req, res);
  }

  // A body longer or shorter than declared must cut the browser connection, never desync it.
  // We count ourselves; Node's strictContentLength is the second line of defence.
  const limit = head.bodyLength;
  if (limit !== null && !decoder) browser.strictContentLength = true;
  // A body of unknown length may be a stream whose first bytes come much later (an event stream
  // flushes its headers and waits): the browser gets the status now, as it would from the app.
  else browser.flushHeaders();

  await new Promise<void>((resolve) => {
    let done = false;
    /** Bytes of the client's body so far (encoded ones when decoding: ex.bytesOut counts the browser's). */
    let received = 0;
    // Where the client's bytes go: the browser, or the decoder in front of it.
    const sink = decoder ?? browser;
    const finish = (fn: () => void) => {
      if (done) return;
      done = true;
      req.off('data', onData);
      req.off('end', onEnd);
      sink.off('drain', onDrain);
      decoder?.destroy();
      fn();
      resolve();
    };
    const broke = (why?: string) =>
      finish(() => {
        // The client stopped mid-body, or sent more or less than it declared, or a body that does
        // not decode: the browser's connection is cut (a truncated body must never look
        // complete), the upload refused.
        tunnel.settle(ex);
        browser.destroy();
        sendError(req, res, new HttpError('invalid_request', why ?? `The response body did not match its declared length (${received} bytes for ${String(limit)}).`), { fallback: 'json', close: true });
      });
    const onDrain = () => req.resume();
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (!decoder) ex.bytesOut += chunk.length;
      if (limit !== null && received > limit) return broke();
      let ok: boolean;
      try {
        ok = sink.write(chunk);
      } catch {
        return broke();
      }
      if (!ok) {
        req.pause();
        sink.once('drain', onDrain);
      }
    };
    const onEnd = () => {
      if (limit !== null && received !== limit) return broke();
      try {
        sink.end();
      } catch {
        return broke();
      }
    };
    if (decoder) {
      const onDecoded = (chunk: Buffer) => {
        ex.bytesOut += chunk.length;
        let ok: boolean;
        try {
          ok = browser.write(chunk);
        } catch {
          return broke();
        }
        if (!ok) {
          decoder.pause();
          browser.once('drain', () => decoder.resume());
        }
      };
      decoder.on('data', onDecoded);
      decoder.once('end', () => {
        try {
          browser.end();
        } catch {
          broke();
        }
      });
      decoder.on('error', (error) => broke(`The response body does not decode as ${head.coding}: ${error.message}.`));
    }
    req.on('data', onData);
    req.on('end', onEnd);
    req.once('aborted', () => broke());
    req.once('error', () => broke());
    browser.once('finish', () =>
      finish(() => {
        tunnel.settle(ex);
        answerUpload(tunnel, req, res);
      }),
    );
    browser.once('close', () =>
      finish(() => {
        // The browser left mid-body: stop the client's upload.
        tunnel.settle(ex);
        sendError(req, res, new HttpError('browser_gone', 'The browser closed this request.'), { fallback: 'json', close: true });
      }),
    );
    browser.once('error', () => browser.destroy());
  });
}

/** A head of a batch or a stream: an answer that names its request and comes whole. */
function wholeHead(head: ResponseHead): ResponseHead {
  // A push (feature `push`) names no request; parseResponseHead bounded its body (MAX_PUSH_BODY).
  if (head.push) return head;
  if (typeof head.id !== 'string' || (head.bodyLength === null && !head.error)) throw new FrameError('a batched answer needs its request id and a bodyLength');
  if ((head.bodyLength ?? 0) > MAX_WHOLE_BODY) throw new FrameError(`a batched answer carries at most ${MAX_WHOLE_BODY} bytes; send a larger one on its own`);
  return head;
}

/** One whole answer (from a batch or a stream) to its browser; one whose browser left is skipped. */
function deliver(tunnel: TunnelSession, head: ResponseHead, bytes: Uint8Array): void {
  if (head.push) return receivePush(tunnel, head as ResponseHead & { push: NonNullable<ResponseHead['push']> }, bytes);
  const ex = tunnel.take(head.id!);
  if (ex instanceof HttpError) return; // answered already, or its browser left: nothing to do
  // Before the browser has the answer, so that it finds them when it asks for what it names.
  if (head.promise) promisePushes(tunnel, ex, head.promise);
  if (head.error) return tunnel.fail(ex, new HttpError(head.error.code, head.error.message));
  if (ex.upgrade || head.status === 101) return tunnel.fail(ex, badResponse('an upgrade answer cannot travel in a batch'));
  const browser = ex.res!;
  const noBody = ex.message.method === 'HEAD' || NO_BODY_STATUS.has(head.status);
  let answer;
  try {
    // An encoded answer the browser cannot take is decoded (content-coding.ts).
    answer = answerForBrowser(ex.message.headers, head, noBody ? null : bytes);
    answer.decoder?.destroy();
    browser.writeHead(head.status, browserHeaders(ex, answer.head, noBody ? head.bodyLength : answer.bytes!.length, noBody));
  } catch (error) {
    return tunnel.fail(ex, error instanceof HttpError ? error : badResponse((error as Error).message));
  }
  ex.bytesOut += noBody ? 0 : answer.bytes!.length;
  tunnel.settle(ex);
  if (noBody) browser.end();
  else browser.end(answer.bytes);
}

/** A malformed answer frame: its browser (when its id was read) gets 502, the upload 400 and a close. */
function refuseFrames(tunnel: TunnelSession, head: ResponseHead | undefined, req: IncomingMessage, res: ServerResponse, what: string, message: string): void {
  if (head?.id) {
    const ex = tunnel.take(head.id);
    if (!(ex instanceof HttpError)) tunnel.fail(ex, badResponse(message));
  }
  sendError(req, res, new HttpError('invalid_request', `Malformed ${what}: ${message}`), { fallback: 'json', close: true });
}

/**
 * A batch upload (`POST /api/v1/tunnels/:id/responses`, feature `batch`): several small answers,
 * each `[frame head with its request id and bodyLength][body]`. Each goes to its browser as it is
 * read; an answer whose browser left is skipped. Streamed or upgrade answers never come this way.
 */
export async function handleBatchUpload(tunnel: TunnelSession, req: IncomingMessage, res: ServerResponse): Promise<void> {
  for (let count = 0; ; count++) {
    let head: ResponseHead | undefined;
    let bytes: Uint8Array;
    try {
      const raw = await readFrameHead(req, undefined, true);
      if (raw === undefined) break;
      if (count >= MAX_BATCH) throw new Error(`more than ${MAX_BATCH} answers in one upload`);
      head = parseResponseHead(raw);
      wholeHead(head);
      bytes = await readExactly(req, head.bodyLength ?? 0);
    } catch (error) {
      return refuseFrames(tunnel, head, req, res, 'batch upload', (error as Error).message);
    }
    deliver(tunnel, head, bytes);
  }
  answerUpload(tunnel, req, res);
}

/**
 * An upstream (`POST /api/v1/tunnels/:id/stream`, feature `stream`): an upload with no end whose
 * frames are whole answers as in a batch, and heartbeats. Its first bytes tell the client, through
 * the downstream, that uploads stream through whatever lies between (a proxy that buffers request
 * bodies would hold them). Answered 204 when the client ends it.
 */
export function handleStreamUpload(tunnel: TunnelSession, req: IncomingMessage, res: ServerResponse): void {
  const refused = tunnel.attachUpstream(req, res);
  if (refused) throw refused;
  let head: ResponseHead | undefined;
  let ready = false;
  let broken = false;
  const reader = createFrameReader({
    bodyLength(raw) {
      head = undefined;
      head = parseResponseHead(raw);
      return wholeHead(head).bodyLength ?? 0;
    },
    onFrame(_raw, body) {
      deliver(tunnel, head!, body);
    },
  });
  req.on('data', (chunk: Buffer) => {
    if (broken) return;
    tunnel.seen();
    if (!ready) {
      ready = true;
      tunnel.upstreamReady();
    }
    try {
      reader.push(chunk);
    } catch (error) {
      broken = true;
      refuseFrames(tunnel, head, req, res, 'upstream', (error as Error).message);
    }
  });
  req.once('end', () => {
    if (broken || res.headersSent) return;
    res.writeHead(204);
    res.end();
  });
}
