import type { IncomingMessage, ServerResponse } from 'node:http';
import { API_PREFIX, HEADER, ID_PATTERN, PROTOCOL_VERSION } from '@devtunnel/core/protocol';
import { sendError } from './error-response';
import { HttpError } from './errors';
import type { ServerLogger } from './logger';
import type { ResolvedServerOptions } from './options';
import type { ServerMetrics } from './metrics';
import type { Registry } from './registry';
import { createDashboard } from './dashboard';
import { handleBatchUpload, handleResponseUpload, handleStreamUpload } from './respond';
import { createRateWindow } from './rate-window';
import { tokenCheck } from './token-check';
import { handleUpstream } from './upgrade';
import type { TunnelSession } from './session';

/**
 * The control API, in the order a request meets it: route → authenticate → act. Errors become
 * responses in one place, at the end (`controlApi`'s catch).
 *
 *   GET    /healthz, /readyz, /metrics (Prometheus)
 *   *      /dashboard…                             the dashboard (its own sign-in; dashboard.ts)
 *   POST   /api/v1/tunnels                         register            (registration token)
 *   GET    /api/v1/tunnels                         list                (registration token)
 *   GET    /api/v1/tunnels/:id                     check               (tunnel secret)
 *   DELETE /api/v1/tunnels/:id                     deregister          (tunnel secret only)
 *   GET    /api/v1/tunnels/:id/poll                long-poll           (tunnel secret)
 *   POST   /api/v1/tunnels/:id/requests/:rid       response upload     (tunnel secret)
 *   POST   /api/v1/tunnels/:id/responses           several small answers (tunnel secret; feature batch)
 *   GET    /api/v1/tunnels/:id/stream              downstream of requests (tunnel secret; feature stream)
 *   POST   /api/v1/tunnels/:id/stream              upstream of answers (tunnel secret; feature stream)
 *   GET    /api/v1/tunnels/:id/requests/:rid/upstream  a WebSocket's browser bytes (tunnel secret)
 */
export interface ControlDeps {
  options: ResolvedServerOptions;
  registry: Registry;
  logger: ServerLogger;
  metrics: ServerMetrics;
  /** False while starting or draining: /readyz answers 503. */
  isReady(): boolean;
}

/** Largest registration body accepted. */
const MAX_JSON_BYTES = 16 * 1024;
/** Failed authentications allowed per address per window before 429. */
const AUTH_FAILURES_PER_WINDOW = 30;
const AUTH_WINDOW_MS = 60_000;

function bearer(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer ([\x21-\x7e]+)$/i.exec(h);
  return m?.[1];
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_JSON_BYTES) return reject(new HttpError('payload_too_large', `The body may be at most ${MAX_JSON_BYTES} bytes.`));
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_JSON_BYTES) {
        // Stop reading; the error answer closes the connection behind it.
        req.pause();
        reject(new HttpError('payload_too_large', `The body may be at most ${MAX_JSON_BYTES} bytes.`));
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(new HttpError('invalid_request', 'The body must be JSON.'));
      }
    });
    req.once('error', reject);
  });
}

