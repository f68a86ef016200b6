import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { APP_CSS, APP_JS, DASHBOARD_CSP, loginPage, shellPage } from './dashboard-assets';
import { Agent } from 'undici';
import { HttpError } from './errors';
import type { CaptureRing } from './replay/capture';
import { replay } from './replay/send';
import { tokenCheck } from './token-check';
import type { ServerLogger } from './logger';
import type { ResolvedServerOptions } from './options';
import type { Registry } from './registry';

/**
 * The dashboard at `/dashboard` on the control port: every tunnel, live (server-sent events), with
 * its last requests. Reading needs a token (the registration token: every developer has it) or a
 * source address in `--dashboard-open-cidrs`; closing a tunnel needs the admin token, a POST, the
 * session's CSRF token and a same-origin `Origin`. Developers close their own tunnel from their
 * client (Ctrl+C), whose secret the API requires.
 */
export interface DashboardDeps {
  options: ResolvedServerOptions;
  registry: Registry;
  logger: ServerLogger;
  /** Recent requests (replay/capture.ts): listed, and replayed to a tunnel by a signed-in developer. */
  captures: CaptureRing;
  /** Counts a failed sign-in against the address's budget; returns the error to answer. */
  authFailed(req: IncomingMessage): HttpError;
  /** Whether the address is over its failed-authentication budget. */
  throttled(req: IncomingMessage): boolean;
}

/** The dashboard's own paths behind its sign-in (closing a tunnel is matched apart). */
const PAGES = new Set(['/dashboard', '/dashboard/logout', '/dashboard/api/tunnels', '/dashboard/api/captures', '/dashboard/events']);
/** A replay's answer is awaited at most the server's deadline and this much more. */
const REPLAY_MARGIN_MS = 1_000;

interface Session {
  role: 'admin' | 'viewer';
  csrf: string;
  expires: number;
}

const COOKIE = 'devtunnel_dashboard';
const SESSION_MS = 12 * 60 * 60 * 1000;
const MAX_SESSIONS = 1000;
const MAX_STREAMS = 100;
const STREAM_INTERVAL_MS = 1000;

function headers(contentType: string): Record<string, string> {
  return {
    'content-type': contentType,
    'cache-control': 'no-store',
    'content-security-policy': DASHBOARD_CSP,
    'x-content-type-options': 'nosniff',
    // same-origin, not no-referrer: with no-referrer browsers send `Origin: null` on form POSTs.
    'referrer-policy': 'same-origin',
    'x-frame-options': 'DENY',
  };
}

function send(res: ServerResponse, status: number, contentType: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { ...headers(contentType), 'content-length': String(Buffer.byteLength(body)), ...extra });
  res.end(body);
}

function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return undefined;
}

function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
      if (body.length > 4096) {
        req.pause();
        reject(new HttpError('payload_too_large', 'The form is too large.'));
      }
    });
    req.once('end', () => resolve(new URLSearchParams(body)));
    req.once('error', reject);
  });
}

