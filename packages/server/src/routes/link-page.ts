import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { NAME_PATTERN } from '@devtunnel/core/protocol';
import { escapeHtml, sendError } from '../error-response';
import { HttpError } from '../errors';
import type { Route, RouteMember } from './index';
import { SELECTION_KEY } from './selection';

/**
 * The page that turns a selection on: `<prefix>/__devtunnel/` on a route, under whatever prefix
 * the gateway gives the app (`/cart/__devtunnel/`). It lists the route's live tunnels; choosing
 * one sets the cookie `devtunnel=<name>` for the whole site and sends the browser to the app's
 * page; "turn off" clears it. A shared link (`…/__devtunnel/?use=ann`) only opens the page with
 * that tunnel offered: the change itself is a click on the page.
 *
 * Cross-site guard: the change is a POST that must carry the page's token, which is also in a
 * `SameSite=Strict` cookie only this page sets; a form or script of another site can neither read
 * the token nor have the browser send that cookie, and a request a browser marks
 * `Sec-Fetch-Site: cross-site` (or `same-site`: another app of the company's domain) is refused
 * before that. A link can therefore show the choice but never make it silently: what a selection
 * does (send a tester's requests to a laptop) must be the person's own act.
 */

export const LINK_SEGMENT = '__devtunnel';
/** The token's cookie; scoped to the page's path. */
const TOKEN_COOKIE = 'devtunnel_page';
/** A selection lasts a working day: a forgotten one must not outlive it (it falls back anyway). */
const SELECTION_MAX_AGE_S = 12 * 60 * 60;
/** The form is two short fields. */
const MAX_FORM_BYTES = 4 * 1024;

/**
 * What a prefix may be: `/`-separated segments, none empty, of the characters a path segment has
 * (RFC 3986) but `;`. The page never writes its prefix (its links, redirects and cookie are
 * relative, so a gateway that strips the app's prefix keeps them right); this only keeps odd paths
 * such as `//elsewhere.example/__devtunnel/` away from it.
 */
const SAFE_PREFIX = /^(?:\/[A-Za-z0-9._~%!$&'()*+,=:@-]+)*$/;

/**
 * The path before `/__devtunnel` when the request is for the page, else undefined (a prefix that
 * is not {@link SAFE_PREFIX} too: the request goes on as any other).
 */
export function linkPrefix(url: string): string | undefined {
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const at = path.indexOf(`/${LINK_SEGMENT}`);
  if (at === -1) return undefined;
  const after = path.slice(at + LINK_SEGMENT.length + 1);
  if (after !== '' && after !== '/') return undefined;
  const prefix = path.slice(0, at);
  return SAFE_PREFIX.test(prefix) ? prefix : undefined;
}

function cookieValue(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq !== -1 && pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim();
  }
  return undefined;
}

const secure = (req: IncomingMessage) => (req.headers['x-forwarded-proto'] === 'https' ? '; Secure' : '');

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string | string[]> = {}): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    // Framing by another site would let it trick a click.
    'x-frame-options': 'DENY',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    'referrer-policy': 'no-referrer',
    ...headers,
  });
  res.end(body);
}

function page(route: Route, members: readonly RouteMember[], back: string, token: string, current: string | undefined, offered: string | undefined, note?: string): string {
  const name = escapeHtml(route.config.name);
  const live = members.filter((t) => t.state === 'connected');
  const rows = live
    .map((t) => {
      const n = escapeHtml(t.name);
      const chosen = t.name === current;
      const hint = t.name === offered && !chosen ? ' class="offered"' : '';
      return `<li${hint}><b>${n}</b> <small>(${escapeHtml(t.localPort ? `local port ${t.localPort}` : 'live')})</small> ${
        chosen ? '<em>in use</em>' : `<form method="post"><input type="hidden" name="token" value="${token}"><input type="hidden" name="use" value="${n}"><button>Use ${n}</button></form>`
      }</li>`;
    })
    .join('\n');
  const offeredMissing = offered !== undefined && !live.some((t) => t.name === offered)
    ? `<p class="note">No live tunnel named <b>${escapeHtml(offered)}</b> serves ${name} now.</p>`
    : '';
  const state = current
    ? `<p>This browser selects <b>${escapeHtml(current)}</b>: its requests to ${name} go to that developer's tunnel while it is live, else to the real app.</p>
<form method="post"><input type="hidden" name="token" value="${token}"><input type="hidden" name="off" value="1"><button>Turn off</button></form>`
    : `<p>This browser selects no tunnel: ${name} is served by the real app.</p>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${name} · devtunnel</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#222}li{margin:.4rem 0}form{display:inline}.offered{background:#fff7d6}.note{color:#8a5a00}small{color:#666}</style>
</head><body>
<h1>Route ${name}</h1>
${note ? `<p class="note">${escapeHtml(note)}</p>` : ''}${offeredMissing}${state}
<h2>Live tunnels</h2>
${rows ? `<ul>\n${rows}\n</ul>` : '<p>None: every request goes to the real app.</p>'}
<p><a href="${back}">Back to the app</a></p>
</body></html>
`;
}