export function createControlHandler(deps: ControlDeps) {
  const { options, registry, logger } = deps;
  const isToken = tokenCheck(options.token);
  const failures = createRateWindow(AUTH_WINDOW_MS, options.now);

  /** Counts a failed authentication; past the budget the address gets 429 for the window. */
  function authFailed(req: IncomingMessage): HttpError {
    const ip = req.socket.remoteAddress ?? 'unknown';
    failures.hit(ip);
    deps.metrics.authFailed();
    logger.log('warn', 'auth.failed', { remote: ip, path: req.url?.split('?')[0] });
    return new HttpError('unauthorized', 'Missing or wrong token: send "Authorization: Bearer <token>" with the token the tunnel server was started with (DEVTUNNEL_TOKEN).');
  }

  function throttled(req: IncomingMessage): boolean {
    return failures.count(req.socket.remoteAddress ?? 'unknown') >= AUTH_FAILURES_PER_WINDOW;
  }

  const dashboard = createDashboard({ options, registry, logger, authFailed, throttled });

  function requireToken(req: IncomingMessage): void {
    // Guessing the shared registration token is throttled per address.
    if (throttled(req)) throw new HttpError('rate_limited', 'Too many failed authentications from this address; wait a minute.', { retryAfter: 60 });
    const given = bearer(req);
    if (given === undefined || !isToken(given)) throw authFailed(req);
  }

  function requireTunnel(req: IncomingMessage, id: string): TunnelSession {
    const tunnel = ID_PATTERN.test(id) ? registry.get(id) : undefined;
    if (!tunnel) throw new HttpError('unknown_tunnel', 'No such tunnel: it expired, was closed, or the server restarted. Register again.');
    const given = bearer(req);
    if (given !== undefined && tunnel.verifySecret(given)) return tunnel;
    // Not counted towards the address's budget: a 256-bit secret cannot be guessed, and a
    // throttle here would let one bad script behind a shared NAT cut everyone's polls.
    logger.log('warn', 'auth.failed', { remote: req.socket.remoteAddress, path: req.url?.split('?')[0] });
    throw new HttpError('unauthorized', 'Wrong tunnel secret for this tunnel; register again.');
  }

  function methodNotAllowed(allow: string): HttpError {
    return new HttpError('method_not_supported', `Use ${allow} on this path.`);
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!;
    const method = req.method ?? 'GET';

    if (path === '/healthz') return json(res, 200, { status: 'ok' });
    if (path === '/metrics') {
      // Prometheus scrapes from inside the cluster; the NetworkPolicy decides who may (docs/deploy.md).
      const { text, contentType } = await deps.metrics.render();
      res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
      res.end(text);
      return;
    }
    if (path === '/readyz') {
      if (!deps.isReady()) throw new HttpError('server_shutting_down', 'Not ready: starting or draining.', { retryAfter: 2 });
      return json(res, 200, { status: 'ready', tunnels: registry.size });
    }
    // Polls and uploads must not wait a turn for the dashboard's router.
    if (path.startsWith('/dashboard') && (await dashboard(req, res, path))) return;
    if (!path.startsWith(`${API_PREFIX}/tunnels`)) throw new HttpError('not_found', `Nothing at ${path}. The API lives under ${API_PREFIX}/.`);

    const parts = path.slice(API_PREFIX.length + 1).split('/');
    // parts: ['tunnels'] | ['tunnels', id] | ['tunnels', id, 'poll'] | ['tunnels', id, 'requests', rid]
    if (parts.length === 1) {
      if (method === 'POST') {
        requireToken(req);
        const spoken = req.headers[HEADER.protocol];
        if (spoken !== undefined && spoken !== String(PROTOCOL_VERSION)) {
          throw new HttpError('invalid_request', `This server speaks devtunnel protocol ${PROTOCOL_VERSION}; the client speaks ${String(spoken)}. Use matching versions of the client and the server.`);
        }
        const body = await readJson(req);
        const answer = await registry.register(body, req.headers.host);
        return json(res, 201, answer);
      }
      if (method === 'GET') {
        requireToken(req);
        return json(res, 200, { tunnels: registry.list() });
      }
      throw methodNotAllowed('GET or POST');
    }

    const id = parts[1] ?? '';
    if (parts.length === 2) {
      if (method === 'GET') {
        const t = requireTunnel(req, id);
        const key = req.headers[HEADER.downstream];
        if (typeof key === 'string') t.confirmDownstream(key);
        return json(res, 200, { id: t.id, name: t.name, port: t.port, state: t.state() });
      }
      if (method === 'DELETE') {
        // Only the tunnel's own secret: the registration token is shared by every developer.
        requireTunnel(req, id);
        registry.remove(id, 'deregistered');
        res.writeHead(204).end();
        return;
      }
      throw methodNotAllowed('GET or DELETE');
    }

    if (parts.length === 3 && parts[2] === 'poll') {
      if (method !== 'GET') throw methodNotAllowed('GET');
      requireTunnel(req, id).addPoll(req, res);
      return;
    }

    if (parts.length === 3 && parts[2] === 'stream') {
      if (method === 'GET') return requireTunnel(req, id).attachDownstream(req, res);
      if (method === 'POST') return handleStreamUpload(requireTunnel(req, id), req, res);
      throw methodNotAllowed('GET or POST');
    }

    if (parts.length === 3 && parts[2] === 'responses') {
      if (method !== 'POST') throw methodNotAllowed('POST');
      await handleBatchUpload(requireTunnel(req, id), req, res);
      return;
    }

    if (parts.length === 5 && parts[2] === 'requests' && parts[4] === 'upstream') {
      if (method !== 'GET') throw methodNotAllowed('GET');
      const tunnel = requireTunnel(req, id);
      const rid = parts[3] ?? '';
      const exchange = ID_PATTERN.test(rid) ? tunnel.findUpgrade(rid) : new HttpError('unknown_request', 'No such request on this tunnel.');
      if (exchange instanceof HttpError) throw exchange;
      handleUpstream(exchange, req, res);
      return;
    }

    if (parts.length === 4 && parts[2] === 'requests') {
      if (method !== 'POST') throw methodNotAllowed('POST');
      const tunnel = requireTunnel(req, id);
      const rid = parts[3] ?? '';
      const exchange = ID_PATTERN.test(rid) ? tunnel.take(rid) : new HttpError('unknown_request', 'No such request on this tunnel.');
      if (exchange instanceof HttpError) throw exchange;
      await handleResponseUpload(tunnel, exchange, req, res);
      return;
    }

    throw new HttpError('not_found', `Nothing at ${path}.`);
  }

  return async function controlApi(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      await route(req, res);
    } catch (error) {
      const e = error instanceof HttpError ? error : new HttpError('internal_error', 'Internal error; see the server log.');
      if (!(error instanceof HttpError)) logger.log('error', 'control.internal_error', { error: (error as Error).stack ?? String(error) });
      // A body we did not read would be parsed as the next request: close instead.
      sendError(req, res, e, { fallback: 'json', close: !req.complete });
    }
  };
}