export function createDashboard(deps: DashboardDeps) {
  const { options, registry, logger, captures } = deps;
  /** The replays' connections to this server's own tunnel ports: few, closed soon when idle. */
  const replays = new Agent({ connections: 4, keepAliveTimeout: 1_000 });
  const sessions = new Map<string, Session>();
  const streams = new Set<ServerResponse>();
  const isToken = tokenCheck(options.token);
  const isAdmin = options.adminToken ? tokenCheck(options.adminToken) : () => false;
  const open = new BlockList();
  for (const cidr of options.dashboardOpenCidrs) {
    const [address, bits] = cidr.split('/');
    open.addSubnet(address!, Number(bits), isIPv6(address!) ? 'ipv6' : 'ipv4');
  }

  /** Who is asking: a signed-in session, an address of a trusted network (read-only), or nobody. */
  function who(req: IncomingMessage): (Session & { id?: string }) | undefined {
    const id = cookie(req, COOKIE);
    const session = id ? sessions.get(id) : undefined;
    if (session && session.expires > options.now()) return { ...session, id };
    if (id && session) sessions.delete(id);
    const remote = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    if (options.dashboardOpenCidrs.length > 0 && (isIPv4(remote) || isIPv6(remote)) && open.check(remote, isIPv6(remote) ? 'ipv6' : 'ipv4')) {
      return { role: 'viewer', csrf: '', expires: Infinity };
    }
    return undefined;
  }

  /** POSTs must come from the dashboard's own pages (CSRF): a foreign Origin is refused. */
  function sameOrigin(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    if (origin === undefined) return true; // not a browser form or fetch from another site
    try {
      return new URL(origin).host === req.headers.host;
    } catch {
      return false;
    }
  }

  function snapshot(): string {
    return JSON.stringify({ time: new Date(options.now()).toISOString(), tunnels: registry.list(), routes: registry.routes() });
  }

  // One timer for every live page, running only while one is open: each gets the snapshot when it
  // changed, a comment line otherwise (keeps proxies from closing a quiet stream).
  let last = '';
  let ticks = 0;
  let timer: NodeJS.Timeout | undefined;
  function tick(): void {
    const now = snapshot();
    const changed = now !== last;
    last = now;
    ticks++;
    for (const res of streams) {
      if (changed) res.write(`data: ${now}\n\n`);
      else if (ticks % 15 === 0) res.write(': keep-alive\n\n');
    }
  }

  async function signIn(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!sameOrigin(req)) return send(res, 403, 'text/plain; charset=utf-8', 'Cross-origin sign-in refused.\n');
    if (deps.throttled(req)) return send(res, 429, 'text/html; charset=utf-8', loginPage('Too many failed attempts from this address; wait a minute.'), { 'retry-after': '60' });
    const token = (await readForm(req)).get('token') ?? '';
    const role = isAdmin(token) ? 'admin' : isToken(token) ? 'viewer' : undefined;
    if (!role) {
      deps.authFailed(req);
      return send(res, 401, 'text/html; charset=utf-8', loginPage('That token is not right.'));
    }
    if (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value!);
    const id = randomBytes(32).toString('hex');
    sessions.set(id, { role, csrf: randomBytes(32).toString('hex'), expires: options.now() + SESSION_MS });
    logger.log('info', 'dashboard.sign_in', { role, remote: req.socket.remoteAddress });
    const secure = req.headers['x-forwarded-proto'] === 'https' ? '; Secure' : '';
    res.writeHead(303, { location: '/dashboard', 'set-cookie': `${COOKIE}=${id}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=${SESSION_MS / 1000}${secure}`, 'cache-control': 'no-store' });
    res.end();
  }

  function stream(req: IncomingMessage, res: ServerResponse): void {
    if (streams.size >= MAX_STREAMS) return send(res, 503, 'text/plain; charset=utf-8', 'Too many live dashboards open.\n', { 'retry-after': '10' });
    req.socket.setTimeout(0);
    res.writeHead(200, { ...headers('text/event-stream; charset=utf-8'), connection: 'keep-alive' });
    res.write(`retry: 2000\ndata: ${snapshot()}\n\n`);
    streams.add(res);
    timer ??= setInterval(tick, STREAM_INTERVAL_MS).unref();
    res.once('close', () => {
      streams.delete(res);
      if (streams.size > 0 || !timer) return;
      clearInterval(timer);
      timer = undefined;
    });
  }

  /** A POST of the dashboard's own page: same origin and the session's CSRF token, or 403. */
  function checkCsrf(req: IncomingMessage, user: Session): void {
    const given = req.headers['x-csrf-token'];
    if (!sameOrigin(req) || typeof given !== 'string' || given.length !== user.csrf.length || !timingSafeEqual(Buffer.from(given), Buffer.from(user.csrf))) {
      throw new HttpError('forbidden', 'Missing or wrong CSRF token, or a cross-origin request.');
    }
  }

  /**
   * Sends a captured request again to a tunnel (docs/replay.md): a signed-in session only (not an
   * open network's read-only view), its CSRF token, a request without a body, a tunnel this server
   * lists. The answer comes back as JSON for the page to show; the laptop's inspector shows it too.
   */
  async function replayRequest(req: IncomingMessage, res: ServerResponse, user: Session & { id?: string }, id: string): Promise<void> {
    if (user.id === undefined) throw new HttpError('forbidden', 'Sign in with a token to replay requests (an open network\'s view is read-only).');
    checkCsrf(req, user);
    const c = captures.get(id);
    if (!c) throw new HttpError('unknown_request', `No kept request has the id ${id}: the server keeps the last ${options.capture} (--capture), and it may have gone.`);
    if (c.bodyLeftOut) throw new HttpError('invalid_request', `The request ${id} had a body, which the server does not keep: only requests without one can be replayed.`);
    const port = Number((await readForm(req)).get('port'));
    const target = registry.list().find((t) => t.port === port && t.state !== 'closed' && t.state !== 'expired');
    if (!Number.isInteger(port) || !target) throw new HttpError('unknown_tunnel', `No tunnel on port ${port} to replay to: choose one of the tunnels listed.`);
    const host = options.host === '0.0.0.0' ? '127.0.0.1' : options.host === '::' ? '::1' : options.host;
    logger.log('info', 'dashboard.replay', { requestId: id, port, tunnel: target.name, remote: req.socket.remoteAddress });
    const answer = await replay(c, host, port, replays, options.deadlineMs + REPLAY_MARGIN_MS, options.now);
    send(res, 200, 'application/json; charset=utf-8', JSON.stringify({ replayOf: id, tunnel: target.name, port, answer }));
  }

  /** Handles `/dashboard…`; returns false for any other path. */
  return async function dashboard(req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
    if (path !== '/dashboard' && !path.startsWith('/dashboard/')) return false;
    const method = req.method ?? 'GET';
    if (path === '/dashboard/app.js') return send(res, 200, 'text/javascript; charset=utf-8', APP_JS), true;
    if (path === '/dashboard/app.css') return send(res, 200, 'text/css; charset=utf-8', APP_CSS), true;
    if (path === '/dashboard/login' && method === 'POST') return signIn(req, res).then(() => true);
    // A path the dashboard does not have is 404 before any sign-in: a client pointed at
    // …/dashboard by mistake must hear that the path is wrong, not that its token is.
    const close = /^\/dashboard\/api\/tunnels\/([0-9a-f]{32})\/close$/.exec(path);
    const replayOne = /^\/dashboard\/api\/captures\/([\w.-]{1,80})\/replay$/.exec(path);
    if (!close && !replayOne && !PAGES.has(path)) throw new HttpError('not_found', `Nothing at ${path}.`);
    const user = who(req);
    if (path === '/dashboard/logout' && method === 'POST') {
      if (!sameOrigin(req)) return send(res, 403, 'text/plain; charset=utf-8', 'Cross-origin request refused.\n'), true;
      if (user?.id) sessions.delete(user.id);
      res.writeHead(303, { location: '/dashboard', 'set-cookie': `${COOKIE}=; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=0` });
      res.end();
      return true;
    }
    if (!user) {
      if (path === '/dashboard' && method === 'GET') return send(res, 200, 'text/html; charset=utf-8', loginPage()), true;
      throw new HttpError('unauthorized', 'Sign in at /dashboard first.');
    }
    if (path === '/dashboard' && method === 'GET') return send(res, 200, 'text/html; charset=utf-8', shellPage(user.role, user.csrf, user.id !== undefined)), true;
    if (path === '/dashboard/api/tunnels' && method === 'GET') return send(res, 200, 'application/json; charset=utf-8', snapshot()), true;
    if (path === '/dashboard/events' && method === 'GET') return stream(req, res), true;
    if (path === '/dashboard/api/captures' && method === 'GET') {
      const find = new URL(req.url ?? '/', 'http://dashboard').searchParams.get('find') ?? undefined;
      return send(res, 200, 'application/json; charset=utf-8', JSON.stringify({ kept: captures.size, max: options.capture, captures: captures.list(find) })), true;
    }
    if (replayOne && method === 'POST') return replayRequest(req, res, user, replayOne[1]!).then(() => true);
    if (close && method === 'POST') {
      if (user.role !== 'admin') throw new HttpError('forbidden', 'Only an admin can close tunnels here; a developer closes their own from their client.');
      checkCsrf(req, user);
      if (!registry.get(close[1]!)) throw new HttpError('unknown_tunnel', 'No such tunnel (it closed already?).');
      registry.remove(close[1]!, 'closed_by_admin');
      logger.log('warn', 'dashboard.close', { id: close[1], remote: req.socket.remoteAddress });
      res.writeHead(204, { 'cache-control': 'no-store' });
      res.end();
      return true;
    }
    throw new HttpError('not_found', `Nothing at ${path}.`);
  };
}
