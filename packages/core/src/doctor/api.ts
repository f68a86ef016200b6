import { PROTOCOL_VERSION } from '../protocol';
import { answerMessage, call, failureText, type Answer, type ServerContext } from './context';
import type { CheckResult } from './types';

/**
 * The control API at the URL's path: `GET <url>/healthz` (no token) answered by a devtunnel
 * server, and the protocol it speaks. A devtunnel server tells its own answers by the
 * `x-devtunnel-error` code on errors, so a wrong path prefix (the server answers 404 `not_found`)
 * is told from a proxy's or another app's page.
 */
export interface ApiFacts {
  result: CheckResult;
  /** The server's features (from /healthz), when it says them. */
  features?: string[];
}

const isHealth = (text: string): { status?: unknown; protocol?: unknown; features?: unknown } | undefined => {
  try {
    const body = JSON.parse(text) as { status?: unknown };
    return body && body.status === 'ok' ? body : undefined;
  } catch {
    return undefined;
  }
};

/** Whether the server's own /healthz answers at the origin, without the URL's path. */
async function atRoot(ctx: ServerContext): Promise<boolean> {
  if (!ctx.endpoint.base) return false;
  const root = { ...ctx, endpoint: { ...ctx.endpoint, base: '', url: (path: string) => `${ctx.endpoint.origin}${path}` } };
  return call(root, '/healthz').then((a) => a.status === 200 && isHealth(a.text) !== undefined, () => false);
}

function from(answer: Answer): string {
  const server = answer.headers.server;
  return server ? ` (Server: ${Array.isArray(server) ? server[0] : server})` : '';
}

export async function checkApi(ctx: ServerContext): Promise<ApiFacts> {
  const title = 'Control API';
  const where = ctx.endpoint.url('/healthz');
  const fail = (summary: string, fix: string, data?: Record<string, unknown>): ApiFacts => ({ result: { id: 'api', title, status: 'fail', summary, fix, ...(data ? { data } : {}) } });
  const useRoot = async () => ((await atRoot(ctx)) ? ` The server answers at ${ctx.endpoint.origin} (without ${ctx.endpoint.base}): use that in --server.` : '');
  let answer: Answer;
  try {
    answer = await call(ctx, '/healthz');
  } catch (error) {
    const { code, text } = failureText(error);
    const tls = ctx.server.protocol === 'http:' && (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'HPE_INVALID_CONSTANT') ? ' If the server speaks https, use https:// in --server.' : '';
    return fail(`GET ${where} failed: ${text}.`, `Check --server.${tls}`);
  }
  const data = { url: where, status: answer.status, ms: Math.round(answer.ms) };
  const health = answer.status === 200 ? isHealth(answer.text) : undefined;
  if (health) {
    const features = Array.isArray(health.features) ? health.features.filter((f): f is string => typeof f === 'string') : undefined;
    const facts = { ...data, protocol: health.protocol ?? null, features: features ?? null };
    if (health.protocol === undefined) {
      return { result: { id: 'api', title, status: 'warn', summary: `A devtunnel server answers at ${where}, but does not say its protocol version: it is older than this client.`, fix: `Ask its operator to update it; registration will refuse a client of another protocol (this one speaks ${PROTOCOL_VERSION}).`, data: facts } };
    }
    if (health.protocol !== PROTOCOL_VERSION) {
      return fail(`The devtunnel server at ${where} speaks protocol ${String(health.protocol)}; this client speaks ${PROTOCOL_VERSION}.`, 'Use matching versions of the client (@devtunnel/core) and the server.', facts);
    }
    return { features, result: { id: 'api', title, status: 'pass', summary: `A devtunnel server answers at ${where}: protocol ${PROTOCOL_VERSION}, as this client${features?.length ? `; features ${features.join(', ')}` : ''}.`, data: facts } };
  }
  const message = answerMessage(answer);
  if (answer.status === 404 && answer.code === 'not_found') {
    return fail(`The devtunnel server answers, but not at this path: ${message}`, `Nothing in front strips the path ${ctx.endpoint.base} (the server serves the API at its root).${await useRoot()} Or have the proxy in front strip ${ctx.endpoint.base}.`, data);
  }
  if (answer.status >= 300 && answer.status < 400) {
    const location = String(answer.headers.location ?? '');
    const to = location.replace(/\/healthz(\?.*)?$/, '');
    return fail(`${where} redirects (${answer.status}) to ${location || 'nowhere'}.`, to ? `Use ${to} in --server (the client does not follow redirects).` : 'Check --server.', data);
  }
  if (answer.status === 401 || answer.status === 403) {
    return fail(`Something in front of the server refuses ${where} (${answer.status}${from(answer)}): ${message || 'no message'}.`, 'The control API must be reachable without a browser login (an SSO gateway?): ask the operator to let /api/ and /healthz through.', data);
  }
  if (answer.status >= 502 && answer.status <= 504) {
    return fail(`The proxy in front of the server answered ${answer.status}${from(answer)}: the tunnel server behind it is down or not ready.`, 'Ask its operator (kubectl get pods -n devtunnel; its /readyz).', data);
  }
  if (answer.status === 404) {
    return fail(`Nothing answers at ${where} as a devtunnel server does: 404${from(answer)}${message ? `, "${message}"` : ''}.`, `Check the URL's host and path.${await useRoot()}${ctx.endpoint.base ? '' : ' If the server is mounted under a path (https://host/devtunnel), add it.'}`, data);
  }
  return fail(`${where} answered ${answer.status}${from(answer)}, not as a devtunnel server does${message ? `: "${message}"` : ''}.`, 'Check that --server names the tunnel server (the address of its control API, not a tunnel port or the dashboard).', data);
}
