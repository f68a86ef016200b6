import type { DownstreamMessage, ResponseHead } from './messages';

/**
 * Frame: every poll answer (server → client) and every response upload (client → server) has the
 * body `[u32 big-endian head length][head: UTF-8 JSON][raw body bytes…]`. Bodies travel as raw
 * bytes, never base64 or JSON-embedded, so they stream with backpressure and cost nothing extra.
 */

const encoder = new TextEncoder();

/** The bytes that open a frame: length prefix and JSON head. The raw body follows. */
export function encodeHead(head: DownstreamMessage | ResponseHead): Uint8Array {
  return encodeFrames([head]);
}

/** Where frames are assembled before their one copy out; grows to the largest batch seen. */
let scratch = new Uint8Array(64 * 1024);

/**
 * Several frames in one buffer, in order: each object becomes a head (length prefix and JSON), each
 * `Uint8Array` is copied as it is (a body). One allocation for a whole batch of frames.
 */
export function encodeFrames(parts: ReadonlyArray<DownstreamMessage | ResponseHead | Uint8Array>): Uint8Array {
  const texts: Array<string | Uint8Array> = new Array(parts.length);
  let most = 0;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const text = part instanceof Uint8Array ? part : JSON.stringify(part);
    texts[i] = text;
    // UTF-8 takes at most three bytes per UTF-16 code unit.
    most += typeof text === 'string' ? 4 + text.length * 3 : text.length;
  }
  if (most > scratch.length) scratch = new Uint8Array(Math.max(most, scratch.length * 2));
  let at = 0;
  for (const text of texts) {
    if (typeof text !== 'string') {
      scratch.set(text, at);
      at += text.length;
      continue;
    }
    const { written } = encoder.encodeInto(text, scratch.subarray(at + 4));
    scratch[at] = written >>> 24;
    scratch[at + 1] = (written >>> 16) & 0xff;
    scratch[at + 2] = (written >>> 8) & 0xff;
    scratch[at + 3] = written & 0xff;
    at += 4 + written;
  }
  return scratch.slice(0, at);
}

export class FrameError extends Error {
  readonly code = 'bad_frame';
}
