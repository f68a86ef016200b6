import type { IncomingMessage } from 'node:http';
import { ID_PATTERN } from '@devtunnel/core/protocol';
import { HttpError } from '../errors';
import type { ServerLogger } from '../logger';
import type { ServerMetrics } from '../metrics';
import type { ResolvedServerOptions } from '../options';
import { createRateWindow } from '../rate-window';
import type { Registry } from '../registry';
import type { TunnelSession } from '../session';
import { tokenCheck } from '../token-check';

/** Failed authentications allowed per address per window before 429. */
const AUTH_FAILURES_PER_WINDOW = 30;
const AUTH_WINDOW_MS = 60_000;

export function bearer(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer ([\x21-\x7e]+)$/i.exec(h);
  return m?.[1];
}

export interface ControlAuth {
  /** The registration token, or 401; past the address's failure budget, 429 for the window. */
  requireToken(req: IncomingMessage): void;
  /** The tunnel `id` and its own secret, or 404 `unknown_tunnel` / 401. */
  requireTunnel(req: IncomingMessage, id: string): TunnelSession;
  /** Counts a failed authentication (the dashboard's sign-in too); returns the error to answer. */
  authFailed(req: IncomingMessage): HttpError;
  /** Whether the address is over its failed-authentication budget. */
  throttled(req: IncomingMessage): boolean;
}

/**
 * Who may call what: the registration token (shared by every developer, so guessing it is
 * throttled per address), or a tunnel's own secret (never counted: 256 bits cannot be guessed).
 */
export function createControlAuth(deps: { options: ResolvedServerOptions; registry: Registry; logger: ServerLogger; metrics: ServerMetrics }): ControlAuth {
  const { options, registry, logger } = deps;
  const isToken = tokenCheck(options.token);
  const failures = createRateWindow(AUTH_WINDOW_MS, options.now);

  function authFailed(req: IncomingMessage): HttpError {
    failures.hit(req.socket.remoteAddress ?? 'unknown');
    deps.metrics.authFailed();
    logger.log('warn', 'auth.failed', { remote: req.socket.remoteAddress ?? 'unknown', path: req.url?.split('?')[0] });
    return new HttpError('unauthorized', 'Missing or wrong token: send "Authorization: Bearer <token>" with the token the tunnel server was started with (DEVTUNNEL_TOKEN).');
  }

  const throttled = (req: IncomingMessage) => failures.count(req.socket.remoteAddress ?? 'unknown') >= AUTH_FAILURES_PER_WINDOW;

  return {
    authFailed,
    throttled,
    requireToken(req) {
      if (throttled(req)) throw new HttpError('rate_limited', 'Too many failed authentications from this address; wait a minute.', { retryAfter: 60 });
      const given = bearer(req);
      if (given === undefined || !isToken(given)) throw authFailed(req);
    },
    requireTunnel(req, id) {
      const tunnel = ID_PATTERN.test(id) ? registry.get(id) : undefined;
      if (!tunnel) throw new HttpError('unknown_tunnel', 'No such tunnel: it expired, was closed, or the server restarted. Register again.');
      const given = bearer(req);
      if (given !== undefined && tunnel.verifySecret(given)) return tunnel;
      // Not counted towards the address's budget: a 256-bit secret cannot be guessed, and a
      // throttle here would let one bad script behind a shared NAT cut everyone's polls.
      logger.log('warn', 'auth.failed', { remote: req.socket.remoteAddress, path: req.url?.split('?')[0] });
      throw new HttpError('unauthorized', 'Wrong tunnel secret for this tunnel; register again.');
    },
  };
}
