import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { HEADER } from '@devtunnel/core/protocol';
import { HttpError } from './errors';
import type { Exchange } from './exchange';
import type { TunnelSession } from './session';

/**
 * The one place where an error becomes a response. Browsers navigating get a small HTML page;
 * API callers, `fetch` and HMR traffic get JSON or plain text, never an interstitial. Every
 * answer carries the code in `X-Devtunnel-Error`.
 */

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML element content and quoted attributes. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

const TITLES: Partial<Record<HttpError['code'], string>> = {
  tunnel_offline: 'This tunnel is offline',
  tunnel_busy: 'The tunnel is busy',
  queue_full: 'The tunnel is overloaded',
  local_app_refused: 'The local app is not running',
  local_app_error: 'The local app failed',
  local_app_timeout: 'The local app took too long',
  client_disconnected: 'The developer\'s machine disconnected',
  tunnel_timeout: 'The tunnel did not answer in time',
  bad_response: 'The tunnel sent a bad response',
  server_shutting_down: 'The tunnel server is restarting',
};

type Format = 'html' | 'json' | 'text';

function formatFor(req: IncomingMessage | undefined, fallback: Format): Format {
  if (!req) return fallback;
  const accept = req.headers.accept ?? '';
  const mode = req.headers['sec-fetch-mode'];
  // Only a top-level navigation gets a page; a fetch() that accepts anything gets data.
  if (mode === 'navigate' || (mode === undefined && /\btext\/html\b/.test(accept))) return 'html';
  if (/\bapplication\/(?:[\w.+-]*\+)?json\b/.test(accept)) return 'json';
  return fallback;
}

function page(error: HttpError, context: string | undefined): string {
  const title = escapeHtml(TITLES[error.code] ?? 'devtunnel error');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${title} · devtunnel</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}code{background:#f3f3f3;padding:.1em .3em;border-radius:3px}small{color:#666}</style>
</head><body>
<h1>${title}</h1>
<p>${escapeHtml(error.message)}</p>
<p><small>Error <code>${escapeHtml(error.code)}</code> (HTTP ${error.status})${context ? ` · ${escapeHtml(context)}` : ''} · devtunnel</small></p>
</body></html>
`;
}

export interface ErrorResponseOptions {
  /** Format when the caller did not ask for one. */
  fallback?: Format;
  /** Shown under the message on the HTML page, e.g. `tunnel ann-5173 on port 9003`. */
  context?: string;
  /** Close the connection afterwards (after a framing error the stream cannot be trusted). */
  close?: boolean;
  headers?: Record<string, string>;
}

export function sendError(req: IncomingMessage | undefined, res: ServerResponse, error: HttpError, options: ErrorResponseOptions = {}): void {
  if (res.headersSent || res.destroyed) {
    // Too late for a status: cutting the connection is the only honest signal left.
    res.destroy();
    return;
  }
  const format = formatFor(req, options.fallback ?? 'text');
  const body =
    format === 'html'
      ? page(error, options.context)
      : format === 'json'
        ? JSON.stringify(error.toJSON()) + '\n'
        : `${error.status} ${error.code}: ${error.message}\n`;
  const headers: Record<string, string | number> = {
    'content-type': format === 'html' ? 'text/html; charset=utf-8' : format === 'json' ? 'application/json; charset=utf-8' : 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    [HEADER.error]: error.code,
    ...options.headers,
  };
  if (format === 'html') headers['content-security-policy'] = "default-src 'none'; style-src 'unsafe-inline'";
  if (error.retryAfter !== undefined) headers['retry-after'] = String(error.retryAfter);
  if (error.status === 401) headers['www-authenticate'] = 'Bearer realm="devtunnel"';
  if (options.close) {
    headers.connection = 'close';
    res.shouldKeepAlive = false;
  }
  // The reason phrase is given, not left to Node: a writeHead that threw (a local app's header
  // Node refused) has already set the phrase of the status it tried ("502 OK" otherwise).
  res.writeHead(error.status, STATUS_CODES[error.status] ?? 'Error', headers);
  res.end(body);
}

/** How long a peer may keep its side of a refused raw socket open before we cut it. */
const RAW_LINGER_MS = 5_000;

/**
 * Ends a socket Node's HTTP layer no longer manages (an upgrade, CONNECT, a parse error) with a raw
 * answer. Node's idle timeout no longer applies to it, so a peer that never closes its side is cut
 * after a few seconds: otherwise the socket would live, and hold up shutdown, forever.
 */
export function endRaw(socket: Socket, answer: string): void {
  socket.end(answer);
  socket.setTimeout(RAW_LINGER_MS, () => socket.destroy());
}

/** A complete error answer for a socket Node's HTTP layer no longer manages; always closes. */
export function rawResponse(error: HttpError, options: { status?: number; extra?: string } = {}): string {
  const status = options.status ?? error.status;
  const reason = STATUS_CODES[status] ?? 'Error';
  const extra = options.extra ?? '';
  const body = `${status} ${error.code}: ${error.message}\n`;
  return `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${HEADER.error}: ${error.code}\r\n${extra}\r\n${body}`;
}

/** The client's answer is unusable: what its browser is told. */
export function badResponse(message: string): HttpError {
  return new HttpError('bad_response', `The developer's devtunnel client sent an unusable response: ${message}`);
}

/**
 * The client's answer cannot be used: its browser gets 502 `bad_response` saying why, the upload
 * 400 `invalid_request` (`toClient`, by default the same words) and a closed connection.
 */
export function refuseAnswer(tunnel: TunnelSession, ex: Exchange, req: IncomingMessage, res: ServerResponse, why: string, toClient = why): void {
  tunnel.fail(ex, badResponse(why));
  sendError(req, res, new HttpError('invalid_request', toClient), { fallback: 'json', close: true });
}
