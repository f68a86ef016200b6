/**
 * A body as the inspector keeps it: its first bytes, up to a cap, copied as they pass (never the
 * whole body, never a reference into a buffer that holds more), and how large it was in all.
 */

/** Bytes of one body kept at most: enough to read a JSON answer or a form, and the start of a file. */
export const BODY_CAP = 64 * 1024;

export interface BodyCapture {
  /** The kept bytes, in the pieces they came in. */
  parts: Buffer[];
  /** Bytes kept (at most the cap). */
  kept: number;
  /** Bytes that passed: more than `kept` when the body was cut. */
  size: number;
  /** Memory the kept parts hold (see {@link keep}): what the store's budget counts. */
  held: number;
}

export function emptyCapture(): BodyCapture {
  return { parts: [], kept: 0, size: 0, held: 0 };
}

/**
 * Counts `chunk` and keeps what of it fits under `cap`. Returns the memory that keeping it holds
 * (added to `held`), for the store's budget: a view holds the whole buffer it points into, so a
 * chunk is kept as it is only when that buffer is not much larger than the kept bytes (a socket
 * read that held little else); otherwise (a slice of a pool, a poll answer with other requests)
 * as a copy. No copy in the usual case, and the budget counts what is really held.
 */
export function keep(capture: BodyCapture, chunk: Uint8Array, cap = BODY_CAP): number {
  capture.size += chunk.length;
  const room = cap - capture.kept;
  if (room <= 0 || chunk.length === 0) return 0;
  const n = Math.min(room, chunk.length);
  const held = chunk.buffer.byteLength;
  capture.kept += n;
  if (held <= 2 * n + 4096) {
    capture.parts.push(Buffer.from(chunk.buffer, chunk.byteOffset, n));
    capture.held += held;
    return held;
  }
  capture.parts.push(Buffer.from(chunk.subarray(0, n)));
  capture.held += n;
  return n;
}

/** A whole body (small, already read): counted and its first `cap` bytes kept. */
export function captureWhole(bytes: Uint8Array, cap = BODY_CAP): BodyCapture {
  const capture = emptyCapture();
  keep(capture, bytes, cap);
  return capture;
}

/** The kept bytes in one buffer. */
export function keptBytes(capture: BodyCapture): Buffer {
  return capture.parts.length === 1 ? capture.parts[0]! : Buffer.concat(capture.parts, capture.kept);
}

/** Whether bytes were left out. */
export const isCut = (capture: BodyCapture): boolean => capture.size > capture.kept;
