import { Agent, request, type Dispatcher } from 'undici';
import { paths, type RegisterResponse } from '@devtunnel/core/protocol';
import type { ServerOptions } from '@devtunnel/server';
import { patientTimings, startServer, TOKEN } from './tunnel';

/**
 * The frame of a suite that plays the client itself with the wire format of
 * `@devtunnel/core/protocol`, so it sees the frames as they travel: a fresh server per test (long
 * leases: a tunnel driven by hand must not go offline between two steps; long request deadlines),
 * a connection pool for the control channel and one for browsers. Call inside `describe`.
 */
export function useHandDrivenServer(clientName: string) {
  let clients = 0;
  const hand = {
    server: undefined as unknown as Awaited<ReturnType<typeof startServer>>,
    control: new Agent({ connections: 16 }),
    browsers: new Agent({ connections: 16 }),
    /** Replaces this test's server with one started with `options`. */
    async restart(options: ServerOptions) {
      await hand.server?.close();
      hand.server = await startServer({ leaseMs: 20_000, expireMs: 60_000, ...patientTimings, ...options });
    },
    /** Registers a new identity with `features`; fails the test unless the server says 201. */
    async register(features: string[]): Promise<RegisterResponse> {
      const res = await request(`${hand.server.url}${paths.tunnels}`, {
        dispatcher: hand.control,
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ clientId: `${clientName}@host:1#${++clients}`, features }),
      });
      expect(res.statusCode).toBe(201);
      return (await res.body.json()) as RegisterResponse;
    },
    /** One browser request to the tunnel's port: status, text and error code. */
    browse(session: RegisterResponse, path: string, options: { method?: Dispatcher.HttpMethod; body?: string; signal?: AbortSignal } = {}) {
      return request(`http://127.0.0.1:${session.port}${path}`, { dispatcher: hand.browsers, method: options.method ?? 'GET', body: options.body, signal: options.signal }).then(async (res) => ({
        status: res.statusCode,
        text: await res.body.text(),
        code: res.headers['x-devtunnel-error'],
      }));
    },
  };
  beforeEach(() => hand.restart({}));
  afterEach(async () => {
    await hand.server?.close();
  });
  afterAll(async () => {
    await hand.control.close();
    await hand.browsers.close();
  });
  return hand;
}
