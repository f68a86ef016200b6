import { MAX_HEAD_BYTES } from './constants';
import { createHeadReader } from './frame-reader';
import { FrameError } from './frames';

/** Frames read from a Node stream (a poll answer, an upload) without importing `node:stream`. */

/** The part of a Node `Readable` that {@link readFrameHead} uses (structural, so no import). */
export interface FrameSource {
  read(): Uint8Array | null;
  unshift(chunk: Uint8Array): void;
  on(event: string, listener: (...args: any[]) => void): unknown;
  off(event: string, listener: (...args: any[]) => void): unknown;
  readonly readableEnded: boolean;
}

/**
 * Feeds a stream's chunks to `take` until it returns a value, puts back the bytes `take` did not
 * use, and resolves with the value. The shared loop of {@link readFrameHead} and
 * {@link readExactly}; `ended` says what an end of stream before that means.
 */
function readUntil<S extends FrameSource, T>(
  stream: S,
  take: (chunk: Uint8Array) => { value: T; rest: Uint8Array } | undefined,
  ended: () => { value: T } | Error,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const done = (fn: () => void) => {
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onEnd);
      fn();
    };
    function onReadable() {
      let chunk: Uint8Array | null;
      while ((chunk = stream.read()) !== null) {
        let got: { value: T; rest: Uint8Array } | undefined;
        try {
          got = take(chunk);
        } catch (error) {
          return done(() => reject(error));
        }
        if (got) {
          const { value, rest } = got;
          return done(() => {
            if (rest.length > 0) stream.unshift(rest);
            resolve(value);
          });
        }
      }
    }
    function onEnd() {
      const outcome = ended();
      done(() => (outcome instanceof Error ? reject(outcome) : resolve(outcome.value)));
    }
    function onError(error: unknown) {
      done(() => reject(error));
    }
    if (stream.readableEnded) return onEnd();
    stream.on('readable', onReadable);
    stream.on('end', onEnd);
    stream.on('close', onEnd);
    stream.on('error', onError);
  });
}

/**
 * Reads a frame head from the start of a stream and puts back whatever followed it, so the same
 * stream then yields exactly the raw body. No copy of the body, no extra stream. With `endOk`, a
 * stream that ends cleanly before a new head (between the frames of a batch) resolves undefined.
 */
export function readFrameHead<S extends FrameSource>(stream: S, limit = MAX_HEAD_BYTES, endOk = false): Promise<unknown> {
  const reader = createHeadReader(limit);
  let started = false;
  return readUntil(
    stream,
    (chunk) => {
      if (chunk.length > 0) started = true;
      const got = reader.push(chunk);
      return got && { value: got.head, rest: got.rest };
    },
    () => (endOk && !started ? { value: undefined } : new FrameError('the stream ended before the frame head was complete')),
  );
}

/**
 * Reads exactly `n` bytes from a stream (a small body inside a batch) and puts back whatever
 * followed them. Rejects if the stream ends first.
 */
export function readExactly<S extends FrameSource>(stream: S, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  if (n === 0) return Promise.resolve(out);
  let filled = 0;
  return readUntil(
    stream,
    (chunk) => {
      const used = Math.min(n - filled, chunk.length);
      out.set(chunk.subarray(0, used), filled);
      filled += used;
      return filled === n ? { value: out, rest: chunk.subarray(used) } : undefined;
    },
    () => new FrameError(`the stream ended ${n - filled} bytes before the body was complete`),
  );
}
