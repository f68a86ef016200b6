import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { HEADER, endToEndPairs, type ErrorCode, type HeaderPairs, type RequestMessage } from '@devtunnel/core/protocol';
import { endRaw, rawResponse, sendError } from './error-response';
import { randomId } from './ids';
import { createUpgradeState } from './upgrade';
import { HttpError, offlineError } from './errors';
import { connectionsCheckingInterval, type ResolvedServerOptions } from './options';
import type { Exchange, UpgradeState } from './exchange';
import type { TunnelSession } from './session';

/**
 * The browser-facing listener of the tunnel ports. Node's strict parser with limits set on purpose;
 * each request is checked, turned into a message for the client, and handed to the tunnel that
 * holds its port now (looked up per request, so a client re-registering keeps the listener).
 */

/** Headers beyond this many make the request suspect (CVE-2026-58044 hid Content-Length past ~1000). */
const MAX_REQUEST_HEADERS = 100;
/** Node's default, kept on purpose and documented: 16 KiB of request line and headers. */
const MAX_HEADER_BYTES = 16 * 1024;

export interface TunnelListener {
  /** Starts accepting browsers on `port` too (once per port). */
  listen(port: number): Promise<void>;
  /** Stops accepting on every port; idle keep-alive connections close now, busy ones after their response. */
  stop(): void;
  /** Closes every connection now. */
  destroy(): Promise<void>;
}

export interface ListenerDeps {
  options: ResolvedServerOptions;
  lookup(port: number): TunnelSession | undefined;
  /** Name of the tunnel that holds this port without being registered now, if any. */
  holder(port: number): string | undefined;
  /** Called once per browser request when it is over, whatever the outcome. */
  finished(exchange: Exchange, tunnel: TunnelSession): void;
  /** Requests that never reach a tunnel (parse errors, refusals) are reported here. */
  rejected(port: number, error: HttpError, req?: IncomingMessage): void;
}

/** RFC 9112 §3.2: origin-form, absolute-form (http/https), or asterisk-form for OPTIONS only. */
function isValidTarget(target: string, method: string): boolean {
  if (target.startsWith('/')) return true;
  if (target === '*') return method === 'OPTIONS';
  try {
    const u = new URL(target);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

/** Absolute-form targets (`GET http://host/path`) become origin-form (RFC 9112 §3.2). */
function originForm(url: string): string {
  if (url.startsWith('/') || url === '*') return url;
  try {
    const u = new URL(url);
    return u.pathname + u.search;
  } catch {
    return url;
  }
}

/** Validates what Node's parser accepted but we do not forward. */
function check(req: IncomingMessage): HttpError | undefined {
  if (req.httpVersionMajor !== 1) {
    return new HttpError('invalid_request', `HTTP/${req.httpVersion} is not supported on a tunnel port; use HTTP/1.1.`);
  }
  if (req.rawHeaders.length / 2 >= MAX_REQUEST_HEADERS) {
    return new HttpError('headers_too_large', `A request may carry at most ${MAX_REQUEST_HEADERS - 1} header lines.`);
  }
  let hosts = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]!.length === 4 && req.rawHeaders[i]!.toLowerCase() === 'host') hosts++;
  }
  // RFC 9112 §3.2: a server MUST respond 400 to an HTTP/1.1 request with no Host field, or more than one.
  if (hosts > 1) return new HttpError('invalid_request', 'The request has more than one Host header.');
  if (hosts === 0 && req.httpVersionMinor >= 1) return new HttpError('invalid_request', 'An HTTP/1.1 request needs a Host header.');
  const target = req.url ?? '';
  if (!isValidTarget(target, req.method!)) return new HttpError('invalid_request', 'The request target must be a path (/…), an absolute http(s) URL, or * for OPTIONS.');
  const te = req.headers['transfer-encoding'];
  if (te !== undefined) {
    // RFC 9112 §6.1: HTTP/1.0 has no chunked framing; treat TE there as faulty framing.
    if (req.httpVersionMajor === 1 && req.httpVersionMinor === 0) {
      return new HttpError('invalid_request', 'Transfer-Encoding is not allowed in an HTTP/1.0 request.');
    }
    if (te.toLowerCase() !== 'chunked') {
      return new HttpError('invalid_request', `Transfer-Encoding "${te}" is not supported; only "chunked" is.`);
    }
  }
  return undefined;
}

