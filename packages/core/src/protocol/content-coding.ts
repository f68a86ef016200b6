/**
 * Content codings on the laptop leg (feature `encode`): the codings a client may apply to an answer,
 * and what a request's `Accept-Encoding` accepts (RFC 9110 §12.5.3). Both sides read the header
 * the same way: the client to choose a coding, the server to decide whether the browser gets the
 * encoded bytes as they came or decoded.
 */

/** The codings a client may apply, most preferred first. */
export const CONTENT_CODINGS = Object.freeze(['br', 'gzip'] as const);
export type ContentCoding = (typeof CONTENT_CODINGS)[number];

export function isContentCoding(value: unknown): value is ContentCoding {
  return value === 'br' || value === 'gzip';
}

/** A qvalue (RFC 9110 §12.4.2): `0` to `1` with at most three decimals. */
const QVALUE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/;

/**
 * The weight `accept` (the request's `Accept-Encoding`, its lines joined with commas) gives
 * `coding`: its own member's, else `*`'s, else 0. `x-gzip` counts as `gzip` (RFC 9110 §8.4.1.3).
 * A member with a malformed weight is ignored. A request without the header gets 0: RFC 9110
 * allows any coding then, but what sends no `Accept-Encoding` (curl, scripts, health checks)
 * usually cannot decode, and no server we know of (nginx, Apache, Express's compression) encodes
 * for it. An empty header accepts nothing but identity.
 */
export function codingWeight(accept: string | undefined, coding: ContentCoding): number {
  if (!accept) return 0;
  let own = -1;
  let any = -1;
  for (const member of accept.split(',')) {
    const semi = member.indexOf(';');
    const name = (semi < 0 ? member : member.slice(0, semi)).trim().toLowerCase();
    if (!name) continue;
    const isOwn = name === coding || (coding === 'gzip' && name === 'x-gzip');
    if (!isOwn && name !== '*') continue;
    let q = 1;
    if (semi >= 0) {
      const weight = weightOf(member.slice(semi + 1));
      if (weight === undefined) continue;
      q = weight;
    }
    if (isOwn) own = Math.max(own, q);
    else any = Math.max(any, q);
  }
  return own >= 0 ? own : any >= 0 ? any : 0;
}

/** The `q` parameter of a member's parameters (`q=0.5`), 1 without one, undefined when malformed. */
function weightOf(params: string): number | undefined {
  let q = 1;
  for (const param of params.split(';')) {
    const eq = param.indexOf('=');
    const key = (eq < 0 ? param : param.slice(0, eq)).trim().toLowerCase();
    if (key !== 'q') continue;
    const value = eq < 0 ? '' : param.slice(eq + 1).trim();
    if (!QVALUE.test(value)) return undefined;
    q = Number(value);
  }
  return q;
}

/** Whether `accept` accepts `coding` (a weight above 0). */
export function acceptsCoding(accept: string | undefined, coding: ContentCoding): boolean {
  return codingWeight(accept, coding) > 0;
}

/**
 * The coding `accept` prefers among {@link CONTENT_CODINGS}: the highest weight above 0, `br` on a
 * tie (smaller for text at the same cost); undefined when it accepts neither.
 */
export function preferredCoding(accept: string | undefined): ContentCoding | undefined {
  const br = codingWeight(accept, 'br');
  const gzip = codingWeight(accept, 'gzip');
  if (br <= 0 && gzip <= 0) return undefined;
  return br >= gzip ? 'br' : 'gzip';
}
