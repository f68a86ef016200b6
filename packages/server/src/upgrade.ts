import { STATUS_CODES, validateHeaderName, validateHeaderValue, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { headerValue, stripHopByHop, type ResponseHead } from '@devtunnel/core/protocol';
import { endRaw, rawResponse, refuseAnswer, sendError } from './error-response';
import { HttpError } from './errors';
import type { Exchange, UpgradeState } from './exchange';
import { SERVED_BY } from './routes/selection';
import type { TunnelSession } from './session';

/**
 * HTTP/1.1 upgrades (WebSocket, and any other protocol: after a 101 it is bytes) through a
 * channel of plain HTTP/1.1 requests only, so they pass corporate proxies that refuse WebSocket:
 *
 *   browser ──upgrade──► server ──poll answer──► client ──upgrade──► local app
 *   browser ◄──101────── server ◄──POST (head 101, then the app's bytes, streamed)── client
 *   browser ──bytes────► server ──GET …/upstream (the browser's bytes, streamed)──► client
 *
 * Either side closing ends all three; backpressure holds because every hop is a pipe. A quiet
 * connection stays open as long as both ends want it: the HTTP idle limits are lifted on its
 * sockets, and the tunnel's liveness (its polls) stands in for a keep-alive: when the client
 * stops polling, its upgraded connections close with it.
 */

/** The browser side of an upgrade request, before anything is known about the answer. */
export function createUpgradeState(socket: Socket, head: Buffer): UpgradeState {
  let closed = false;
  const state: UpgradeState = {
    socket,
    head,
    status: undefined,
    upstream: undefined,
    onUpstream: undefined,
    onClose: [],
    fail(error) {
      if (closed) return;
      // An upstream that arrived before the failure has nothing left to carry.
      state.upstream?.res.destroy();
      if (state.status === undefined && socket.writable) {
        state.status = error.status;
        endRaw(socket, rawResponse(error));
      } else {
        socket.destroy();
      }
    },
    close() {
      if (closed) return;
      closed = true;
      socket.destroy();
      state.upstream?.res.destroy();
      for (const hook of state.onClose.splice(0)) hook();
    },
  };
  return state;
}

/** A status line and header block for a raw socket. Throws on a name or value that could split it. */
function rawHead(status: number, headers: Array<[string, string]>): string {
  let text = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
  for (const [name, value] of headers) {
    validateHeaderName(name);
    validateHeaderValue(name, value);
    text += `${name}: ${value}\r\n`;
  }
  return text + '\r\n';
}

/**
 * The client's answer to an upgrade: a 101 opens the byte channel; any other status is an
 * ordinary refusal (400, 403, 426…) returned to the browser as it is, then the connection closes.
 */
export function handleUpgradeUpload(tunnel: TunnelSession, ex: Exchange, head: ResponseHead, req: IncomingMessage, res: ServerResponse): void {
  const up = ex.upgrade!;
  const browser = up.socket;
  if (ex.state !== 'responding' || browser.destroyed) {
    sendError(req, res, new HttpError('browser_gone', 'The browser closed this connection.'), { fallback: 'json', close: true });
    return;
  }
  const headers = stripHopByHop(head.headers);
  if (!headerValue(head.headers, 'x-request-id')) headers.push(['X-Request-Id', ex.requestId]);
  if (ex.servedBy !== undefined) headers.push([SERVED_BY, ex.servedBy]);

  if (head.status !== 101) return refusal(tunnel, ex, head, headers, req, res);

  const protocol = headerValue(head.headers, 'upgrade') ?? headerValue(ex.message.headers, 'upgrade');
  let text: string;
  try {
    text = rawHead(101, [['Connection', 'Upgrade'], ['Upgrade', protocol ?? ''], ...headers]);
  } catch (error) {
    return refuseAnswer(tunnel, ex, req, res, (error as Error).message);
  }
  browser.write(text);
  up.status = 101;
  tunnel.markUpgraded(ex);
  // Lift the HTTP idle limits: an HMR socket may stay quiet for an hour. The tunnel's liveness
  // (polls) and either end closing are what end it.
  browser.setTimeout(0);
  browser.setNoDelay(true);
  req.socket.setTimeout(0);

  let answered = false;
  const answer = (fn: () => void) => {
    if (answered) return;
    answered = true;
    fn();
  };
  up.onClose.push(() => {
    tunnel.settle(ex);
    // Tell the client its upload is over: it closes the local side.
    answer(() => sendError(req, res, new HttpError('browser_gone', 'The upgraded connection closed.'), { fallback: 'json', close: true }));
  });

  // The app's bytes: the rest of this upload, to the browser. The app closing ends the upload,
  // which half-closes the browser's connection.
  req.pipe(browser);
  req.once('end', () => answer(() => res.writeHead(204).end()));
  req.once('aborted', () => up.close());
  req.once('error', () => up.close());
  browser.once('close', () => up.close());
  browser.on('error', () => up.close());

  if (up.upstream) startUpstream(up);
  else up.onUpstream = () => startUpstream(up);
}

/** The client's `GET …/upstream`: the browser's bytes after the 101, as a streamed response. */
export function handleUpstream(ex: Exchange, req: IncomingMessage, res: ServerResponse): void {
  const up = ex.upgrade!;
  up.upstream = { req, res };
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'no-store' });
  res.flushHeaders();
  req.socket.setTimeout(0);
  req.socket.setNoDelay(true);
  // The client dropped the upstream: the connection cannot carry the browser's bytes any more.
  res.once('close', () => {
    if (!res.writableFinished) up.close();
  });
  const start = up.onUpstream;
  up.onUpstream = undefined;
  start?.();
}

function startUpstream(up: UpgradeState): void {
  const { res } = up.upstream!;
  if (up.head.length > 0) res.write(up.head);
  // The browser half-closing ends the upstream, which half-closes the local side.
  up.socket.pipe(res);
}

/** A refused upgrade: the app's status, headers and body, then the connection closes. */
function refusal(tunnel: TunnelSession, ex: Exchange, head: ResponseHead, headers: Array<[string, string]>, req: IncomingMessage, res: ServerResponse): void {
  const up = ex.upgrade!;
  const browser = up.socket;
  const framing: Array<[string, string]> = [['Connection', 'close']];
  if (head.bodyLength !== null) framing.push(['Content-Length', String(head.bodyLength)]);
  let text: string;
  try {
    text = rawHead(head.status, [...headers, ...framing]);
  } catch (error) {
    return refuseAnswer(tunnel, ex, req, res, (error as Error).message);
  }
  up.status = head.status;
  tunnel.settle(ex);
  browser.write(text);
  // Without a length the body is delimited by the connection closing (RFC 9112 §6.3).
  req.pipe(browser);
  req.once('end', () => res.writeHead(204).end());
  req.once('aborted', () => browser.destroy());
  browser.once('close', () => {
    if (!req.complete) sendError(req, res, new HttpError('browser_gone', 'The browser closed this connection.'), { fallback: 'json', close: true });
  });
}
