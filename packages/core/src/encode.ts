import { pipeline, type Readable } from 'node:stream';
import { brotliCompressSync, constants, createBrotliCompress, createGzip, gzipSync } from 'node:zlib';
import { preferredCoding, type ContentCoding, type HeaderPairs } from './protocol';

/**
 * The laptop leg compressed (feature `encode`): which answers of the local app are worth encoding,
 * with which coding, and the headers and bytes that go up instead. Dev servers do not compress, and
 * the laptop's uplink is the narrowest part of the path for a page of text. The server passes the
 * encoded bytes on to a browser that accepts the coding and decodes them for one that does not
 * (docs/protocol.md, "Encoded answers").
 */

/**
 * Smallest body worth encoding when the browser takes the encoded bytes: below it the saving is a
 * few hundred bytes, inside one TCP segment, and costs about as much CPU as a larger body.
 */
export const MIN_ENCODE_BYTES = 1024;
/**
 * Smallest body encoded for the laptop leg only (the browser accepts neither coding: curl, a
 * script, a health check): the server then decodes it too, twice the CPU for bytes saved on one
 * link, which pays only for bodies of several segments.
 */
export const MIN_LEG_ONLY_BYTES = 16 * 1024;
/**
 * Brotli's quality: 5, the first level with its larger hash chains, is 5-8 % smaller than 4 and
 * 4-7 % smaller than gzip 6 on JavaScript, at 1.1-1.5 × the CPU of either (docs/performance.md,
 * "Encoded answers"): the uplink is what compression is for. 10-11 are for build output.
 */
export const BROTLI_QUALITY = 5;
/** gzip's level: zlib's default, the usual speed and ratio balance. */
export const GZIP_LEVEL = 6;
/**
 * Brotli's window for streamed bodies: 1 MiB (2^20) rather than the default 4 MiB keeps the memory
 * of an encoder about 1 MiB, at a ratio within 1 % on JavaScript.
 */
const STREAM_LGWIN = 20;

/**
 * Types that compress: text (but never `text/event-stream`: each event must reach the browser as it
 * is sent, and a proxy that buffers one breaks it), JavaScript, JSON, XML and their `+json`/`+xml`
 * kinds (SVG, manifests), WebAssembly, and the uncompressed font and icon formats. Images, video,
 * archives and `woff2` are compressed already.
 */
const COMPRESSIBLE =
  /^(?:text\/(?!event-stream\s*(?:;|$))[\w.+-]+|application\/(?:javascript|ecmascript|x-javascript|json|x-ndjson|xml|wasm|graphql|yaml|x-yaml|toml|x-www-form-urlencoded|[\w.-]+\+(?:json|xml))|image\/(?:svg\+xml|x-icon|vnd\.microsoft\.icon|bmp)|font\/(?:ttf|otf|collection)|application\/(?:vnd\.ms-fontobject|x-font-ttf|font-sfnt))\s*(?:;|$)/i;

export function isCompressibleType(contentType: string | undefined): boolean {
  return contentType !== undefined && COMPRESSIBLE.test(contentType.trim());
}

/** The suffix that marks, inside a weak entity-tag, a strong one this client weakened. */
const TAG_MARK = '-dtz';

/**
 * How the answer to `accept` (the browser's `Accept-Encoding`) travels: the coding it prefers,
 * else gzip for the leg only (`legOnly`: the server decodes it for the browser).
 */
export function codingFor(accept: string | undefined): { coding: ContentCoding; legOnly: boolean } {
  const coding = preferredCoding(accept);
  return coding ? { coding, legOnly: false } : { coding: 'gzip', legOnly: true };
}

/** What of the local app's answer the encoding rules read, each header looked up once. */
interface AnswerFacts {
  contentType: string | undefined;
  contentEncoding: boolean;
  contentRange: boolean;
  noTransform: boolean;
}

function factsOf(headers: HeaderPairs): AnswerFacts {
  const facts: AnswerFacts = { contentType: undefined, contentEncoding: false, contentRange: false, noTransform: false };
  for (const [name, value] of headers) {
    switch (name.length) {
      case 12:
        if (name.toLowerCase() === 'content-type') facts.contentType ??= value;
        break;
      case 13:
        if (name.toLowerCase() === 'content-range') facts.contentRange = true;
        else if (name.toLowerCase() === 'cache-control' && /(?:^|,)\s*no-transform\s*(?:,|$)/i.test(value)) facts.noTransform = true;
        break;
      case 16:
        if (name.toLowerCase() === 'content-encoding') facts.contentEncoding = true;
        break;
    }
  }
  return facts;
}

/**
 * Whether an answer with a body may be encoded: not encoded already (any `Content-Encoding`), not a
 * part of a representation (206, `Content-Range`: its ranges count the identity bytes), not
 * forbidden by `Cache-Control: no-transform` (RFC 9111 §5.2.2.6), and of a type that compresses.
 * HEAD, 204 and 304 carry no body and never get here; neither do upgrades (forward.ts `upgrade`).
 */
export function isEncodable(status: number, headers: HeaderPairs): boolean {
  if (status === 206) return false;
  const facts = factsOf(headers);
  return !facts.contentEncoding && !facts.contentRange && !facts.noTransform && isCompressibleType(facts.contentType);
}

