import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { ErrorCode } from '@devtunnel/core/protocol';
import { endRaw, rawResponse } from '../error-response';
import { HttpError } from '../errors';
import { connectionsCheckingInterval } from '../options';
import { MAX_REQUEST_HEADERS } from './request';
import { runRequestSteps, runUpgradeSteps, type PortDeps } from './steps';

/**
 * The browser-facing listener of the tunnel ports: Node's strict parser with limits set on
 * purpose, one HTTP server for every port; each request goes through the steps of steps.ts.
 */

/** Node's default, kept on purpose and documented: 16 KiB of request line and headers. */
const MAX_HEADER_BYTES = 16 * 1024;

export interface TunnelListener {
  /** Starts accepting browsers on `port` too (once per port). */
  listen(port: number): Promise<void>;
  /** Stops accepting on every port; idle keep-alive connections close now, busy ones after their response. */
  stop(): void;
  /** Closes every connection now. */
  destroy(): Promise<void>;
  /** A request another replica handed over (the internal hop), as if it had come in on `port`. */
  hopIn(req: IncomingMessage, res: ServerResponse, port: number): void;
  hopInUpgrade(req: IncomingMessage, socket: Socket, head: Buffer, port: number): void;
}

/** What the listener needs: the steps' needs, but the distrust it keeps itself. */
export type ListenerDeps = Omit<PortDeps, 'distrusted'>;

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

  const distrusted = new WeakSet<Socket>();
  const portDeps: PortDeps = { ...deps, distrusted };

  server.on('request', function tunnelRequest(req: IncomingMessage, res: ServerResponse) {
    runRequestSteps({ req, res, port: portOf.get(req.socket)! }, portDeps);
  });

  // `Connection: Upgrade` + `Upgrade: …` (WebSocket, HMR): Node hands over the raw socket.
  server.on('upgrade', function tunnelUpgrade(req: IncomingMessage, socket: Socket, head: Buffer) {
    runUpgradeSteps(req, socket, head, portOf.get(socket)!, portDeps);
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
    hopIn(req, res, port) {
      runRequestSteps({ req, res, port, hopped: true }, portDeps);
    },
    hopInUpgrade(req, socket, head, port) {
      runUpgradeSteps(req, socket, head, port, portDeps, true);
    },
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
