import { API_PREFIX } from '../protocol';
import type { CheckResult } from './types';

/**
 * The server URL, read the way the client reads it (options.ts, control/dispatcher.ts): an
 * http(s) URL without credentials whose path, if any, is a prefix kept in front of `/api/v1/`.
 * Pure. A URL that names an API path or the dashboard is refused here: the client adds the API's
 * path itself, and would ask for `/api/v1/api/v1/tunnels`.
 */
export function checkUrl(given: string | undefined): { result: CheckResult; server?: URL } {
  const title = 'Server URL';
  const fail = (summary: string, fix: string) => ({ result: { id: 'url', title, status: 'fail', summary, fix } as CheckResult });
  if (!given) return fail('No server URL was given.', 'Give --server https://devtunnel.test.example.com or set DEVTUNNEL_SERVER to the tunnel server\'s URL.');
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(given)) {
    return fail(`"${given}" has no scheme.`, `Write the whole URL, e.g. https://${given.replace(/^\/+/, '')} (or http:// if the server speaks plain http).`);
  }
  let server: URL;
  try {
    server = new URL(given);
  } catch {
    return fail(`"${given}" is not a URL.`, 'Give the tunnel server\'s URL, e.g. https://devtunnel.test.example.com.');
  }
  if (server.protocol !== 'http:' && server.protocol !== 'https:') {
    return fail(`${server.protocol}// is not a scheme the client speaks.`, `Use https:// (or http://): ${given.replace(/^[a-z][a-z0-9+.-]*:/i, 'https:')}.`);
  }
  if (server.username || server.password) {
    return fail('The URL holds credentials; the client refuses them.', 'Remove the user and password from the URL; pass the token with DEVTUNNEL_TOKEN (or --token).');
  }
  const base = server.pathname.replace(/\/+$/, '');
  const apiAt = base.search(/\/(api(\/v\d+)?(\/tunnels)?|dashboard|healthz)$/);
  if (apiAt >= 0) {
    const fixed = `${server.origin}${base.slice(0, apiAt)}`;
    return fail(`The URL ends in ${base.slice(apiAt)}, a path of the server itself: the client adds ${API_PREFIX}/… to the URL it is given.`, `Use ${fixed} (the server's URL, with only the prefix a proxy in front strips, if any).`);
  }
  const extras = server.search || server.hash ? ` Its ${server.search ? 'query' : 'fragment'} is ignored.` : '';
  const where = `${server.protocol === 'https:' ? 'https' : 'plain http'} to ${server.host}`;
  const prefix = base ? `path prefix ${base}: the API is at ${server.origin}${base}${API_PREFIX}/, which a proxy in front must strip to ${API_PREFIX}/` : 'no path prefix';
  return {
    server,
    result: {
      id: 'url',
      title,
      status: extras ? 'warn' : 'pass',
      summary: `${server.origin}${base}: ${where}, ${prefix}.${extras}`,
      ...(extras ? { fix: `Drop it: ${server.origin}${base}.` } : {}),
      data: { origin: server.origin, base, protocol: server.protocol.slice(0, -1) },
    },
  };
}