/**
 * The headers this server owns, added to `headers` (the request's end-to-end headers): the
 * forwarding chain with this hop, and the proto, host and request id unless a proxy in front of
 * us set them. Checked against what survived the hop-by-hop rules, not the raw request: a
 * browser naming them in `Connection` (RFC 9110 §7.6.1) gets its copies dropped and ours added,
 * never neither. Returns the request id the local app sees.
 */
function addOwnHeaders(req: IncomingMessage, headers: HeaderPairs): string {
  // One pass, lengths compared first: this runs per request.
  let proto = false;
  let host = false;
  let requestId: string | undefined;
  for (const [name, value] of headers) {
    const n = name.length;
    if (n !== 17 && n !== 16 && n !== 12) continue;
    const lower = name.toLowerCase();
    if (lower === 'x-forwarded-proto') proto = true;
    else if (lower === 'x-forwarded-host') host = true;
    else if (lower === HEADER.requestId) requestId ??= value;
  }
  const remote = req.socket.remoteAddress ?? 'unknown';
  const xff = req.headers['x-forwarded-for'];
  headers.push(['X-Forwarded-For', xff ? `${Array.isArray(xff) ? xff.join(', ') : xff}, ${remote}` : remote]);
  if (!proto) headers.push(['X-Forwarded-Proto', 'http']);
  if (!host && req.headers.host) headers.push(['X-Forwarded-Host', req.headers.host]);
  if (requestId === undefined) headers.push(['X-Request-Id', (requestId = randomUUID())]);
  return requestId;
}

/** Turns an accepted request into the message for the client and the exchange that tracks it. */
function createExchange(req: IncomingMessage, res: ServerResponse | undefined, now: number, upgrade?: UpgradeState): Exchange {
  const te = req.headers['transfer-encoding'] !== undefined;
  const cl = req.headers['content-length'];
  // X-Forwarded-For is rebuilt below with this hop appended, so the old one goes.
  const headers = endToEndPairs(req.rawHeaders, 'x-forwarded-for');
  const requestId = addOwnHeaders(req, headers);
  // An upgrade keeps the two hop-by-hop fields that ask for it: the local app must see them.
  if (upgrade) headers.push(['Connection', 'Upgrade'], ['Upgrade', req.headers.upgrade ?? '']);
  const message: RequestMessage = {
    type: 'request',
    id: randomId(),
    method: req.method!,
    url: originForm(req.url!),
    headers,
    bodyLength: upgrade ? 0 : te ? null : cl === undefined ? 0 : Number(cl),
  };
  if (upgrade) message.upgrade = true;
  return {
    id: message.id,
    requestId,
    req,
    res,
    upgrade,
    message,
    state: 'queued',
    arrivedAt: now,
    dispatchedAt: undefined,
    respondedAt: undefined,
    timer: undefined,
    upload: undefined,
    via: undefined,
    code: undefined,
    bytesIn: 0,
    bytesOut: 0,
  };
}

/**
 * Every tunnel port is served by one HTTP server: the first port it listens on itself, each other
 * port has a plain TCP listener that hands its connections over. One server means one check of
 * headers timeouts for all connections: with a server per port, 500 quiet tunnels woke the process
 * 250 times a second for checks that found nothing.
 */
