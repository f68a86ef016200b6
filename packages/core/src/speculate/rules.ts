import { createHash } from 'node:crypto';
import { joinedValue, MAX_PUSH_BODY, PUSH_VARY_HEADERS, pushIdentity, type HeaderPairs } from '../protocol';

/**
 * What may be pushed, and for whom (docs/speculation.md): pure rules, no sockets. The identity
 * hash is the server's too (packages/server/src/push-cache.ts), from the same canonical text.
 */

/** SHA-256 of the identity headers (`pushIdentity`), base64url, 22 characters (128 bits). */
export function identityHash(headers: HeaderPairs): string {
  return createHash('sha256').update(pushIdentity(headers)).digest('base64url').slice(0, 22);
}

/**
 * Why an answer of the local app may not be pushed, or undefined when it may: a 200 (no partial
 * content, redirect or error), no `Set-Cookie` (a push must not change the browser's state before
 * it asks), nothing the app keeps out of shared caches (`no-store`, `private`: RFC 9111 §5.2.2.3,
 * §5.2.2.7), no event stream, a `Vary` only on request headers the push copied from the browser's
 * (never `*`), a body of known size within the bound.
 */
export function notPushable(status: number, headers: HeaderPairs, bodyLength: number | null): string | undefined {
  if (status !== 200) return `status ${status}`;
  if (joinedValue(headers, 'set-cookie') !== null) return 'set-cookie';
  if (joinedValue(headers, 'content-range') !== null) return 'content-range';
  const cc = joinedValue(headers, 'cache-control');
  if (cc !== null && /\b(no-store|private)\b/i.test(cc)) return 'cache-control';
  const type = joinedValue(headers, 'content-type');
  if (type !== null && /^\s*text\/event-stream/i.test(type)) return 'event stream';
  if (varyNames(headers) === undefined) return 'vary';
  if (bodyLength !== null && bodyLength > MAX_PUSH_BODY) return 'too large';
  return undefined;
}

/** The request headers an answer varies on (lower case), or undefined when one may not be pushed. */
export function varyNames(headers: HeaderPairs): string[] | undefined {
  const vary = joinedValue(headers, 'vary');
  if (vary === null) return [];
  const names = vary.split(',').map((n) => n.trim().toLowerCase()).filter(Boolean);
  return names.every((n) => PUSH_VARY_HEADERS.includes(n)) ? [...new Set(names)] : undefined;
}

/**
 * Whether the browser keeps an answer without asking again (`immutable`, or a year's `max-age`, as
 * Vite's pre-bundled dependencies with `?v=` are): once delivered to a browser, never pushed again.
 */
export function isImmutable(headers: HeaderPairs): boolean {
  const cc = joinedValue(headers, 'cache-control');
  if (cc === null) return false;
  if (/\bimmutable\b/i.test(cc)) return true;
  const age = /\bmax-age\s*=\s*(\d+)/i.exec(cc);
  return age !== null && Number(age[1]) >= 86_400 && !/\bno-cache\b/i.test(cc);
}

/** Headers of the browser's request a push request copies: who it is, and where it came from. */
const COPIED = new Set(['host', 'cookie', 'authorization', 'accept-encoding', 'accept-language', 'user-agent', 'origin', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']);

/**
 * The headers of a push request for a reference of `parent`'s answer: the browser's identity and
 * forwarding headers as they came; `Accept` and `Sec-Fetch-*` as a browser sends them for a script
 * or a stylesheet (only when the parent had `Sec-Fetch-Dest`: a client that sends none, such as
 * a script, sends none for what it loads next either).
 */
export function pushRequestHeaders(parent: HeaderPairs, as: 'script' | 'style'): HeaderPairs {
  const out: HeaderPairs = [];
  let browser = false;
  for (const pair of parent) {
    const lower = pair[0].toLowerCase();
    if (COPIED.has(lower)) out.push(pair);
    else if (lower === 'sec-fetch-dest') browser = true;
  }
  out.push(['accept', as === 'style' ? 'text/css,*/*;q=0.1' : '*/*']);
  if (browser) out.push(['sec-fetch-dest', as], ['sec-fetch-mode', as === 'style' ? 'no-cors' : 'cors'], ['sec-fetch-site', 'same-origin']);
  return out;
}

/** A hard reload (or a client that bypasses caches): nothing is speculated for it. */
export function bypassesCaches(headers: HeaderPairs): boolean {
  const cc = joinedValue(headers, 'cache-control');
  const pragma = joinedValue(headers, 'pragma');
  return (cc !== null && /no-cache|no-store/i.test(cc)) || (pragma !== null && /no-cache/i.test(pragma));
}
