import { Readable } from 'node:stream';
import { Agent, EnvHttpProxyAgent, ProxyAgent, request, type Dispatcher } from 'undici';
import type { Cancel } from './cancel';
import { TunnelError } from './errors';
import { call, discard, type CallAnswer } from './http-call';
import {
  CONTENT_TYPE_FRAME,
  HEADER,
  MAX_BATCH,
  PROTOCOL_VERSION,
  clientPollDeadlineMs,
  createFrameReader,
  createHeadReader,
  encodeFrames,
  encodeHead,
  FrameError,
  HEARTBEAT,
  parseDownstreamMessage,
  parseServerMessage,
  paths,
  readFrameHead,
  type ErrorBody,
  type RegisterRequest,
  type RegisterResponse,
  type ResponseHead,
  type DownstreamMessage,
  type ServerMessage,
} from './protocol';

/**
 * The client's side of the control API: register, poll, respond, check, deregister. Each call is
 * one HTTP/1.1 request on a keep-alive pool; every wait is bounded by an explicit undici timeout
 * (its defaults wait 300 s, so a poll a proxy silently dropped would hang for minutes).
 */
export interface Session extends RegisterResponse {}

/**
 * What a poll, or a response upload asked to act as a poll, brought back: one message, or several
 * (feature `batch`); only the last may have a body: the rest of the stream `body`, or, when the
 * whole answer was small, the bytes `body`.
 */
export type PollResult = { messages: ServerMessage[]; body: Readable | Uint8Array } | null;

/** Lets go of a poll answer's body nobody will read, so its connection returns to the pool. */
export function release(result: PollResult): void {
  if (!result || result.body instanceof Uint8Array) return;
  // A failure while it drains concerns nobody; unheard, it would crash the host process.
  result.body.on('error', () => {});
  result.body.resume();
}

/** One small answer of a batch upload: its head names the request and has the exact bodyLength. */
export interface BatchItem {
  head: ResponseHead & { id: string };
  bytes: Uint8Array | undefined;
}

export interface ControlChannel {
  register(body: RegisterRequest): Promise<Session>;
  poll(session: Session): Promise<PollResult>;
  respond(
    session: Session,
    requestId: string,
    head: ResponseHead,
    body: AsyncIterable<Uint8Array> | Uint8Array | null,
    asPoll: boolean,
    cancel: Cancel,
  ): Promise<PollResult>;
  /**
   * Several small answers in one upload (feature `batch`): the items, or their frames already
   * made by {@link batchFrames} (at most {@link MAX_BATCH} answers).
   */
  respondBatch(session: Session, items: BatchItem[] | Uint8Array, asPoll: boolean): Promise<PollResult>;
  /**
   * Opens the downstream (feature `stream`) for at most `window` requests at once: resolves once
   * the server accepted it; its frames go to `onMessages`, those of one chunk together. `done`
   * settles when it ends (rejects on a failure).
   */
  openDownstream(session: Session, window: number, onMessages: (messages: DownstreamMessage[]) => void): Promise<Downstream>;
  /**
   * Opens an upstream (feature `stream`): an upload with no end that starts with a heartbeat, whose
   * frames are answers as in a batch. `done` settles when the server answered it.
   */
  openUpstream(session: Session): Upstream;
  /** After a 101: the browser's bytes for upgrade `requestId`, as a stream with no idle limit. */
  upstream(session: Session, requestId: string, signal: AbortSignal): Promise<Readable>;
  /**
   * Resolves when the session still exists; throws `unknown_tunnel` (404) when it does not. With
   * `downstreamKey` (the key of a downstream's first notice) it also confirms that downstream.
   */
  check(session: Session, downstreamKey?: string): Promise<void>;
  deregister(session: Session): Promise<void>;
  close(): Promise<void>;
}

export interface Downstream {
  readonly done: Promise<void>;
  close(): void;
}

export interface Upstream {
  /** Sends frames (see {@link batchFrames}) at once. */
  write(frames: Uint8Array): void;
  readonly done: Promise<void>;
  /** Ends the upload cleanly: what was written still arrives. */
  end(): void;
}

/** Answers as frames of a batch upload or an upstream: each head names its request. */
export function batchFrames(items: BatchItem[]): Uint8Array {
  const parts: Array<ResponseHead | Uint8Array> = [];
  for (const item of items) {
    parts.push(item.head);
    if (item.bytes) parts.push(item.bytes);
  }
  return encodeFrames(parts);
}

export interface ControlOptions {
  server: URL;
  token: string;
  proxy: string | false | undefined;
  version: string;
}

