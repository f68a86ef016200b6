import type { HeaderPairs } from './messages';

/**
 * What both sides compute the same way for pushes (feature `push`, docs/protocol.md "Pushes"): who
 * a push is for, and which kind of request it answers. Hashing is left to each side (SHA-256 of
 * {@link pushIdentity}, base64url, the first 22 characters): this module imports nothing.
 */

/**
 * The request headers that make a browser who it is to the local app: its credentials, and what
 * it says about itself on every request. A push is used only for a request with the same values.
 */
export const IDENTITY_HEADERS: readonly string[] = Object.freeze(['host', 'cookie', 'authorization', 'accept-language', 'user-agent']);

/** Headers an answer may `Vary` on and still be pushed: the push request copies them from the browser's. */
export const PUSH_VARY_HEADERS: readonly string[] = Object.freeze(['origin', 'accept-encoding', 'sec-fetch-dest', 'accept']);

/** Every value of `name` (lower case) in `headers`, joined as one field value (RFC 9110 §5.3); null when absent. */
export function joinedValue(headers: HeaderPairs, name: string): string | null {
  let out: string | null = null;
  for (const [n, v] of headers) {
    if (n.length !== name.length || n.toLowerCase() !== name) continue;
    out = out === null ? v : `${out}, ${v}`;
  }
  return out;
}

/** The canonical text of a request's identity headers, to be hashed: one line per header, NUL when absent. */
export function pushIdentity(headers: HeaderPairs): string {
  let text = '';
  for (const name of IDENTITY_HEADERS) text += `${joinedValue(headers, name) ?? '\0'}\n`;
  return text;
}

/**
 * What of a request beyond its URL and identity a dev server reads to choose its answer: the
 * destination (`Sec-Fetch-Dest`: Vite serves HTML differently to a document) and the kind of
 * `Accept` (`text/css` gets Vite's CSS itself, anything else the CSS as a JS module; `text/html`
 * an HTML fallback). A push answers only a request of the same variant.
 */
export function pushVariant(headers: HeaderPairs): string {
  const dest = joinedValue(headers, 'sec-fetch-dest') ?? '';
  const accept = joinedValue(headers, 'accept') ?? '';
  const kind = accept.includes('text/html') ? 'html' : accept.includes('text/css') ? 'css' : '';
  return `${dest}|${kind}`;
}

/**
 * Whether `If-None-Match` matches an `ETag` by the weak comparison (RFC 9110 §13.1.2: a GET's
 * If-None-Match uses weak comparison, §8.8.3.2); `*` matches any.
 */
export function etagMatches(ifNoneMatch: string, etag: string): boolean {
  if (ifNoneMatch.trim() === '*') return true;
  const want = etag.trim().replace(/^W\//, '');
  // entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE (§8.8.3): an opaque tag may hold commas.
  for (const m of ifNoneMatch.matchAll(/(?:W\/)?("[^"]*")/g)) if (m[1] === want) return true;
  return false;
}
