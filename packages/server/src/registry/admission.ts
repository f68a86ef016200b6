import { RegistrationError, parseRegisterRequest, type RegisterRequest } from '@devtunnel/core/protocol';
import type { Cluster } from '../cluster';
import { HttpError } from '../errors';
import type { ResolvedServerOptions } from '../options';
import type { Route, RouteTable } from '../routes';
import { owner } from './snapshot';

/** A registration's body, or the coded 400 saying what is wrong with it. */
export function validRegistration(body: unknown): RegisterRequest {
  try {
    return parseRegisterRequest(body);
  } catch (error) {
    if (error instanceof RegistrationError) throw new HttpError('invalid_request', error.message);
    throw error;
  }
}

/**
 * The route a registration asks for, if any: it must exist, and a name selects one tunnel per
 * route, so another developer's live tunnel (here or on another replica) keeps the name.
 */
export function routeFor(req: RegisterRequest, name: string, routes: RouteTable, cluster: Cluster | undefined): Route | undefined {
  if (req.route === undefined) return undefined;
  const route = routes.byName(req.route);
  if (!route) {
    const known = routes.all.map((r) => r.config.name);
    throw new HttpError('unknown_route', `This tunnel server has no route "${req.route}" (${known.length ? `its routes: ${known.join(', ')}` : 'it has no routes'}). Check --route / DEVTUNNEL_ROUTE, or ask the server's operator to add it (devtunnel-server --route ${req.route}:PORT=URL).`);
  }
  const holder = route.member(name);
  const remoteHolder = cluster?.view.byRouteName(route.config.name, name);
  const taken = holder && holder.clientId !== req.clientId && holder.isActive() ? holder.clientId : remoteHolder && remoteHolder.clientId !== req.clientId && cluster!.elsewhere(remoteHolder) ? remoteHolder.clientId : undefined;
  if (taken !== undefined) {
    throw new HttpError('route_name_taken', `Another developer's tunnel (${owner(taken)}) serves route "${route.config.name}" under the name "${name}". Choose another name (--name / the name option).`);
  }
  return route;
}

/** The URL browsers reach a tunnel port at (`--public-url`, `{host}` from the registration's Host). */
export function publicUrl(options: ResolvedServerOptions, port: number, hostHeader: string | undefined): string {
  const host = (hostHeader ?? 'localhost').replace(/:\d+$/, '');
  return options.publicUrl.replace('{host}', host).replace('{port}', String(port));
}

/** The route's page offering this tunnel, where browsers reach the route. */
export function routeLink(options: ResolvedServerOptions, route: Route, name: string, hostHeader: string | undefined): string {
  const base = route.config.publicUrl ?? publicUrl(options, route.config.port, hostHeader).replace(/\/+$/, '');
  return `${base}/__devtunnel/?use=${name}`;
}
