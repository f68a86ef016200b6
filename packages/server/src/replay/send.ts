import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { request, type Dispatcher } from 'undici';
import { HttpError } from '../errors';
import type { CapturedRequest } from './capture';

/** What the dashboard shows of a replay's answer: the body as text up to this many bytes. */
const MAX_SHOWN_BYTES = 64 * 1024;
/** Most bytes of an answer read (and, encoded, decoded): the rest is not shown anyway. */
const MAX_READ_BYTES = 1024 * 1024;

/** The body as the app sent it: an encoded answer (the browser asked for one) decoded, bounded. */
function decoded(body: Buffer, coding: string | undefined): Buffer | undefined {
  const options = { maxOutputLength: MAX_READ_BYTES };
  try {
    if (!coding || coding === 'identity') return body;
    if (coding === 'gzip' || coding === 'x-gzip') return gunzipSync(body, options);
    if (coding === 'br') return brotliDecompressSync(body, options);
    if (coding === 'deflate') return inflateSync(body, options);
  } catch {
    // Cut short, or not what it says: shown as a summary.
  }
  return undefined;
}

export interface ReplayAnswer {
  status: number;
  headers: Array<[string, string]>;
  /** The body as text (UTF-8, decoded if the answer was encoded), cut at 64 KiB (`cut`); binary bodies are summarised. */
  body: string;
  bytes: number;
  cut: boolean;
  ms: number;
}

/**
 * Sends a captured request to a tunnel's port on this server, the way a browser's request comes
 * in (so it is logged, counted, shown in the laptop's inspector and, with several replicas, hopped
 * to the holder), marked `X-Devtunnel-Replay-Of`. Bounded by `timeoutMs`; the answer is read up
 * to 1 MiB and shown up to 64 KiB (decoded if encoded); one still streaming at the deadline is cut.
 */
export async function replay(c: CapturedRequest, host: string, port: number, dispatcher: Dispatcher, timeoutMs: number, now: () => number): Promise<ReplayAnswer> {
  const started = now();
  const headers: Array<[string, string]> = [...c.headers, ['x-devtunnel-replay-of', c.id]];
  let res: Dispatcher.ResponseData;
  try {
    res = await request(`http://${host.includes(':') ? `[${host}]` : host}:${port}${c.url}`, {
      method: c.method as Dispatcher.HttpMethod,
      headers: headers.flat(),
      dispatcher,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
  } catch (error) {
    throw new HttpError('upstream_unreachable', `The replay could not reach the tunnel's port ${port}: ${(error as Error).message}.`);
  }
  const chunks: Buffer[] = [];
  let bytes = 0;
  let cut = false;
  // An answer that never ends (an event stream) is cut at the deadline, whatever it sends.
  const deadline = setTimeout(() => {
    cut = true;
    res.body.destroy();
  }, Math.max(0, timeoutMs - (now() - started)));
  try {
    for await (const chunk of res.body) {
      const b = chunk as Buffer;
      if (bytes < MAX_READ_BYTES) chunks.push(b.subarray(0, MAX_READ_BYTES - bytes));
      bytes += b.length;
      if (bytes > MAX_READ_BYTES) {
        cut = true;
        res.body.destroy();
        break;
      }
    }
  } catch {
    cut = true;
  } finally {
    clearTimeout(deadline);
  }
  // Read up to 1 MiB, shown up to 64 KiB.
  const coding = [res.headers['content-encoding'] ?? ''].flat()[0]!.trim().toLowerCase() || undefined;
  const plain = cut ? (coding ? undefined : Buffer.concat(chunks)) : decoded(Buffer.concat(chunks), coding);
  if (plain && plain.length > MAX_SHOWN_BYTES) cut = true;
  const shown = plain?.subarray(0, MAX_SHOWN_BYTES);
  const text = !shown ? `(${bytes} bytes encoded as ${coding}, not shown)` : shown.includes(0) ? `(${bytes} bytes of binary data)` : shown.toString('utf8');
  const pairs: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(res.headers)) for (const v of [value ?? ''].flat()) pairs.push([name, v]);
  return { status: res.statusCode, headers: pairs, body: text, bytes, cut, ms: now() - started };
}
