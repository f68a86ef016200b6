import type { Transform } from 'node:stream';
import { brotliDecompressSync, createBrotliDecompress, createGunzip, gunzipSync } from 'node:zlib';
import { acceptsCoding, headerList, type ContentCoding, type HeaderPairs, type ResponseHead } from '@devtunnel/core/protocol';
import { badResponse } from './error-response';

/**
 * Encoded answers (feature `encode`): the client may compress an answer for the laptop leg
 * (`ResponseHead.coding`). A browser whose `Accept-Encoding` takes that coding gets the encoded
 * bytes as they came; any other gets them decoded, without `Content-Encoding` (docs/protocol.md,
 * "Encoded answers"). Whatever answers a browser (an upload, a batch, an upstream, an answer kept
 * to be served later) goes through {@link answerForBrowser}.
 */

/**
 * Most bytes a whole answer decodes to. The client sends whole only answers that were at most
 * `MAX_WHOLE_BODY` (64 KiB) before encoding; this bound stops a body that decodes to far more
 * (a corrupt or hostile one) from taking the server's memory, and it is refused.
 */
export const MAX_WHOLE_DECODED = 8 * 1024 * 1024;

/** What a browser gets for an answer. */
export interface BrowserAnswer {
  /**
   * The head to write: the answer's own when it goes as it came; else its headers without
   * `Content-Encoding`, and `bodyLength` that of the decoded bytes (null while they stream).
   */
  head: ResponseHead;
  /** A whole answer's body for the browser (decoded when it had to be). */
  bytes: Uint8Array | null;
  /**
   * A streamed answer that must be decoded: write the client's bytes into it and send the browser
   * what it gives. It fails on a body that does not decode (the browser's connection must then be
   * cut: a truncated body never looks complete). Undefined: the bytes go as they come.
   */
  decoder: Transform | undefined;
}

// Browsers send the same Accept-Encoding on every request: the answer for the last one is kept.
let lastAccept: string | undefined;
let lastCoding: ContentCoding | undefined;
let lastAccepted = false;

/** Whether the browser's request takes `coding` (RFC 9110 §12.5.3, q-values and `*` read). */
function accepted(requestHeaders: HeaderPairs, coding: ContentCoding): boolean {
  const accept = headerList(requestHeaders, 'accept-encoding');
  if (accept !== lastAccept || coding !== lastCoding) {
    lastAccept = accept;
    lastCoding = coding;
    lastAccepted = acceptsCoding(accept, coding);
  }
  return lastAccepted;
}

/** `headers` with every `Content-Encoding` taken out, and `coding` added when given. */
function withCoding(headers: HeaderPairs, coding: ContentCoding | undefined): HeaderPairs {
  const out: HeaderPairs = headers.filter(([name]) => name.length !== 16 || name.toLowerCase() !== 'content-encoding');
  if (coding) out.push(['content-encoding', coding]);
  return out;
}

/**
 * What the browser that sent `requestHeaders` gets for an answer: `head` and its body, whole
 * (`bytes`) or streamed (`null`: see {@link BrowserAnswer.decoder}). An answer without a coding
 * goes as it is. One with a coding the browser accepts goes as it is too, its `Content-Encoding`
 * the coding the client named (whatever headers it sent). Any other is decoded: a browser that
 * refuses identity (`identity;q=0`) and the coding alike gets identity too, which is what the
 * local app would have sent it. Throws {@link badResponse} (502 `bad_response`) when a whole body
 * does not decode or decodes to more than {@link MAX_WHOLE_DECODED}.
 */
export function answerForBrowser(requestHeaders: HeaderPairs, head: ResponseHead, bytes: Uint8Array | null): BrowserAnswer {
  const coding = head.coding;
  if (coding === undefined) return { head, bytes, decoder: undefined };
  if (accepted(requestHeaders, coding)) return { head: { ...head, headers: withCoding(head.headers, coding) }, bytes, decoder: undefined };
  const headers = withCoding(head.headers, undefined);
  if (bytes === null) {
    return { head: { ...head, headers, bodyLength: null, coding: undefined }, bytes: null, decoder: coding === 'br' ? createBrotliDecompress() : createGunzip() };
  }
  let decoded: Buffer;
  try {
    decoded = coding === 'br' ? brotliDecompressSync(bytes, { maxOutputLength: MAX_WHOLE_DECODED }) : gunzipSync(bytes, { maxOutputLength: MAX_WHOLE_DECODED });
  } catch (error) {
    throw badResponse(`its ${coding}-encoded body does not decode (${(error as Error).message}).`);
  }
  return { head: { ...head, headers, bodyLength: decoded.length, coding: undefined }, bytes: decoded, decoder: undefined };
}
