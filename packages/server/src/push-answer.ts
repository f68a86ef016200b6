import type { ServerResponse } from 'node:http';
import { joinedValue, pushVariant, type PushInfo, type ResponseHead } from '@devtunnel/core/protocol';
import { answerForBrowser } from './content-coding';
import type { Exchange } from './exchange';
import { identityHash, type PushHit, type PushLookup } from './push-cache';
import type { TunnelSession } from './session';

/**
 * Pushes at the HTTP edges (feature `push`, docs/speculation.md): a push or a promise read from a
 * client's batch upload or upstream goes to its tunnel's cache; a browser request that a push
 * answers is written from it, with the same framing rules as an answer from the client.
 */

/** Says, on the browser's answer, that it came from a push (no trip to the laptop). */
export const PUSH_HEADER = 'X-Devtunnel-Push';

/** A push head (a push, a `none`, a `drop`) with its body, from a batch upload or an upstream. */
export function receivePush(tunnel: TunnelSession, head: ResponseHead & { push: PushInfo }, body: Uint8Array): void {
  const pushes = tunnel.pushes;
  // A client that pushes to a server that did not offer the feature: nothing to keep it in.
  if (!pushes) return;
  if (head.promise && !head.push.none && !head.push.drop) pushes.promise(head.push.identity, head.promise);
  // A copy: the frame reader's body may be a view into a larger chunk of the upload.
  pushes.put(head, body.length === 0 ? body : body.slice());
}

/** An answer that promises pushes for its own browser: they follow on their way up. */
export function promisePushes(tunnel: TunnelSession, ex: Exchange, urls: readonly string[]): void {
  tunnel.pushes?.promise(identityHash(ex.message.headers), urls);
}

/**
 * The request as the push cache matches it, or undefined when no push may answer it: a GET or
 * HEAD without a body, a range (RFC 9110 §14.2: a push is the whole representation) or a
 * precondition other than If-None-Match; nor one that asks caches to check with the origin
 * (`no-cache`, `max-age=0`, `no-store`, `Pragma: no-cache`: RFC 9111 §5.2.1, §5.4), as a hard reload does.
 */
export function pushLookup(ex: Exchange): PushLookup | undefined {
  const m = ex.message;
  if ((m.method !== 'GET' && m.method !== 'HEAD') || m.bodyLength !== 0) return undefined;
  const h = m.headers;
  if (joinedValue(h, 'range') !== null || joinedValue(h, 'if-match') !== null || joinedValue(h, 'if-range') !== null || joinedValue(h, 'if-unmodified-since') !== null) return undefined;
  const cc = joinedValue(h, 'cache-control');
  if (cc !== null && /no-cache|no-store|max-age\s*=\s*0\b/i.test(cc)) return undefined;
  const pragma = joinedValue(h, 'pragma');
  if (pragma !== null && /no-cache/i.test(pragma)) return undefined;
  return { method: m.method, url: m.url, headers: h, identity: identityHash(h), variant: pushVariant(h) };
}

/**
 * Writes a push to the browser: `browserHeaders` (respond.ts) frames it as any answer from the
 * client (hop-by-hop stripped, Content-Length computed here, X-Request-Id), plus {@link PUSH_HEADER}.
 */
export function writePushHit(
  ex: Exchange,
  res: ServerResponse,
  hit: PushHit,
  browserHeaders: (ex: Exchange, head: ResponseHead, bodyLength: number | null, noBody: boolean) => string[],
): void {
  const noBody = ex.message.method === 'HEAD' || hit.status === 304;
  // Encoded for the leg (option compress): the bytes as they came to a browser that accepts the
  // coding, decoded for any other, as for an answer from the client (content-coding.ts). Throws
  // bad_response for a body that does not decode; the caller's error path answers it.
  const answer = hit.body ? answerForBrowser(ex.message.headers, { status: hit.status, headers: hit.headers, bodyLength: hit.body.length, coding: hit.coding }, hit.body) : undefined;
  const body = answer?.bytes ?? hit.body;
  const length = body?.length ?? 0;
  const answered = answer?.head.headers ?? hit.headers;
  // HEAD: the length of the body a GET would get (RFC 9110 §9.3.2), which a push knows exactly.
  const headers = ex.message.method === 'HEAD' && body ? [...answered, ['content-length', String(length)] as [string, string]] : answered;
  const flat = browserHeaders(ex, { status: hit.status, headers, bodyLength: length }, noBody ? null : length, noBody);
  flat.push(PUSH_HEADER, 'hit');
  res.writeHead(hit.status, flat);
  ex.bytesOut = noBody ? 0 : length;
  if (noBody || !body) res.end();
  else res.end(body);
}
