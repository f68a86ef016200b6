import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { endRaw, rawResponse, sendError } from '../error-response';
import { HttpError, offlineError } from '../errors';
import type { Exchange } from '../exchange';
import type { ResolvedServerOptions } from '../options';
import type { Route, RouteMember } from '../routes';
import { linkPrefix, serveLinkPage } from '../routes/link-page';
import { selectedName, SERVED_BY } from '../routes/selection';
import type { UpstreamOutcome } from '../routes/upstream';
import type { TunnelSession } from '../session';
import { createUpgradeState } from '../upgrade';
import type { Hop } from '../cluster/hop';
import { pushLookup, writePushHit } from '../push-answer';
import type { PushHit } from '../push-cache';
import { browserHeaders } from '../respond';
import { checkRequest, createExchange, remoteOf } from './request';

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
  /**
   * With several replicas: the control URL of the replica that holds the tunnel of `port`, or of
   * the route member `name`, when another does; and the hop that takes a request there.
   */
  elsewhere?(port: number): string | undefined;
  memberElsewhere?(route: string, name: string): string | undefined;
  hop?: Hop;
  /** The route listening on `port`, if it is a route's port. */
  route(port: number): Route | undefined;
  /** A route's members, this replica's and the others' (its page lists them). */
  routeMembers(route: Route): RouteMember[];
  /** Called once per request a route's real app served (or failed to), when it is over. */
  upstreamFinished(route: Route, req: IncomingMessage, outcome: UpstreamOutcome, arrivedAt: number): void;
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
  /** Handed over by another replica (the internal hop): never handed on again. */
  readonly hopped?: boolean;
  tunnel?: TunnelSession;
  /** On a route's port: the route, and who serves the request (`tunnel ann`). */
  route?: Route;
  servedBy?: string;
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

/**
 * On a route's port, who serves the request: the live tunnel its selection names (cookie, header or
 * baggage), else the route's real app; the route's own page (`…/__devtunnel/`) answers itself. A
 * selected tunnel that is offline falls back to the real app, or answers 503 `tunnel_offline` when
 * the route says so (`offline=error`). A page or an HMR request never gets a page it did not ask for.
 */
function onRoute(r: PortRequest, deps: PortDeps, route: Route): boolean {
  r.route = route;
  if (linkPrefix(r.req.url!) !== undefined) {
    serveLinkPage(route, deps.routeMembers(route), r.req, r.res).catch((error: Error) => sendError(r.req, r.res, new HttpError('internal_error', error.message), { close: true }));
    return false;
  }
  const name = selectedName(r.req);
  const member = name === undefined ? undefined : route.member(name);
  if (member && member.state() === 'connected') {
    r.tunnel = member;
    r.servedBy = `tunnel ${member.name}`;
    return true;
  }
  const there = !r.hopped && name !== undefined && !(member && member.state() === 'connected') ? deps.memberElsewhere?.(route.config.name, name) : undefined;
  if (there) {
    deps.hop!.forward(r.req, r.res, there, { port: r.port, remote: remoteOf(r.req) });
    return false;
  }
  if (member && route.config.offline === 'error') {
    const error = offlineError(member.port, member.name);
    deps.rejected(r.port, error, r.req);
    sendError(r.req, r.res, error, { close: !r.req.complete, headers: { [SERVED_BY]: 'error' } });
    return false;
  }
  toUpstream(r, deps, route);
  return false;
}

/** To the route's real app. A body waits for the parser, as in {@link handToTunnel}. */
function toUpstream(r: PortRequest, deps: PortDeps, route: Route): void {
  const arrivedAt = deps.options.now();
  const go = () => {
    if (deps.distrusted.has(r.req.socket) || r.req.socket.destroyed) return;
    route.upstream.forward(r.req, r.res, (outcome) => deps.upstreamFinished(route, r.req, outcome, arrivedAt));
  };
  const hasBody = r.req.headers['transfer-encoding'] !== undefined || (r.req.headers['content-length'] ?? '0') !== '0';
  if (hasBody) setImmediate(go);
  else go();
}

/** The tunnel that holds the port; none: 503 `tunnel_offline` naming its last holder. */
function findTunnel(r: PortRequest, deps: PortDeps): boolean {
  const route = deps.route(r.port);
  if (route) return onRoute(r, deps, route);
  r.tunnel = deps.lookup(r.port);
  if (r.tunnel) return true;
  const there = r.hopped ? undefined : deps.elsewhere?.(r.port);
  if (there) {
    deps.hop!.forward(r.req, r.res, there, { port: r.port, remote: remoteOf(r.req) });
    return false;
  }
  const error = offlineError(r.port, deps.holder(r.port));
  deps.rejected(r.port, error, r.req);
  sendError(r.req, r.res, error, { close: !r.req.complete });
  return false;
}

