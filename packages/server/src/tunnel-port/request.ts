import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HEADER, endToEndPairs, type HeaderPairs, type RequestMessage } from '@devtunnel/core/protocol';
import { HttpError } from '../errors';
import type { Exchange, UpgradeState } from '../exchange';
import { randomId } from '../ids';

/**
 * A browser request as the tunnel ports take it: what Node's strict parser accepted but we do not
 * forward, and the message for the client, with the headers this server owns.
 */

/**
 * The browser's address of a request another replica handed over (the internal hop): the socket's
 * address is that replica's. Set only for hops whose stamp was verified.
 */
const hoppedFrom = new WeakMap<IncomingMessage, string>();

export function setHopRemote(req: IncomingMessage, remote: string): void {
  hoppedFrom.set(req, remote);
}

/** Where a request came from: the browser's address, also across the internal hop. */
export function remoteOf(req: IncomingMessage): string {
  return hoppedFrom.get(req) ?? req.socket.remoteAddress ?? 'unknown';
}

/** Headers beyond this many make the request suspect (CVE-2026-58044 hid Content-Length past ~1000). */
export const MAX_REQUEST_HEADERS = 100;

/**
 * RFC 9112 §3.2: origin-form or absolute-form (http/https). The asterisk-form (`OPTIONS *`) asks
 * about a server, not a resource: no app behind this one is that server, and no hop (the client's
 * call to the local app, a route's fallback, the hop between replicas) can carry it.
 */
function isValidTarget(target: string): boolean {
  if (target.startsWith('/')) return true;
  try {
    const u = new URL(target);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

/** Absolute-form targets (`GET http://host/path`) become origin-form (RFC 9112 §3.2). */
function originForm(url: string): string {
  if (url.startsWith('/')) return url;
  try {
    const u = new URL(url);
    return u.pathname + u.search;
  } catch {
    return url;
  }
}

/** Validates what Node's parser accepted but we do not forward; undefined when it may go on. */
export function checkRequest(req: IncomingMessage): HttpError | undefined {
  if (req.httpVersionMajor !== 1) {
    return new HttpError('invalid_request', `HTTP/${req.httpVersion} is not supported on a tunnel port; use HTTP/1.1.`);
  }
  if (req.rawHeaders.length / 2 >= MAX_REQUEST_HEADERS) {
    return new HttpError('headers_too_large', `A request may carry at most ${MAX_REQUEST_HEADERS - 1} header lines.`);
  }
  let hosts = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]!.length === 4 && req.rawHeaders[i]!.toLowerCase() === 'host') hosts++;
  }
  // RFC 9112 §3.2: a server MUST respond 400 to an HTTP/1.1 request with no Host field, or more than one.
  if (hosts > 1) return new HttpError('invalid_request', 'The request has more than one Host header.');
  if (hosts === 0 && req.httpVersionMinor >= 1) return new HttpError('invalid_request', 'An HTTP/1.1 request needs a Host header.');
  const target = req.url ?? '';
  if (target === '*') return new HttpError('invalid_request', 'OPTIONS * asks about a server, not a resource, and is not forwarded to an app: ask for a path (OPTIONS /…).');
  if (!isValidTarget(target)) return new HttpError('invalid_request', 'The request target must be a path (/…) or an absolute http(s) URL.');
  const te = req.headers['transfer-encoding'];
  if (te !== undefined) {
    // RFC 9112 §6.1: HTTP/1.0 has no chunked framing; treat TE there as faulty framing.
    if (req.httpVersionMajor === 1 && req.httpVersionMinor === 0) {
      return new HttpError('invalid_request', 'Transfer-Encoding is not allowed in an HTTP/1.0 request.');
    }
    if (te.toLowerCase() !== 'chunked') {
      return new HttpError('invalid_request', `Transfer-Encoding "${te}" is not supported; only "chunked" is.`);
    }
  }
  return undefined;
}

/**
 * The headers this server owns, added to `headers` (the request's end-to-end headers): the
 * forwarding chain with this hop, and the proto, host and request id unless a proxy in front of
 * us set them. Checked against what survived the hop-by-hop rules, not the raw request: a
 * browser naming them in `Connection` (RFC 9110 §7.6.1) gets its copies dropped and ours added,
 * never neither. Returns the request id the local app sees.
 */
function addOwnHeaders(req: IncomingMessage, headers: HeaderPairs): string {
  // One pass, lengths compared first: this runs per request.
  let proto = false;
  let host = false;
  let requestId: string | undefined;
  for (const [name, value] of headers) {
    const n = name.length;
    if (n !== 17 && n !== 16 && n !== 12) continue;
    const lower = name.toLowerCase();
    if (lower === 'x-forwarded-proto') proto = true;
    else if (lower === 'x-forwarded-host') host = true;
    else if (lower === HEADER.requestId) requestId ??= value;
  }
  const remote = remoteOf(req);
  const xff = req.headers['x-forwarded-for'];
  headers.push(['X-Forwarded-For', xff ? `${Array.isArray(xff) ? xff.join(', ') : xff}, ${remote}` : remote]);
  if (!proto) headers.push(['X-Forwarded-Proto', 'http']);
  if (!host && req.headers.host) headers.push(['X-Forwarded-Host', req.headers.host]);
  if (requestId === undefined) headers.push(['X-Request-Id', (requestId = randomUUID())]);
  return requestId;
}

/**
 * The request's end-to-end headers with the forwarding headers this server owns: what a tunnel's
 * local app and a route's real app both see (one policy for both). Returns the request id too.
 */
export function forwardHeaders(req: IncomingMessage): { headers: HeaderPairs; requestId: string } {
  // X-Forwarded-For is rebuilt with this hop appended, so the old one goes.
  const headers = endToEndPairs(req.rawHeaders, 'x-forwarded-for');
  return { headers, requestId: addOwnHeaders(req, headers) };
}

/** Path and query of the target (absolute-form becomes origin-form). */
export const requestTarget = (req: IncomingMessage): string => originForm(req.url!);

/** Turns an accepted request into the message for the client and the exchange that tracks it. */
export function createExchange(req: IncomingMessage, res: ServerResponse | undefined, now: number, upgrade?: UpgradeState): Exchange {
  const te = req.headers['transfer-encoding'] !== undefined;
  const cl = req.headers['content-length'];
  const { headers, requestId } = forwardHeaders(req);
  // An upgrade keeps the two hop-by-hop fields that ask for it: the local app must see them.
  if (upgrade) headers.push(['Connection', 'Upgrade'], ['Upgrade', req.headers.upgrade ?? '']);
  const message: RequestMessage = {
    type: 'request',
    id: randomId(),
    method: req.method!,
    url: originForm(req.url!),
    headers,
    bodyLength: upgrade ? 0 : te ? null : cl === undefined ? 0 : Number(cl),
  };
  if (upgrade) message.upgrade = true;
  return {
    id: message.id,
    requestId,
    req,
    res,
    upgrade,
    message,
    state: 'queued',
    arrivedAt: now,
    dispatchedAt: undefined,
    respondedAt: undefined,
    timer: undefined,
    upload: undefined,
    via: undefined,
    code: undefined,
    bytesIn: 0,
    bytesOut: 0,
  };
}
