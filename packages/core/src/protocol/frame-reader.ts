import { MAX_HEAD_BYTES } from './constants';
import { FrameError } from './frames';

const decoder = new TextDecoder();

/**
 * Incremental reader for a frame head. Feed it chunks until it returns the head; whatever
 * followed the head in the last chunk is returned as `rest` (the start of the body).
 * Holds at most {@link MAX_HEAD_BYTES}.
 */
export function createHeadReader(limit = MAX_HEAD_BYTES) {
  let pending: Uint8Array | undefined;
  let need = -1;
  return {
    push(chunk: Uint8Array): { head: unknown; rest: Uint8Array } | undefined {
      let buf: Uint8Array = chunk;
      if (pending) {
        const joined = new Uint8Array(pending.length + chunk.length);
        joined.set(pending, 0);
        joined.set(chunk, pending.length);
        buf = joined;
        pending = undefined;
      }
      if (need < 0) {
        if (buf.length < 4) {
          pending = buf;
          return undefined;
        }
        need = new DataView(buf.buffer, buf.byteOffset, 4).getUint32(0, false);
        if (need > limit) throw new FrameError(`frame head of ${need} bytes exceeds ${limit}`);
        buf = buf.subarray(4);
      }
      if (buf.length < need) {
        pending = buf;
        return undefined;
      }
      let head: unknown;
      try {
        head = JSON.parse(decoder.decode(buf.subarray(0, need)));
      } catch {
        throw new FrameError('frame head is not valid JSON');
      }
      return { head, rest: buf.subarray(need) };
    },
  };
}

const EMPTY = new Uint8Array(0);

export interface FrameReaderOptions {
  /** Length of the body that follows `head` (validate it here; throw {@link FrameError}). */
  bodyLength(head: unknown): number;
  /** One complete frame. `body` may share memory with the pushed chunks: copy it to keep it. */
  onFrame(head: unknown, body: Uint8Array): void;
  /** Largest head accepted. */
  limit?: number;
}

/**
 * Synchronous, incremental reader of an endless stream of frames (feature `stream`): feed it the
 * stream's chunks as they come; it calls `onFrame` for each complete frame and skips heartbeats.
 * No promise or listener per frame, and a body split over many small chunks is copied once.
 * Throws {@link FrameError} on a malformed frame: the rest of that stream means nothing.
 */
export function createFrameReader(options: FrameReaderOptions): { push(chunk: Uint8Array): void; readonly buffered: number } {
  const limit = options.limit ?? MAX_HEAD_BYTES;
  let chunks: Uint8Array[] = [];
  let first = 0;
  let size = 0;
  /** What is read next: the length prefix (-1), a head of `need` bytes (0), or a body (1). */
  let state: -1 | 0 | 1 = -1;
  let need = 4;
  let head: unknown;

  /** Removes and returns the next `n` bytes (n ≤ size): a view when they lie in one chunk. */
  function take(n: number): Uint8Array {
    if (n === 0) return EMPTY;
    size -= n;
    const c = chunks[first]!;
    if (c.length > n) {
      chunks[first] = c.subarray(n);
      return c.subarray(0, n);
    }
    if (c.length === n) {
      first++;
      if (first === chunks.length) {
        chunks = [];
        first = 0;
      }
      return c;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const part = chunks[first]!;
      const used = Math.min(part.length, n - filled);
      out.set(used === part.length ? part : part.subarray(0, used), filled);
      filled += used;
      if (used === part.length) first++;
      else chunks[first] = part.subarray(used);
    }
    if (first === chunks.length) {
      chunks = [];
      first = 0;
    } else if (first > 1024) {
      chunks = chunks.slice(first);
      first = 0;
    }
    return out;
  }

  return {
    push(chunk) {
      if (chunk.length === 0) return;
      chunks.push(chunk);
      size += chunk.length;
      while (size >= need) {
        if (state === -1) {
          const b = take(4);
          const n = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
          if (n === 0) continue; // a heartbeat
          if (n > limit) throw new FrameError(`frame head of ${n} bytes exceeds ${limit}`);
          state = 0;
          need = n;
        } else if (state === 0) {
          const bytes = take(need);
          try {
            head = JSON.parse(decoder.decode(bytes));
          } catch {
            throw new FrameError('frame head is not valid JSON');
          }
          state = 1;
          need = options.bodyLength(head);
        } else {
          const body = take(need);
          state = -1;
          need = 4;
          options.onFrame(head, body);
        }
      }
    },
    get buffered() {
      return size;
    },
  };
}
