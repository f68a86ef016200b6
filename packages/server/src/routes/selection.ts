import type { IncomingMessage } from 'node:http';
import { NAME_PATTERN } from '@devtunnel/core/protocol';

/**
 * Which developer a request on a route names, if any: the header `X-Devtunnel: <name>` (API
 * clients, curl: said per request, so it wins), else the cookie `devtunnel=<name>` (browsers),
 * else the W3C `baggage` member `devtunnel=<name>` (service-to-service calls that propagate
 * OpenTelemetry context). A value that is not a tunnel name (malformed, oversized) names nobody:
 * the request goes to the real app, never to an error page.
 */

/** The selection's name in every carrier: cookie, baggage member. */
export const SELECTION_KEY = 'devtunnel';
/** The header API clients set. */
export const SELECTION_HEADER = 'x-devtunnel';
/** The header that says who served an answer on a route: `tunnel <name>`, `upstream`, or `error`. */
export const SERVED_BY = 'X-Devtunnel-Served-By';

/** What a tunnel's answer on a route depends on, beyond its URL. */
const SELECTION_VARY = ['Cookie', 'X-Devtunnel', 'Baggage'];

/**
 * Adds the selection's carriers to `Vary` in a flat header list (a tunnel's answer on a route):
 * the same URL answers from a laptop or from the real app by cookie, header or baggage, so no
 * cache may hand a developer's page to someone else, nor keep serving it once the browser turned
 * the selection off. Answers of the real app keep their own headers, so that for everyone else
 * the site caches as it did; the price: an answer of the real app a browser holds as fresh may
 * still be reused once it selects a tunnel, until it expires or the page is reloaded.
 */
export function addSelectionVary(flat: string[]): void {
  let at = -1;
  for (let i = 0; i < flat.length; i += 2) {
    if (flat[i]!.length === 4 && flat[i]!.toLowerCase() === 'vary') {
      at = i;
      break;
    }
  }
  if (at === -1) return void flat.push('Vary', SELECTION_VARY.join(', '));
  const value = flat[at + 1]!;
  if (value.trim() === '*') return;
  const have = new Set(value.split(',').map((v) => v.trim().toLowerCase()));
  const more = SELECTION_VARY.filter((v) => !have.has(v.toLowerCase()));
  if (more.length) flat[at + 1] = `${value}, ${more.join(', ')}`;
}

/** Bounds the scan of a hostile header: a name is at most 63 characters. */
const MAX_SCANNED = 8 * 1024;

const valid = (v: string | undefined): string | undefined => (v !== undefined && NAME_PATTERN.test(v) ? v : undefined);

/** `devtunnel=<v>` among `;`-separated cookie pairs (RFC 6265 §5.4), first wins. */
function fromCookie(header: string): string | undefined {
  // Most requests carry cookies but no selection: one search, no split.
  if (!header.includes(`${SELECTION_KEY}=`)) return undefined;
  for (const pair of header.slice(0, MAX_SCANNED).split(';')) {
    const eq = pair.indexOf('=');
    if (eq === -1 || pair.slice(0, eq).trim() !== SELECTION_KEY) continue;
    let value = pair.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    return valid(value);
  }
  return undefined;
}

/** `devtunnel=<v>` among `,`-separated baggage members (W3C Baggage), properties after `;` ignored. */
function fromBaggage(header: string): string | undefined {
  if (header.length > MAX_SCANNED) return undefined;
  for (const member of header.split(',')) {
    const eq = member.indexOf('=');
    if (eq === -1 || member.slice(0, eq).trim() !== SELECTION_KEY) continue;
    const semi = member.indexOf(';', eq);
    const raw = member.slice(eq + 1, semi === -1 ? undefined : semi).trim();
    try {
      return valid(decodeURIComponent(raw));
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** The name this request selects, or undefined (none, or not a valid name). */
export function selectedName(req: IncomingMessage): string | undefined {
  const h = req.headers;
  const header = h[SELECTION_HEADER];
  if (typeof header === 'string') return valid(header.trim());
  const cookie = h.cookie;
  if (cookie !== undefined) {
    const name = fromCookie(cookie);
    if (name !== undefined) return name;
  }
  const baggage = h.baggage;
  return baggage === undefined ? undefined : fromBaggage(Array.isArray(baggage) ? baggage.join(',') : baggage);
}
