/**
 * The control API's table of routes, matched segment by segment (`:name` takes one segment):
 * one list in one file says what the API is, and a path that exists with another method gets 405
 * naming the methods it has. Cheap enough for every poll and upload: one split, a few compares.
 */
export interface Route<H> {
  /** The method, or `*` for every method. */
  method: string;
  /** `/api/v1/tunnels/:id/poll`. */
  path: string;
  handler: H;
}

export type Match<H> =
  | { kind: 'route'; handler: H; params: Record<string, string> }
  | { kind: 'method'; allow: string[] }
  | { kind: 'none' };

export function createRouter<H>(routes: ReadonlyArray<Route<H>>): (method: string, path: string) => Match<H> {
  const compiled = routes.map((r) => ({ ...r, segments: r.path.split('/').slice(1) }));
  return (method, path) => {
    const segments = path.split('/').slice(1);
    let allow: string[] | undefined;
    for (const route of compiled) {
      if (route.segments.length !== segments.length) continue;
      let params: Record<string, string> | undefined;
      let same = true;
      for (let i = 0; i < segments.length; i++) {
        const want = route.segments[i]!;
        if (want.startsWith(':')) (params ??= {})[want.slice(1)] = segments[i]!;
        else if (want !== segments[i]) {
          same = false;
          break;
        }
      }
      if (!same) continue;
      if (route.method === '*' || route.method === method) return { kind: 'route', handler: route.handler, params: params ?? {} };
      (allow ??= []).push(route.method);
    }
    return allow ? { kind: 'method', allow } : { kind: 'none' };
  };
}
