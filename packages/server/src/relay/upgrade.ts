import { request as httpRequest, STATUS_CODES, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { endRaw, rawResponse } from '../error-response';
import type { HttpError } from '../errors';

/**
 * A browser's upgrade (WebSocket…) relayed to another HTTP server (a route's real app, or the
 * replica that holds a tunnel): the request goes on with our `Connection: Upgrade`; a 101 opens a
 * byte channel both ways, a refusal (400, 403, 426…) goes back as it is and the connection closes.
 * node:http rather than undici: it hands over both the 101's socket and a refusal's answer.
 *
 *   browser ──upgrade──► this server ──upgrade──► next hop
 *   browser ◄──101────── this server ◄──101────── next hop, then bytes both ways (pipes)
 *
 * Either side closing ends both; backpressure holds because each direction is a pipe. Once
 * upgraded, the HTTP idle limits are lifted: an HMR socket may stay quiet for an hour.
 */

export interface UpgradeRelay {
  /** The next hop's origin (`http://host:port`, or https). */
  origin: URL;
  /** The request target there (origin-form). */
  path: string;
  /** The request's headers for the next hop, flat, without Connection and Upgrade (added here). */
  headers: string[];
  /** How long the next hop may take to answer. */
  timeoutMs: number;
  /**
   * The browser's headers for the next hop's answer (`raw`: its headers as they came), flat, framing
   * included on a refusal (its Content-Length); Connection and Upgrade are added here.
   */
  head(status: number, raw: string[]): string[];
  /** The next hop failed before answering: the coded error the browser gets. */
  failed(error: Error): HttpError;
  /** Raw header lines (`Name: value\r\n`) added to that error answer. */
  errorExtra?: string;
  /** Once, when the browser's connection closed: the status it got (0: none), bytes after a 101. */
  closed?(result: { status: number; bytesIn: number; bytesOut: number }): void;
}

/** The status line and headers of a raw answer. */
function rawHead(status: number, headers: string[]): string {
  let text = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
  for (let i = 0; i < headers.length; i += 2) text += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return text + '\r\n';
}

export function relayUpgrade(req: IncomingMessage, socket: Socket, head: Buffer, relay: UpgradeRelay): void {
  const { origin } = relay;
  let status = 0;
  let other: Socket | undefined;
  /** The next hop's byte counts when the 101 arrived: what came before is not the channel's. */
  let before = { written: 0, read: 0 };
  let over = false;
  const call = (origin.protocol === 'https:' ? httpsRequest : httpRequest)({
    host: origin.hostname.replace(/^\[|\]$/g, ''),
    port: Number(origin.port) || (origin.protocol === 'https:' ? 443 : 80),
    method: req.method,
    path: relay.path,
    headers: [...relay.headers, 'Connection', 'Upgrade', 'Upgrade', req.headers.upgrade ?? ''],
    agent: false,
    setHost: false,
  });
  const close = () => {
    if (over) return;
    over = true;
    call.destroy();
    other?.destroy();
    socket.destroy();
    relay.closed?.({ status, bytesIn: other ? other.bytesWritten - before.written : 0, bytesOut: other ? other.bytesRead - before.read : 0 });
  };
  socket.on('error', close);
  socket.once('close', close);
  // The code undici gives the same wait on the request path, so both are classified alike.
  call.setTimeout(relay.timeoutMs, () => call.destroy(Object.assign(new Error(`no answer within ${relay.timeoutMs} ms`), { code: 'UND_ERR_HEADERS_TIMEOUT' })));
  /** The answer was refused here (a status out of range): its error is written already. */
  let refused = false;
  call.on('error', (error) => {
    if (over || refused) return;
    const coded = relay.failed(error);
    if (status === 0 && socket.writable) {
      status = coded.status;
      endRaw(socket, rawResponse(coded, { extra: relay.errorExtra }));
    } else socket.destroy();
  });
  call.on('upgrade', (answer: IncomingMessage, upstream: Socket, upHead: Buffer) => {
    other = upstream;
    if (over) return void upstream.destroy();
    if (socket.destroyed) return close();
    call.setTimeout(0);
    status = 101;
    before = { written: upstream.bytesWritten, read: upstream.bytesRead - upHead.length };
    socket.write(rawHead(101, ['Connection', 'Upgrade', 'Upgrade', answer.headers.upgrade ?? '', ...relay.head(101, answer.rawHeaders)]));
    if (upHead.length > 0) socket.write(upHead);
    if (head.length > 0) upstream.write(head);
    for (const s of [socket, upstream]) {
      s.setTimeout(0);
      s.setNoDelay(true);
    }
    upstream.on('error', close);
    upstream.once('close', close);
    upstream.pipe(socket);
    socket.pipe(upstream);
  });
  call.on('response', (answer: IncomingMessage) => {
    const code = answer.statusCode ?? 0;
    if (code < 100 || code > 599) {
      // Not an HTTP status (RFC 9110 §15): a coded 502, as on the request path, never passed on.
      refused = true;
      answer.on('error', () => {});
      answer.destroy();
      const coded = relay.failed(Object.assign(new Error(`status ${code}`), { code: 'HPE_INVALID_STATUS' }));
      status = coded.status;
      return endRaw(socket, rawResponse(coded, { extra: relay.errorExtra }));
    }
    // A refusal: returned as it is, then the connection closes.
    status = code;
    socket.write(rawHead(status, ['Connection', 'close', ...relay.head(status, answer.rawHeaders)]));
    answer.pipe(socket);
    answer.once('error', () => socket.destroy());
  });
  call.end();
}