export function createTunnelListener(deps: ListenerDeps): TunnelListener {
  const { options } = deps;
  const server: Server = createServer({
    // Never loosen the parser: it is what rejects smuggling attempts (reliability-security.md §0).
    insecureHTTPParser: false,
    maxHeaderSize: MAX_HEADER_BYTES,
    headersTimeout: options.headersTimeoutMs,
    // No total cap on a request: a slow 1 GB upload must survive. Idleness is capped instead.
    requestTimeout: 0,
    keepAliveTimeout: options.keepAliveTimeoutMs,
    connectionsCheckingInterval: connectionsCheckingInterval(options),
    // We check Host ourselves, to answer with our code and close (RFC 9112 §3.2).
    requireHostHeader: false,
    noDelay: true,
  });
  // One above the cap, so a request at the cap is visible and refused rather than silently cut.
  server.maxHeadersCount = MAX_REQUEST_HEADERS + 1;
  // Socket idle timeout: no byte either way for this long ends the connection.
  server.timeout = options.bodyIdleTimeoutMs;
  server.on('error', () => {});

  /** The tunnel port each connection came in on (handed over or not), read once when it arrives. */
  const portOf = new WeakMap<Socket, number>();
  server.prependListener('connection', (socket: Socket) => portOf.set(socket, socket.localPort ?? 0));
  /** The port the HTTP server listens on itself: the first that could be opened. */
  let ownPort: number | undefined;
  /** The plain listeners of the other ports. */
  const handOvers = new Map<number, NetServer>();

  const offline = (p: number) => offlineError(p, deps.holder(p));

  /**
   * Connections we refused or whose bytes the parser rejected. Nothing more from them is trusted:
   * a request Node already parsed behind the bad one (pipelined) is dropped, never forwarded.
   */
  const distrusted = new WeakSet<Socket>();

  function refuse(req: IncomingMessage, res: ServerResponse, error: HttpError): void {
    distrusted.add(req.socket);
    deps.rejected(portOf.get(req.socket) ?? 0, error, req);
    sendError(req, res, error, { close: true });
  }

  server.on('request', function tunnelRequest(req: IncomingMessage, res: ServerResponse) {
    if (distrusted.has(req.socket)) {
      res.destroy();
      return;
    }
    const problem = check(req);
    if (problem) return refuse(req, res, problem);
    const port = portOf.get(req.socket)!;
    const tunnel = deps.lookup(port);
    if (!tunnel) {
      const error = offline(port);
      deps.rejected(port, error, req);
      sendError(req, res, error, { close: !req.complete });
      return;
    }
    const exchange = createExchange(req, res, options.now());
    const socket = req.socket;
    let over = false;
    let submitted = false;
    const end = () => {
      if (over) return;
      over = true;
      socket.off('close', end);
      if (exchange.state !== 'done') tunnel.abandon(exchange);
      // A request the parser failed before it was handed over was logged as rejected already.
      if (submitted) deps.finished(exchange, tunnel);
    };
    res.once('close', end);
    // A pipelined response waiting for its turn has no socket yet and would never see 'close'.
    socket.once('close', end);
    const submit = () => {
      if (distrusted.has(socket) || socket.destroyed) {
        exchange.state = 'done';
        return;
      }
      submitted = true;
      tunnel.submit(exchange);
    };
    // A request with a body waits until the parser has gone through the bytes it already holds:
    // if that body is malformed (a smuggling attempt arrives in one packet), the parser fails it
    // first and the request never reaches the client. setImmediate, not a microtask: Node drains
    // microtasks between parser callbacks, before the rest of the packet is parsed. Requests
    // without a body have nothing left to check and go at once.
    if (exchange.message.bodyLength === 0) submit();
    else setImmediate(submit);
  });

  // `Connection: Upgrade` + `Upgrade: …` (WebSocket, HMR): Node hands over the raw socket.
  server.on('upgrade', function tunnelUpgrade(req: IncomingMessage, socket: Socket, head: Buffer) {
    socket.on('error', () => socket.destroy());
    if (distrusted.has(socket)) return void socket.destroy();
    const port = portOf.get(socket)!;
    const problem = check(req);
    const tunnel = problem ? undefined : deps.lookup(port);
    const tooOld = tunnel && !tunnel.features.has('upgrade')
      ? new HttpError('upgrade_not_supported', `The devtunnel client of "${tunnel.name}" is too old to carry WebSockets; update it (the page works, live reload does not).`)
      : undefined;
    if (problem || !tunnel || tooOld) {
      const error = problem ?? tooOld ?? offline(port);
      distrusted.add(socket);
      deps.rejected(port, error, req);
      endRaw(socket, rawResponse(error));
      return;
    }
    const exchange = createExchange(req, undefined, options.now(), createUpgradeState(socket, head));
    let over = false;
    socket.once('close', () => {
      if (over) return;
      over = true;
      if (exchange.state !== 'done') tunnel.abandon(exchange);
      deps.finished(exchange, tunnel);
    });
    tunnel.submit(exchange);
  });

  // CONNECT makes a tunnel of its own; we are not a forward proxy.
  server.on('connect', (req: IncomingMessage, socket: Socket) => {
    const error = new HttpError('method_not_supported', 'CONNECT is not supported by a devtunnel port.');
    deps.rejected(portOf.get(socket) ?? 0, error, req);
    endRaw(socket, rawResponse(error, { extra: 'Allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n' }));
  });

  // Bytes Node's parser rejected (smuggling attempts, oversized headers, slow headers): answer and
  // close; they never reach a tunnel, a client or a local app.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const refusedBefore = distrusted.has(socket);
    distrusted.add(socket);
    // A response already under way on this connection (Node's internal `_httpMessage`, the check
    // its own default handler makes) cannot be followed by another: close instead.
    const busy = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
    if (refusedBefore || busy || !socket.writable || err.code === 'ECONNRESET') {
      if (refusedBefore && socket.writable) endRaw(socket, '');
      else socket.destroy();
      return;
    }
    const [reason, code]: [string, ErrorCode] =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? ['Request Header Fields Too Large', 'headers_too_large']
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'HPE_HEADERS_TIMEOUT'
          ? ['Request Timeout', 'request_timeout']
          : ['Bad Request', 'invalid_request'];
    const error = new HttpError(code, `${reason}: the request could not be parsed as strict HTTP/1.1 (${err.code ?? 'parse error'}).`);
    deps.rejected(portOf.get(socket) ?? 0, error);
    endRaw(socket, rawResponse(error));
  });

  /** Listens on `port` with `target` (the HTTP server, or a hand-over listener). */
  function bind(target: NetServer, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      target.once('error', onError);
      target.listen(port, options.host, () => {
        target.off('error', onError);
        resolve();
      });
    });
  }

  /** Ports are opened one at a time: the first must be the HTTP server's own. */
  let opening: Promise<unknown> = Promise.resolve();

  async function open(port: number): Promise<void> {
    if (port === ownPort || handOvers.has(port)) return;
    if (ownPort === undefined) {
      await bind(server, port);
      ownPort = port;
      return;
    }
    const handOver = createNetServer({ noDelay: true }, (socket) => server.emit('connection', socket));
    handOver.on('error', () => {});
    await bind(handOver, port);
    handOvers.set(port, handOver);
  }

  return {
    listen(port) {
      const done = opening.then(() => open(port));
      opening = done.catch(() => {});
      return done;
    },
    stop() {
      for (const handOver of handOvers.values()) handOver.close();
      // Closes the HTTP server's own port, and its idle connections whatever port they came in on.
      server.close();
      server.closeIdleConnections();
    },
    async destroy() {
      // A hand-over listener's close waits for the connections it accepted, which the HTTP server
      // holds (a gateway's keep-alive connections last 65 s): close them all first, then wait.
      const closed = [server, ...handOvers.values()].map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
      server.closeAllConnections();
      await Promise.all(closed);
    },
  };
}
