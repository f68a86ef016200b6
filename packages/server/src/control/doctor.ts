import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PROTOCOL_VERSION } from '@devtunnel/core/protocol';
import { HttpError } from '../errors';

/**
 * `devtunnel doctor`'s probe (`GET`/`POST /api/v1/doctor`, the registration token): what a
 * developer's network does to the control API's streams, measured without registering a tunnel.
 * Each answer tells by its content, not by timing, whether something on the way held bytes back:
 * - `GET`: a first line at once, a second after {@link PROBE_HOLD_MS}, then the end. A doctor that
 *   reads the first line alone knows answers stream (the downstream will pass); both lines at once
 *   mean a proxy buffered the answer (the client will use long polls).
 * - `GET ?bytes=N`: N bytes, for the download speed.
 * - `POST`: a first line as soon as the upload's first bytes arrive, saying whether the upload had
 *   already ended (a proxy that buffers uploads hands them over whole), a last line at its end
 *   with the bytes received (the upload speed).
 */

/**
 * How long the stream probe's answer stays open after its first line: as long as the client
 * gives a new stream to prove itself (`STREAM_PROOF_MS`, client/streams.ts), so a proxy that
 * flushes now and then is judged by the doctor as by the client.
 */
export const PROBE_HOLD_MS = 5_000;
/** Most bytes one probe call downloads or uploads. */
export const PROBE_MAX_BYTES = 8 * 1024 * 1024;

const NDJSON = { 'content-type': 'application/x-ndjson; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' };

/** One buffer of random bytes (a compressing proxy gains nothing), written again and again. */
let block: Buffer | undefined;

/** `features`: what this server offers registrations (as /healthz says: no `push` when pushes are off). */
export function probeDownstream(req: IncomingMessage, res: ServerResponse, features: readonly string[]): void {
  const bytes = new URL(req.url ?? '/', 'http://probe').searchParams.get('bytes');
  if (bytes !== null) return sendBytes(res, bytes);
  // x-accel-buffering, as on the real downstream: the probe meets what the downstream meets.
  res.writeHead(200, NDJSON);
  res.write(`${JSON.stringify({ protocol: PROTOCOL_VERSION, features, holdMs: PROBE_HOLD_MS })}\n`);
  const timer = setTimeout(() => res.end(`${JSON.stringify({ heldMs: PROBE_HOLD_MS })}\n`), PROBE_HOLD_MS);
  res.once('close', () => clearTimeout(timer));
}

function sendBytes(res: ServerResponse, given: string): void {
  const n = Number(given);
  if (!/^\d+$/.test(given) || n > PROBE_MAX_BYTES) throw new HttpError('invalid_request', `bytes must be a whole number up to ${PROBE_MAX_BYTES}.`);
  block ??= randomBytes(64 * 1024);
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n, 'cache-control': 'no-store' });
  let left = n;
  const write = (): void => {
    while (left > 0) {
      const chunk = block!.subarray(0, Math.min(left, block!.length));
      left -= chunk.length;
      if (!res.write(chunk)) return void res.once('drain', write);
    }
    res.end();
  };
  write();
}

export function probeUpstream(req: IncomingMessage, res: ServerResponse): void {
  if (Number(req.headers['content-length'] ?? 0) > PROBE_MAX_BYTES) throw new HttpError('payload_too_large', `The probe takes at most ${PROBE_MAX_BYTES} bytes.`);
  let received = 0;
  let answered = false;
  let scheduled = false;
  // A turn after the first bytes: an upload a proxy passed on whole has its end parsed by then.
  const answer = () => {
    if (answered || res.destroyed) return;
    answered = true;
    res.writeHead(200, NDJSON);
    res.write(`${JSON.stringify({ received, complete: req.complete })}\n`);
  };
  req.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (received > PROBE_MAX_BYTES) return void res.destroy();
    if (!scheduled) {
      scheduled = true;
      setImmediate(answer);
    }
  });
  req.once('end', () => {
    answer();
    res.end(`${JSON.stringify({ received, complete: true })}\n`);
  });
}
