import type { IncomingMessage, ServerResponse } from 'node:http';
import { CONTENT_TYPE_FRAME, encodeHead, HEADER, HEARTBEAT, MAX_BATCH } from '@devtunnel/core/protocol';
import { randomId } from '../ids';

/** Most requests a client may take at once on a downstream (its `maxInFlight` is at most this). */
const MAX_WINDOW = 10_000;

/** A downstream holding this much its client has not read gets no more requests until it drains. */
const STREAM_BACKLOG_BYTES = 1024 * 1024;

/**
 * The client's downstream (feature `stream`): one response with no end that carries request
 * heads as they come, with no poll per request. It opens with a notice holding a key; the client
 * proves it receives frames by sending the key back (`ready`), and only then does it get requests.
 */
export interface Downstream {
  readonly res: ServerResponse;
  readonly key: string;
  /** Requests the client takes at once (it said how many; else a default from the poll limits). */
  readonly window: number;
  /** The client confirmed the key. */
  ready: boolean;
  /** Closed, or holding so much unread that requests wait for polls instead. */
  readonly backedUp: boolean;
  write(frames: Uint8Array): void;
  /** Tells the client the server reads one of its upstreams (so answers may go up it). */
  upstreamOpen(): void;
  end(): void;
  destroy(): void;
}

export interface DownstreamOptions {
  maxPolls: number;
  /** A heartbeat goes out when the stream was quiet this long, so proxies keep it open. */
  heartbeatMs: number;
  /** Whether an upstream is open now (said in the first notice). */
  upstream: boolean;
  /** It closed; `broken` when it did not end by our doing (what it carried may be lost). */
  onClose(broken: boolean): void;
}

export function openDownstream(req: IncomingMessage, res: ServerResponse, options: DownstreamOptions): Downstream {
  const key = randomId();
  const asked = Number(req.headers[HEADER.window]);
  const window = Number.isInteger(asked) && asked > 0 ? Math.min(asked, MAX_WINDOW) : options.maxPolls * MAX_BATCH;
  // No buffering on the way (nginx honours X-Accel-Buffering): a frame must leave at once.
  res.writeHead(200, { 'content-type': CONTENT_TYPE_FRAME, 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
  res.write(encodeHead({ type: 'stream', upstream: options.upstream, key }));
  const beat = setInterval(() => res.write(HEARTBEAT), options.heartbeatMs);
  res.once('close', () => {
    clearInterval(beat);
    options.onClose(!res.writableFinished);
  });
  return {
    res,
    key,
    window,
    ready: false,
    get backedUp() {
      return res.destroyed || res.writableLength > STREAM_BACKLOG_BYTES;
    },
    write: (frames) => void res.write(frames),
    upstreamOpen() {
      if (!res.destroyed) res.write(encodeHead({ type: 'stream', upstream: true }));
    },
    end: () => void res.end(),
    destroy: () => void res.destroy(),
  };
}