/** Connect timeout for the control channel: fail fast and let the backoff take over. */
const CONNECT_TIMEOUT_MS = 10_000;
/** Budget for small control calls (register, check, deregister). */
const CALL_TIMEOUT_MS = 15_000;
/** Time the server may take to answer an upload once it has the whole body. */
const UPLOAD_ANSWER_MS = 10_000;

/** A non-2xx answer from the server, with its error code when it sent one. */
export class ServerAnswerError extends Error {
  constructor(
    readonly status: number,
    readonly serverCode: string | undefined,
    message: string,
    readonly retryAfterMs: number | undefined,
  ) {
    super(message);
  }
}

function createDispatcher(proxy: string | false | undefined): Dispatcher {
  const agentOptions = {
    connect: { timeout: CONNECT_TIMEOUT_MS },
    connectTimeout: CONNECT_TIMEOUT_MS,
    // Shorter than the server's keep-alive (65 s) so the client never reuses a socket the server
    // is about to close; undici also honours the server's `Keep-Alive: timeout` hint.
    keepAliveTimeout: 30_000,
  };
  if (proxy === false) return new Agent(agentOptions);
  if (proxy) return new ProxyAgent({ uri: proxy, ...agentOptions });
  // HTTP(S)_PROXY / NO_PROXY from the environment, for the server channel only.
  return new EnvHttpProxyAgent(agentOptions);
}

function retryAfter(headers: Record<string, string | string[] | undefined>): number | undefined {
  const v = headers['retry-after'];
  const s = Array.isArray(v) ? v[0] : v;
  if (!s) return undefined;
  const n = Number(s);
  return Number.isFinite(n) && n >= 0 ? Math.min(n, 300) * 1000 : undefined;
}

/** A non-2xx answer as an error, with the server's code and Retry-After when it sent them. */
function answerError(statusCode: number, headers: Record<string, string | string[] | undefined>, text: string, what: string): ServerAnswerError {
  let code: string | undefined;
  let message = `${what}: the server answered ${statusCode}`;
  try {
    const parsed = JSON.parse(text) as Partial<ErrorBody>;
    if (parsed.error?.code) {
      code = parsed.error.code;
      message = `${what}: ${parsed.error.message} (${statusCode} ${code})`;
    }
  } catch {
    // Not our JSON: a proxy or something else answered. Keep the status-only message.
  }
  const headerCode = headers[HEADER.error];
  return new ServerAnswerError(statusCode, code ?? (typeof headerCode === 'string' ? headerCode : undefined), message, retryAfter(headers));
}

async function responseError(res: Dispatcher.ResponseData, what: string): Promise<ServerAnswerError> {
  const text = await res.body.text().catch(() => '');
  return answerError(res.statusCode, res.headers, text, what);
}

/** Poll answers and error pages up to this size arrive whole; larger ones (request bodies) stream. */
const WHOLE_ANSWER = 256 * 1024;

/** Splits a whole poll answer into its messages; the bytes after the last head are its body. */
function framesOf(bytes: Buffer): { messages: ServerMessage[]; body: Uint8Array } {
  const messages: ServerMessage[] = [];
  let rest: Uint8Array = bytes;
  do {
    const got = createHeadReader().push(rest);
    if (!got) throw new FrameError('the poll answer ended inside a frame head');
    const message = parseServerMessage(got.head);
    messages.push(message);
    rest = got.rest;
    if (message.type === 'request' && message.bodyLength !== 0) {
      if (message.bodyLength !== rest.length) throw new FrameError(`the poll answer carries ${rest.length} body bytes, not ${String(message.bodyLength)}`);
      break;
    }
  } while (rest.length > 0 && messages.length < MAX_BATCH);
  return { messages, body: rest };
}