/**
 * The answer's headers once its body is encoded with `coding`: `Content-Encoding` added, `Vary:
 * Accept-Encoding` merged into any `Vary`, `Content-Length` dropped (the server computes framing),
 * and a strong `ETag` made weak, as nginx does (RFC 9110 §8.8.3: the encoded bytes are not the
 * identity bytes the strong tag stood for), with a mark that lets {@link unmarkTags} give the local
 * app its own tag back on a conditional request.
 */
export function encodedHeaders(headers: HeaderPairs, coding: ContentCoding): HeaderPairs {
  const out: HeaderPairs = [];
  let vary = -1;
  let varies = false;
  for (const pair of headers) {
    const [name, value] = pair;
    const lower = name.toLowerCase();
    if (lower === 'content-length') continue;
    if (lower === 'etag') {
      out.push([name, weakened(value)]);
      continue;
    }
    if (lower === 'vary') {
      if (/(?:^|,)\s*(?:accept-encoding|\*)\s*(?:,|$)/i.test(value)) varies = true;
      else if (vary < 0) vary = out.length;
    }
    out.push(pair);
  }
  if (!varies) {
    if (vary >= 0) out[vary] = [out[vary]![0], `${out[vary]![1]}, Accept-Encoding`];
    else out.push(['vary', 'Accept-Encoding']);
  }
  out.push(['content-encoding', coding]);
  return out;
}

/** A strong entity-tag `"x"` as `W/"x-dtz"`; a weak or malformed one as it is. */
function weakened(etag: string): string {
  const tag = etag.trim();
  return /^"[\x21\x23-\x7e\x80-\xff]*"$/.test(tag) ? `W/${tag.slice(0, -1)}${TAG_MARK}"` : etag;
}

/** An entity-tag of an `If-None-Match`/`If-Match` list, with what separates it from the next. */
const LIST_TAG = /\s*(W\/)?"([\x21\x23-\x7e\x80-\xff]*)"\s*(?:,|$)/gy;

/**
 * An `If-None-Match` or `If-Match` value with every tag this client weakened (`W/"x-dtz"`) given
 * back as the local app made it (`"x"`), so that a dev server that compares tags as strings (Vite
 * does) finds its own. Weak comparison is what `If-None-Match` uses anyway (RFC 9110 §13.1.2).
 * Undefined when the value has no such tag, or is not a list of entity-tags (`*`).
 */
export function unmarkTags(value: string): string | undefined {
  if (!value.includes(TAG_MARK)) return undefined;
  const tags: string[] = [];
  let changed = false;
  LIST_TAG.lastIndex = 0;
  while (LIST_TAG.lastIndex < value.length) {
    const m = LIST_TAG.exec(value);
    if (!m) return undefined;
    const [, weak, opaque] = m as unknown as [string, string | undefined, string];
    if (weak && opaque.endsWith(TAG_MARK)) {
      tags.push(`"${opaque.slice(0, -TAG_MARK.length)}"`);
      changed = true;
    } else tags.push(`${weak ?? ''}"${opaque}"`);
  }
  return changed ? tags.join(', ') : undefined;
}

/**
 * A 304's `ETag` as the browser stored it: after a conditional request whose tag was unmarked, the
 * local app names its strong tag, and the browser's cache must keep matching the weak one it holds
 * (RFC 9111 §4.3.4 updates stored responses by validator).
 */
export function remarkedHeaders(headers: HeaderPairs): HeaderPairs {
  return headers.map((pair) => (pair[0].toLowerCase() === 'etag' ? [pair[0], weakened(pair[1])] : pair));
}

/** The smallest brotli window (2^10-2^24) that holds `length` bytes: less to allocate and clear. */
function windowFor(length: number): number {
  return Math.min(24, Math.max(10, Math.ceil(Math.log2(length + 1))));
}

/** A whole (small) body encoded in one call. */
export function encodeWhole(bytes: Buffer, coding: ContentCoding): Buffer {
  if (coding === 'gzip') return gzipSync(bytes, { level: GZIP_LEVEL });
  return brotliCompressSync(bytes, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY,
      [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
      [constants.BROTLI_PARAM_LGWIN]: windowFor(bytes.length),
    },
  });
}

/**
 * A streamed body encoded as it passes, with backpressure (a zlib stream holds at most its buffers
 * and its window). Each chunk is flushed as it goes through (`Z_SYNC_FLUSH`, brotli's FLUSH): an
 * answer that trickles (a server-rendered page streamed in parts, NDJSON) reaches the browser as
 * the app sends it, at about 1 % of the ratio on a large body read in 16-64 KiB pieces. A failure
 * of the app's body fails the encoded one (the browser's connection is cut, never ended early);
 * destroying the encoded one destroys the app's.
 */
export function encodeStream(body: Readable, coding: ContentCoding, length: number | null): Readable {
  const encoder =
    coding === 'gzip'
      ? createGzip({ level: GZIP_LEVEL, flush: constants.Z_SYNC_FLUSH })
      : createBrotliCompress({
          flush: constants.BROTLI_OPERATION_FLUSH,
          params: {
            [constants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY,
            [constants.BROTLI_PARAM_LGWIN]: length === null ? STREAM_LGWIN : Math.min(STREAM_LGWIN, windowFor(length)),
            ...(length === null ? {} : { [constants.BROTLI_PARAM_SIZE_HINT]: length }),
          },
        });
  // Whoever reads the encoded body gets its error; nobody else must (an unheard one would crash).
  pipeline(body, encoder, () => {});
  return encoder;
}