/** The message for the client, with the forwarding headers this server owns. */
function makeExchange(r: PortRequest, deps: PortDeps): boolean {
  r.exchange = createExchange(r.req, r.res, deps.options.now());
  if (r.route) {
    r.exchange.route = r.route.config.name;
    r.exchange.servedBy = r.servedBy;
  }
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
 * A request its tunnel's client answered ahead (a push, docs/speculation.md): answered here, with no
 * trip to the laptop. One whose push is promised and not here yet waits for it (at most the push
 * wait), then takes it or goes on to the tunnel as any other.
 */
function fromPush(r: PortRequest, deps: PortDeps): boolean {
  const { exchange, tunnel } = r as Required<PortRequest>;
  const pushes = tunnel.pushes;
  if (!pushes || pushes.idle) return true;
  const lookup = pushLookup(exchange);
  if (!lookup) return true;
  const found = pushes.match(lookup);
  if (found === undefined) return true;
  if (found !== 'wait') {
    answerFromPush(r, deps, found);
    return false;
  }
  pushes.wait(lookup, () => {
    if (r.res.destroyed || exchange.state === 'done') return;
    const hit = pushes.match(lookup);
    if (hit !== undefined && hit !== 'wait') answerFromPush(r, deps, hit);
    else handToTunnel(r, deps);
  });
  return false;
}

function answerFromPush(r: PortRequest, deps: PortDeps, hit: PushHit): void {
  const { exchange, tunnel } = r as Required<PortRequest>;
  tunnel.stats.requests++;
  tunnel.stats.lastRequestAt = deps.options.now();
  exchange.state = 'done';
  exchange.pushed = true;
  r.submitted = true;
  try {
    writePushHit(exchange, r.res, hit, browserHeaders);
  } catch {
    // Node refused a header (the client's, validated as any answer's): the browser's connection is cut.
    r.res.destroy();
  }
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

/** The path of a browser request, in order. On a route's port, `findTunnel` chooses by selection. */
export const requestSteps: readonly PortStep[] = [dropDistrusted, checkFraming, findTunnel, makeExchange, logWhenOver, fromPush, handToTunnel];

/** Runs the request steps until one answers. */
export function runRequestSteps(r: PortRequest, deps: PortDeps): void {
  for (const step of requestSteps) if (!step(r, deps)) return;
}

/**
 * An upgrade (`Connection: Upgrade`, WebSocket, HMR) on a raw socket: the same checks, one more
 * (the tunnel's client must carry upgrades), refusals written raw; then to the session, logged
 * when the connection closes.
 */
export function runUpgradeSteps(req: IncomingMessage, socket: Socket, head: Buffer, port: number, deps: PortDeps, hopped = false): void {
  socket.on('error', () => socket.destroy());
  if (deps.distrusted.has(socket)) return void socket.destroy();
  const problem = checkRequest(req);
  const route = problem ? undefined : deps.route(port);
  let tunnel: TunnelSession | undefined;
  let offline: TunnelSession | undefined;
  if (route) {
    const name = selectedName(req);
    const member = name === undefined ? undefined : route.member(name);
    const there = !hopped && name !== undefined && !(member && member.state() === 'connected') ? deps.memberElsewhere?.(route.config.name, name) : undefined;
    if (there) return deps.hop!.upgrade(req, socket, head, there, { port, remote: remoteOf(req) });
    if (member && member.state() === 'connected') tunnel = member;
    else if (member && route.config.offline === 'error') offline = member;
    else if (!offline) {
      const arrivedAt = deps.options.now();
      route.upstream.upgrade(req, socket, head, (outcome) => deps.upstreamFinished(route, req, outcome, arrivedAt));
      return;
    }
  } else if (!problem) {
    tunnel = deps.lookup(port);
    const there = tunnel || hopped ? undefined : deps.elsewhere?.(port);
    if (there) return deps.hop!.upgrade(req, socket, head, there, { port, remote: remoteOf(req) });
  }
  const tooOld = tunnel && !tunnel.features.has('upgrade')
    ? new HttpError('upgrade_not_supported', `The devtunnel client of "${tunnel.name}" is too old to carry WebSockets; update it (the page works, live reload does not).`)
    : undefined;
  if (problem || !tunnel || tooOld) {
    const error = problem ?? tooOld ?? (offline ? offlineError(offline.port, offline.name) : offlineError(port, deps.holder(port)));
    deps.distrusted.add(socket);
    deps.rejected(port, error, req);
    endRaw(socket, rawResponse(error, route ? { extra: `${SERVED_BY}: error\r\n` } : undefined));
    return;
  }
  const exchange = createExchange(req, undefined, deps.options.now(), createUpgradeState(socket, head));
  if (route) {
    exchange.route = route.config.name;
    exchange.servedBy = `tunnel ${tunnel.name}`;
  }
  let over = false;
  socket.once('close', () => {
    if (over) return;
    over = true;
    if (exchange.state !== 'done') tunnel.abandon(exchange);
    deps.finished(exchange, tunnel);
  });
  tunnel.submit(exchange);
}
