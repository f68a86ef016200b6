import { request } from 'undici';
import { TunnelError } from '../errors';
import { HEADER, PROTOCOL_VERSION, paths, type RegisterRequest, type RegisterResponse } from '../protocol';
import { responseError } from './answer-error';
import { bearer, CALL_TIMEOUT_MS, type Endpoint } from './dispatcher';

/**
 * The calls that begin, confirm and end a session: a few per tunnel's life, never one per browser
 * request. They use undici's `request()` rather than the project's `call()` (http-call.ts): its
 * body helpers read an answer of any size or framing whole (JSON, an error text, a dump), which is
 * what these calls want, and its extra CPU (an async resource and a body stream per call) does not
 * matter at this rate. `call()` is for the per-request calls (poll.ts, uploads.ts, streams-io.ts).
 */

/** A live registration: its id, secret, port, URL, timing and features, as the server gave them. */
export interface Session extends RegisterResponse {}

export interface SessionCalls {
  register(body: RegisterRequest): Promise<Session>;
  /**
   * Resolves when the session still exists; throws `unknown_tunnel` (404) when it does not. With
   * `downstreamKey` (the key of a downstream's first notice) it also confirms that downstream.
   */
  check(session: Session, downstreamKey?: string): Promise<void>;
  deregister(session: Session): Promise<void>;
}

export interface SessionCallOptions {
  server: URL;
  /** The registration token. */
  token: string;
  /** This client's version, for the server's logs (User-Agent). */
  version: string;
}

export function createSessionCalls(endpoint: Endpoint, options: SessionCallOptions): SessionCalls {
  const { dispatcher, url } = endpoint;
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
  };
}