function readForm(req: IncomingMessage): Promise<URLSearchParams | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_FORM_BYTES) return resolve(undefined);
      chunks.push(chunk);
    });
    req.once('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.once('error', () => resolve(undefined));
  });
}

const sameToken = (a: string | undefined, b: string | null): boolean =>
  a !== undefined && b !== null && a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

/**
 * Serves the page (GET, HEAD) and the choice (POST) among `members` (every replica's). Everything
 * it points at is relative to the URL the browser shows (`…/cart/__devtunnel/`), not to the path
 * this server received: a gateway that strips `/cart` on the way keeps the links, the redirect
 * and the token cookie's path right. So the page lives at the URL with the trailing slash; without
 * it, a GET is sent there.
 */
export async function serveLinkPage(route: Route, members: readonly RouteMember[], req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url!, 'http://x');
  const slash = url.pathname.endsWith('/');
  // From `…/__devtunnel/`, the app is `../`; from `…/__devtunnel` (a POST made by hand), `./`.
  const back = slash ? '../' : './';
  const again = 'Open the route\'s devtunnel page again (…/__devtunnel/) and choose there.';
  if (req.method === 'GET' || req.method === 'HEAD') {
    if (!slash) return send(res, 302, '', { location: `${LINK_SEGMENT}/${url.search}` });
    const existing = cookieValue(req, TOKEN_COOKIE);
    const token = existing && /^[0-9a-f]{32}$/.test(existing) ? existing : randomBytes(16).toString('hex');
    const offered = url.searchParams.get('use') ?? undefined;
    const current = cookieValue(req, SELECTION_KEY);
    const body = page(route, members, back, token, current && NAME_PATTERN.test(current) ? current : undefined, offered);
    // No Path: the browser scopes the cookie to the page's own directory, as it sees it.
    return send(res, 200, req.method === 'HEAD' ? '' : body, { 'set-cookie': `${TOKEN_COOKIE}=${token}; HttpOnly; SameSite=Strict${secure(req)}` });
  }
  if (req.method !== 'POST') {
    return sendError(req, res, new HttpError('method_not_supported', 'The devtunnel page takes GET and POST.'), { headers: { allow: 'GET, HEAD, POST' } });
  }
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') {
    req.resume();
    return sendError(req, res, new HttpError('forbidden', `A page of another site (${site}) cannot choose a tunnel. ${again}`));
  }
  const form = await readForm(req);
  if (!form) return sendError(req, res, new HttpError('payload_too_large', 'The form is too large.'), { close: true });
  if (!sameToken(cookieValue(req, TOKEN_COOKIE), form.get('token'))) {
    return sendError(req, res, new HttpError('forbidden', `This choice did not come from the devtunnel page. ${again}`));
  }
  const location = { location: back };
  if (form.get('off') !== null) {
    return send(res, 303, '', { ...location, 'set-cookie': `${SELECTION_KEY}=; Path=/; Max-Age=0; SameSite=Lax${secure(req)}` });
  }
  const use = form.get('use') ?? '';
  if (!NAME_PATTERN.test(use) || !members.some((m) => m.name === use)) {
    return sendError(req, res, new HttpError('invalid_request', `No tunnel named ${JSON.stringify(use.slice(0, 63))} is registered for route "${route.config.name}".`));
  }
  send(res, 303, '', { ...location, 'set-cookie': `${SELECTION_KEY}=${use}; Path=/; Max-Age=${SELECTION_MAX_AGE_S}; SameSite=Lax${secure(req)}` });
}
