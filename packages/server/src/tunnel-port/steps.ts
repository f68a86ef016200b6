import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { endRaw, rawResponse, sendError } from '../error-response';
import { HttpError, offlineError } from '../errors';
import type { Exchange } from '../exchange';
import type { ResolvedServerOptions } from '../options';
import type { TunnelSession } from '../session';
import { createUpgradeState } from '../upgrade';
import { checkRequest, createExchange } from './request';

/**
 * A browser request's path through a tunnel port, as one ordered list of named steps (vite's
 * middleware list, httpxy's passes): each step either lets the request go on (`true`) or has
 * answered it (`false`). What happens after the last step is the session's (admit or queue, hand
 * to the client) and the client's answer upload's (write the answer, respond.ts); the log line is
 * written when the browser's side is over, whatever happened.
 */

/** What the steps share. */
export interface PortDeps {
  options: ResolvedServerOptions;
  /** The tunnel that holds `port` now (looked up per request: a client re-registering keeps it). */
  lookup(port: number): TunnelSession | undefined;
  /** Name of the tunnel that holds this port without being registered now, if any. */
  holder(port: number): string | undefined;
  /** Called once per browser request when it is over, whatever the outcome. */
  finished(exchange: Exchange, tunnel: TunnelSession): void;
  /** Requests that never reach a tunnel (parse errors, refusals) are reported here. */
  rejected(port: number, error: HttpError, req?: IncomingMessage): void;
  /**
   * Connections we refused or whose bytes the parser rejected. Nothing more from them is trusted:
   * a request Node already parsed behind the bad one (pipelined) is dropped, never forwarded.
   */
  distrusted: WeakSet<Socket>;
}

/** One browser request on its way through the steps. */
export interface PortRequest {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The tunnel port it came in on. */
  readonly port: number;
  tunnel?: TunnelSession;
  exchange?: Exchange;
  /** Handed to the tunnel (only then is it logged as a tunnel request). */
  submitted?: boolean;
}

export type PortStep = (r: PortRequest, deps: PortDeps) => boolean;

/** Refuses with `error` and closes: nothing more from this connection is trusted. */
function refuse(deps: PortDeps, req: IncomingMessage, res: ServerResponse, port: number, error: HttpError): void {
  deps.distrusted.add(req.socket);
  deps.rejected(port, error, req);
  sendError(req, res, error, { close: true });
}

/** A pipelined request behind one we refused: dropped with its connection. */
function dropDistrusted(r: PortRequest, deps: PortDeps): boolean {
  if (!deps.distrusted.has(r.req.socket)) return true;
  r.res.destroy();
  return false;
}

/** What Node's strict parser accepted but we do not forward (request-smuggling rules, RFC 9112). */
function checkFraming(r: PortRequest, deps: PortDeps): boolean {
  const problem = checkRequest(r.req);
  if (problem) refuse(deps, r.req, r.res, r.port, problem);
  return problem === undefined;
}

/** The tunnel that holds the port; none: 503 `tunnel_offline` naming its last holder. */
function findTunnel(r: PortRequest, deps: PortDeps): boolean {
  r.tunnel = deps.lookup(r.port);
  if (r.tunnel) return true;
  const error = offlineError(r.port, deps.holder(r.port));
  deps.rejected(r.port, error, r.req);
  sendError(r.req, r.res, error, { close: !r.req.complete });
  return false;
}

/** The message for the client, with the forwarding headers this server owns. */
function makeExchange(r: PortRequest, deps: PortDeps): boolean {
  r.exchange = createExchange(r.req, r.res, deps.options.now());
  return true;
}

/** When the browser's side is over (answered, failed, or gone): what is left is abandoned, the request logged once. */
function logWhenOver(r: PortRequest, deps: PortDeps): boolean {
  const { exchange, tunnel } = r as Required<PortRequest>;
  const socket = r.req.socket;
  let over = false;
  const end = () => {
    if (over) return;
    over = true;
    socket.off('close', end);
    if (exchange.state !== 'done') tunnel.abandon(exchange);
    // A request the parser failed before it was handed over was logged as rejected already.
    if (r.submitted) deps.finished(exchange, tunnel);
  };
  r.res.once('close', end);
  // A pipelined response waiting for its turn has no socket yet and would never see 'close'.
  socket.once('close', end);
  return true;
}

/**
 * To the tunnel's session, which admits or queues it and hands it to the client. A request with
 * a body waits until the parser has gone through the bytes it already holds: if that body is
 * malformed (a smuggling attempt arrives in one packet), the parser fails it first and the request
 * never reaches the client. setImmediate, not a microtask: Node drains microtasks between parser
 * callbacks, before the rest of the packet is parsed. Requests without a body go at once.
 */
function handToTunnel(r: PortRequest, deps: PortDeps): boolean {
  const { exchange, tunnel } = r as Required<PortRequest>;
  const socket = r.req.socket;
  const submit = () => {
    if (deps.distrusted.has(socket) || socket.destroyed) {
      exchange.state = 'done';
      return;
    }
    r.submitted = true;
    tunnel.submit(exchange);
  };
  if (exchange.message.bodyLength === 0) submit();
  else setImmediate(submit);
  return true;
}

/** The path of a browser request, in order. Routes (issue 15) slot in at `findTunnel`. */
export const requestSteps: readonly PortStep[] = [dropDistrusted, checkFraming, findTunnel, makeExchange, logWhenOver, handToTunnel];

/** Runs the request steps until one answers. */
export function runRequestSteps(r: PortRequest, deps: PortDeps): void {
  for (const step of requestSteps) if (!step(r, deps)) return;
}

/**
 * An upgrade (`Connection: Upgrade`, WebSocket, HMR) on a raw socket: the same checks, one more
 * (the tunnel's client must carry upgrades), refusals written raw; then to the session, logged
 * when the connection closes.
 */
export function runUpgradeSteps(req: IncomingMessage, socket: Socket, head: Buffer, port: number, deps: PortDeps): void {
  socket.on('error', () => socket.destroy());
  if (deps.distrusted.has(socket)) return void socket.destroy();
  const problem = checkRequest(req);
  const tunnel = problem ? undefined : deps.lookup(port);
  const tooOld = tunnel && !tunnel.features.has('upgrade')
    ? new HttpError('upgrade_not_supported', `The devtunnel client of "${tunnel.name}" is too old to carry WebSockets; update it (the page works, live reload does not).`)
    : undefined;
  if (problem || !tunnel || tooOld) {
    const error = problem ?? tooOld ?? offlineError(port, deps.holder(port));
    deps.distrusted.add(socket);
    deps.rejected(port, error, req);
    endRaw(socket, rawResponse(error));
    return;
  }
  const exchange = createExchange(req, undefined, deps.options.now(), createUpgradeState(socket, head));
  let over = false;
  socket.once('close', () => {
    if (over) return;
    over = true;
    if (exchange.state !== 'done') tunnel.abandon(exchange);
    deps.finished(exchange, tunnel);
  });
  tunnel.submit(exchange);
}
