import { Agent, EnvHttpProxyAgent, ProxyAgent, type Dispatcher } from 'undici';

/**
 * How the control channel reaches the tunnel server: one keep-alive pool (direct, through the
 * given proxy, or through HTTP(S)_PROXY from the environment), the server's origin and path prefix,
 * and the bounds every call uses. Every wait is bounded by an explicit undici timeout: its defaults
 * wait 300 s, so a poll a proxy silently dropped would hang for minutes.
 */
export interface Endpoint {
  readonly dispatcher: Dispatcher;
  /** The server's origin, `https://host:port`. */
  readonly origin: string;
  /** The path a server mounted under one (https://host/devtunnel) keeps in front of the API; `''` if none. */
  readonly base: string;
  /** The absolute URL of an API path (for undici's `request()`). */
  url(path: string): string;
}

/** Connect timeout for the control channel: fail fast and let the backoff take over. */
export const CONNECT_TIMEOUT_MS = 10_000;
/** Budget for small control calls (register, check, deregister). */
export const CALL_TIMEOUT_MS = 15_000;
/** Time the server may take to answer an upload once it has the whole body. */
export const UPLOAD_ANSWER_MS = 10_000;
/** Poll answers and error pages up to this size arrive whole; larger ones (request bodies) stream. */
export const WHOLE_ANSWER = 256 * 1024;

export const bearer = (secret: string) => `Bearer ${secret}`;

export function createEndpoint(server: URL, proxy: string | false | undefined): Endpoint {
  const dispatcher = createDispatcher(proxy);
  const origin = server.origin;
  const base = server.pathname.replace(/\/+$/, '');
  return { dispatcher, origin, base, url: (path) => `${origin}${base}${path}` };
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
