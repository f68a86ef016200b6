import type { RegisterRequest } from '@devtunnel/core/protocol';
import { HttpError } from '../errors';
import type { ServerLogger } from '../logger';
import { createRateWindow } from '../rate-window';
import { owner } from './snapshot';

/**
 * Registrations one identity may make per minute. A client paces its own (a few a minute at
 * worst); this stops an old or broken one from flooding the server and its log.
 */
const REGISTRATIONS_PER_MINUTE = 12;
/** Client processes remembered as replaced by another of the same identity, at most. */
const MAX_REPLACED = 10_000;

/** What the registry needs to know of the tunnel an identity holds now. */
interface Holder {
  readonly clientId: string;
  readonly instance: string | undefined;
  readonly localPort: number | undefined;
}

export interface IdentityGate {
  /**
   * Refuses (throws) a registration that comes too often for its identity (429), or from a client
   * process another of its identity replaced (409 `tunnel_replaced`). `holder`: the identity's tunnel now.
   */
  admit(req: RegisterRequest, holder: Holder | undefined): void;
  /**
   * Whether `req` takes the tunnel over from `previous`: another process of the identity (its
   * instance differs), which is then remembered as replaced. The same process renews its session.
   */
  takesOver(req: RegisterRequest, previous: Holder): boolean;
  /** What a replaced client is told; `localPort` is the one the tunnel serves now. */
  replacedBy(localPort: number | undefined): HttpError;
  /** Forgets what expired by `t`. */
  sweep(t: number): void;
}

/**
 * One identity, two live clients (docs/protocol.md, "One identity, two clients"): the newer
 * process takes over once, the one it replaced is refused from then on, and every identity's
 * registrations are limited per minute.
 */
export function createIdentityGate(options: { now: () => number; expireMs: number; logger: ServerLogger }): IdentityGate {
  const { now, logger } = options;
  const registrations = createRateWindow(60_000, now);
  /** `clientId instance` of replaced processes, until when they are refused. */
  const replaced = new Map<string, number>();

  const replacedBy = (localPort: number | undefined) =>
    new HttpError('tunnel_replaced', `Another devtunnel client with the same identity took this tunnel over${localPort ? ` (it serves local port ${localPort})` : ''}.`);

  return {
    admit(req, holder) {
      const hits = registrations.hit(req.clientId);
      if (hits > REGISTRATIONS_PER_MINUTE) {
        // Said once per window, however long the client keeps trying.
        if (hits === REGISTRATIONS_PER_MINUTE + 1) logger.log('warn', 'registration.limited', { owner: owner(req.clientId), limit: REGISTRATIONS_PER_MINUTE });
        throw new HttpError('rate_limited', `This client registered ${REGISTRATIONS_PER_MINUTE} times within a minute; wait before registering again. Two clients with the same identity may be replacing each other: stop one, or update the older one.`, { retryAfter: Math.ceil(registrations.remainingMs(req.clientId) / 1000) });
      }
      if (req.instance !== undefined && (replaced.get(`${req.clientId} ${req.instance}`) ?? 0) > now()) throw replacedBy(holder?.localPort);
    },
    takesOver(req, previous) {
      if (req.instance === undefined || previous.instance === undefined || previous.instance === req.instance) return false;
      if (replaced.size >= MAX_REPLACED) replaced.clear();
      replaced.set(`${previous.clientId} ${previous.instance}`, now() + options.expireMs);
      return true;
    },
    replacedBy,
    sweep(t) {
      for (const [key, until] of replaced) if (until <= t) replaced.delete(key);
    },
  };
}