export function createControlChannel(options: ControlOptions): ControlChannel {
  const dispatcher = createDispatcher(options.proxy);
  const origin = options.server.origin;
  // A server mounted under a path (https://host/devtunnel) keeps that path in front of the API.
  const base = options.server.pathname.replace(/\/+$/, '');
  const url = (path: string) => `${origin}${base}${path}`;
  const bearer = (secret: string) => `Bearer ${secret}`;

  /** A poll answer (or an upload's answer acting as one): whole when small, else a stream. */
  function pollAnswer(res: CallAnswer, what: string): PollResult | Promise<PollResult> {
    if (res.statusCode === 204) {
      if (res.body) discard(res.body);
      return null;
    }
    if (res.statusCode !== 200) {
      if (res.body) discard(res.body); // an error page too large to read: the status says enough
      return Promise.reject(answerError(res.statusCode, res.headers, res.bytes?.toString() ?? '', what));
    }
    if (res.bytes) return framesOf(res.bytes);
    const body = res.body!;
    return streamedMessages(body).catch((error: unknown) => {
      // A bad frame: the rest of the answer means nothing, and its connection must not stay held.
      discard(body);
      throw error;
    });
  }

  /** POSTs answers (framed); with `asPoll`, the server's answer to it is the next poll answer. */
  async function upload(
    session: Session,
    path: string,
    body: Uint8Array | AsyncIterable<Uint8Array>,
    length: number | undefined,
    asPoll: boolean,
    what: string,
    cancel?: Cancel,
    stallMs = UPLOAD_ANSWER_MS,
  ): Promise<PollResult> {
    const headers: Record<string, string> = { authorization: bearer(session.secret), 'content-type': CONTENT_TYPE_FRAME };
    if (length !== undefined) headers['content-length'] = String(length);
    if (asPoll) headers[HEADER.poll] = '1';
    const res = await call(dispatcher, {
      origin,
      path: base + path,
      method: 'POST',
      headers,
      body,
      cancel,
      // The server answers once it has the body. undici also counts this while the upload waits
      // to be written (the server reads no faster than the browser does): `stallMs` for a stream.
      headersTimeout: asPoll ? clientPollDeadlineMs(session.timing.pollTimeoutMs) : stallMs,
      bodyTimeout: session.timing.bodyIdleTimeoutMs,
      bufferUpTo: WHOLE_ANSWER,
    });
    return pollAnswer(res, what);
  }

  async function streamedMessages(body: Readable): Promise<PollResult> {
    const messages = [parseServerMessage(await readFrameHead(body))];
    // A batch: more heads may follow as long as the last one carries no body.
    for (let last = messages[0]!; messages.length < MAX_BATCH && (last.type === 'cancel' || last.bodyLength === 0); ) {
      const head = await readFrameHead(body, undefined, true);
      if (head === undefined) break;
      last = parseServerMessage(head);
      messages.push(last);
    }
    return { messages, body };
  }

  return {
    async register(body) {
      const res = await request(url(paths.tunnels), {
        dispatcher,
        method: 'POST',
        headers: {
          authorization: bearer(options.token),
          'content-type': 'application/json',
          [HEADER.protocol]: String(PROTOCOL_VERSION),
          'user-agent': `devtunnel/${options.version}`,
        },
        body: JSON.stringify(body),
        headersTimeout: CALL_TIMEOUT_MS,
        bodyTimeout: CALL_TIMEOUT_MS,
      });
      if (res.statusCode !== 201) throw await responseError(res, `registration at ${options.server.href}`);
      const session = (await res.body.json()) as Session;
      if (session.protocol !== PROTOCOL_VERSION || typeof session.id !== 'string' || typeof session.secret !== 'string') {
        throw new TunnelError('TUNNEL_PROTOCOL_ERROR', `The server at ${options.server.href} speaks protocol ${String(session.protocol)}; this client speaks ${PROTOCOL_VERSION}. Update the client or the server.`);
      }
      return session;
    },

    async poll(session) {
      const res = await call(dispatcher, {
        origin,
        path: base + paths.poll(session.id),
        method: 'GET',
        headers: { authorization: bearer(session.secret) },
        headersTimeout: clientPollDeadlineMs(session.timing.pollTimeoutMs),
        bodyTimeout: session.timing.bodyIdleTimeoutMs,
        bufferUpTo: WHOLE_ANSWER,
      });
      return pollAnswer(res, 'poll');
    },

    respond(session, requestId, head, body, asPoll, cancel) {
      // A small body goes in the same write as its head; a stream is sent as it comes, with
      // backpressure.
      if (body === null || body instanceof Uint8Array) {
        const bytes = encodeFrames(body ? [head, body] : [head]);
        return upload(session, paths.response(session.id, requestId), bytes, bytes.length, asPoll, 'response upload', cancel);
      }
      const headBytes = encodeHead(head);
      const length = head.bodyLength === null ? undefined : headBytes.length + head.bodyLength;
      // A browser that reads slowly holds the upload back: that is backpressure, not a failure.
      // A download may pause as long as the server lets a browser idle; a WebSocket (101) as long
      // as it lives (the tunnel's polls tell whether the server does).
      const stallMs = head.status === 101 ? 0 : Math.max(UPLOAD_ANSWER_MS, session.timing.bodyIdleTimeoutMs);
      return upload(session, paths.response(session.id, requestId), prepend(headBytes, body), length, asPoll, 'response upload', cancel, stallMs);
    },

    respondBatch(session, items, asPoll) {
      const body = items instanceof Uint8Array ? items : batchFrames(items);
      return upload(session, paths.responses(session.id), body, body.length, asPoll, 'batch upload');
    },

    async openDownstream(session, window, onMessages) {
      const res = await call(dispatcher, {
        origin,
        path: base + paths.stream(session.id),
        method: 'GET',
        headers: { authorization: bearer(session.secret), [HEADER.window]: String(window) },
        headersTimeout: CALL_TIMEOUT_MS,
        // The server sends a heartbeat when the stream was quiet for pollTimeoutMs.
        bodyTimeout: clientPollDeadlineMs(session.timing.pollTimeoutMs),
        bufferUpTo: WHOLE_ANSWER,
      });
      if (res.statusCode !== 200 || !res.body) {
        if (res.body) discard(res.body);
        throw answerError(res.statusCode, res.headers, res.bytes?.toString() ?? '', 'downstream');
      }
      const body = res.body;
      let batch: DownstreamMessage[] = [];
      const reader = createFrameReader({
        bodyLength: () => 0,
        onFrame: (head) => void batch.push(parseDownstreamMessage(head)),
      });
      const done = new Promise<void>((resolve, reject) => {
        body.on('data', (chunk: Buffer) => {
          try {
            reader.push(chunk);
          } catch (error) {
            body.destroy(error as Error);
            return;
          }
          if (batch.length === 0) return;
          const messages = batch;
          batch = [];
          onMessages(messages);
        });
        body.once('end', resolve);
        body.once('error', reject);
        body.once('close', () => reject(new Error('the downstream closed')));
      });
      // Whoever holds it may not wait for its end: a failure must never be an unhandled rejection.
      done.catch(() => {});
      return { done, close: () => discard(body) };
    },

    openUpstream(session) {
      const body = new Readable({ read() {} });
      body.push(HEARTBEAT);
      const beat = setInterval(() => body.push(HEARTBEAT), session.timing.pollTimeoutMs);
      const done = call(dispatcher, {
        origin,
        path: base + paths.stream(session.id),
        method: 'POST',
        headers: { authorization: bearer(session.secret), 'content-type': CONTENT_TYPE_FRAME },
        body,
        headersTimeout: UPLOAD_ANSWER_MS,
        bodyTimeout: UPLOAD_ANSWER_MS,
        bufferUpTo: WHOLE_ANSWER,
      })
        .then((res) => {
          if (res.body) discard(res.body);
          if (res.statusCode !== 204) throw answerError(res.statusCode, res.headers, res.bytes?.toString() ?? '', 'upstream');
        })
        .finally(() => {
          clearInterval(beat);
          if (!body.destroyed) body.destroy();
        });
      done.catch(() => {});
      let ended = false;
      return {
        write(frames) {
          if (!ended && !body.destroyed) body.push(frames);
        },
        done,
        end() {
          if (ended) return;
          ended = true;
          clearInterval(beat);
          if (!body.destroyed) body.push(null);
        },
      };
    },

    async upstream(session, requestId, signal) {
      const res = await request(url(paths.upstream(session.id, requestId)), {
        dispatcher,
        method: 'GET',
        headers: { authorization: bearer(session.secret) },
        signal,
        headersTimeout: CALL_TIMEOUT_MS,
        // A WebSocket may be quiet for an hour: the tunnel's polls tell whether the server lives.
        bodyTimeout: 0,
      });
      if (res.statusCode !== 200) throw await responseError(res, 'upstream');
      return res.body;
    },

    async check(session, downstreamKey) {
      const headers: Record<string, string> = { authorization: bearer(session.secret) };
      if (downstreamKey !== undefined) headers[HEADER.downstream] = downstreamKey;
      const res = await request(url(paths.tunnel(session.id)), {
        dispatcher,
        method: 'GET',
        headers,
        headersTimeout: CALL_TIMEOUT_MS,
        bodyTimeout: CALL_TIMEOUT_MS,
      });
      if (res.statusCode !== 200) throw await responseError(res, 'tunnel check');
      await res.body.dump();
    },

    async deregister(session) {
      const res = await request(url(paths.tunnel(session.id)), {
        dispatcher,
        method: 'DELETE',
        headers: { authorization: bearer(session.secret) },
        headersTimeout: 2_000,
        bodyTimeout: 2_000,
      });
      await res.body.dump();
    },

    async close() {
      // destroy(), not close(): pending polls must end now, not after their 25 s.
      await dispatcher.destroy();
    },
  };
}

async function* prepend(first: Uint8Array, rest: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  yield first;
  yield* rest;
}
