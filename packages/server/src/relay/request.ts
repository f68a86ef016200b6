import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';

/**
 * One browser request relayed to another HTTP server through an undici dispatcher (a route's real
 * app, or the replica that holds a tunnel), its answer streamed straight into the browser's
 * response. A bare `dispatch()` handler, as the client's hot paths use (core `http-call.ts`):
 * undici's `request()` with `stream.pipeline()` cost per request a promise, a body stream and two
 * AbortControllers, one of which `pipeline()` aborts at the end of every request, building a
 * DOMException; on the route fallback that machinery took at least a fifth of the server's CPU.
 *
 * What each caller decides is the answer's head (which headers, our framing) and what a failure
 * becomes; what is decided here, the same for both:
 * - backpressure both ways: undici reads the browser's body as the connection to the next hop
 *   drains; the next hop's connection is paused while the browser's response is full;
 * - the browser leaving before the answer is over aborts the request (and its connection) there;
 * - a failure after the head cuts the browser's connection: too late for a status;
 * - no body on HEAD, 204 and 304 (RFC 9110 §6.4.1), whatever the length said (it describes the
 *   representation, §8.6); a body is exactly as long as declared (undici's parser ends it there,
 *   and fails one that ends short);
 * - an answer without a length is flushed chunk by chunk as it comes (event streams).
 */

/** The answer's head as the browser gets it. */
export interface RelayHead {
  /** Flat `[name, value, …]`, framing included (the Content-Length this server sends, if any). */
  headers: string[];
  /** The body's declared length; undefined when it is delimited otherwise (chunked). */
  length: number | undefined;
}

/** Bytes of one request and its answer, counted as they pass. */
export interface RelayCounts {
  bytesIn: number;
  bytesOut: number;
}

export interface RequestRelay {
  /** The request target for the next hop (origin-form). */
  path: string;
  /** The request's headers for the next hop, flat, framing included (Content-Length, if any). */
  headers: string[];
  /** Whether the browser's request has a body to stream on (else none is sent). */
  hasBody: boolean;
  /**
   * The browser's head for the next hop's final answer (`raw`: its headers as they came). Throws
   * to refuse the answer: the error goes to {@link failed} and the next hop's connection is cut.
   */
  head(status: number, raw: string[]): RelayHead;
  /** The next hop failed, or its answer was refused, before the browser got a head: answer it. */
  failed(error: Error): void;
  /** The answer was cut after its head went out: the browser left, or the next hop failed. */
  cut?(by: 'browser' | 'upstream'): void;
  /** Updated as bytes pass (the browser's body, the answer's), when given. */
  counts?: RelayCounts;
}

/** A request being relayed. */
export interface Relaying {
  /**
   * Stops it: the next hop's request is aborted and nothing more is written to the browser's
   * response, which is the caller's to end (an error while it has no head, else a cut).
   */
  stop(): void;
}

/** The reason the next hop's request is aborted with when the browser left. */
const browserGone = () => Object.assign(new Error('The browser closed the connection.'), { code: 'browser_gone' });
/** The reason when the caller stopped the relay. */
const stopped = () => Object.assign(new Error('The relay was stopped.'), { code: 'relay_stopped' });

/** undici's raw headers (latin1 bytes) as strings, as Node gives `rawHeaders`. */
function rawStrings(raw: Dispatcher.DispatchController['rawHeaders']): string[] {
  if (!Array.isArray(raw)) return [];
  const out = new Array<string>(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const v = raw[i]!;
    out[i] = typeof v === 'string' ? v : v.toString('latin1');
  }
  return out;
}

export function relayRequest(dispatcher: Dispatcher, req: IncomingMessage, res: ServerResponse, relay: RequestRelay): Relaying {
  const { counts } = relay;
  let controller: Dispatcher.DispatchController | undefined;
  /** Why the next hop's request is to be aborted (the browser left, or the caller stopped it). */
  let aborted: Error | undefined;
  /** A head went to the browser (or a failure was answered): later failures cut, never answer. */
  let answered = false;
  /** The answer is over (ended, failed or cut): nothing more is written. */
  let over = false;
  let draining = false;
  let counting = false;

  /** Nothing more goes to the browser; the next hop's request is aborted (now, or once it starts). */
  const abort = (reason: Error) => {
    over = true;
    aborted = reason;
    controller?.abort(reason);
  };

  res.once('close', () => {
    if (over || res.writableFinished) return;
    if (answered) relay.cut?.('browser');
    abort(browserGone());
  });

  /** A failure: answered while nothing went out yet, else the browser's connection is cut. */
  const fail = (error: Error) => {
    if (over) return;
    over = true;
    if (!answered) {
      answered = true;
      relay.failed(error);
    } else {
      relay.cut?.('upstream');
      res.destroy();
    }
  };

  const handler: Dispatcher.DispatchHandler = {
    onRequestStart(c) {
      controller = c;
      if (aborted) return c.abort(aborted);
      // undici starts reading the body right after this returns, in the same tick: this listener
      // sees every chunk, and the stream flows only at undici's pace (it pauses and resumes it).
      if (counts && relay.hasBody && !counting) {
        counting = true;
        req.on('data', (chunk: Buffer) => (counts.bytesIn += chunk.length));
      }
    },
    onResponseStart(c, status) {
      // Interim answers (1xx) are not the response; undici reads on to the final one.
      if (status < 200 || over) return;
      let head: RelayHead;
      try {
        head = relay.head(status, rawStrings(c.rawHeaders));
        res.writeHead(status, STATUS_CODES[status] ?? 'Unknown', head.headers);
      } catch (error) {
        // Before anything reached the browser: the caller answers it (a coded 502).
        fail(error as Error);
        c.abort(error as Error);
        return;
      }
      answered = true;
      if (req.method === 'HEAD' || status === 204 || status === 304) {
        over = true;
        res.end();
        return;
      }
      // Node then fails a body that ends short of it, rather than sending a shorter one.
      if (head.length !== undefined) res.strictContentLength = true;
      // No length: the head goes now, not with the first chunk (an event stream may wait).
      else res.flushHeaders();
    },
    onResponseData(c, chunk) {
      if (over) return;
      if (counts) counts.bytesOut += chunk.length;
      if (res.write(chunk)) return;
      c.pause();
      if (!draining) {
        draining = true;
        res.on('drain', () => controller?.resume());
      }
    },
    onResponseEnd() {
      if (over) return;
      over = true;
      res.end();
    },
    onResponseError(_c, error) {
      if (!aborted) fail(error);
    },
  };

  dispatcher.dispatch({ path: relay.path, method: req.method as Dispatcher.HttpMethod, headers: relay.headers, body: relay.hasBody ? req : null }, handler);
  return {
    stop() {
      if (!over) abort(stopped());
    },
  };
}
