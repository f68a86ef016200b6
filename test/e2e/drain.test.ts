import { Agent } from 'undici';
import { startEchoApp, type EchoApp } from '../helpers/echo-app';
import { browser, fetchBuffer, startClient, startServer } from '../helpers/tunnel';

/** SIGTERM (server.close()): stop accepting, let in-flight requests finish, tell clients to come back. */
describe('graceful shutdown', () => {
  let app: EchoApp;
  const dispatcher = browser();
  beforeAll(async () => {
    app = await startEchoApp();
  });
  afterAll(async () => {
    await app.close();
    await dispatcher.close();
  });

  test('in-flight requests finish, new ones are refused, the client is told to come back', async () => {
    const server = await startServer({ drainTimeoutMs: 5_000 });
    // Two tunnels: the HTTP server listens on the first port, the second's is handed over to it.
    const client = await startClient(server, { port: app.port });
    const second = await startClient(server, { port: app.port, name: 'second-drain' });
    try {
      const bases = [client, second].map((c) => `http://127.0.0.1:${c.info.port}`);
      const reconnecting = new Promise((resolve) => client.once('reconnecting', (e) => resolve(e.error.code)));
      // A slow request is in flight on each port when the server is told to stop.
      const inFlight = bases.map((base, i) => fetchBuffer(`${base}/slow?delay=400&on=${i}`, { dispatcher }));
      while (!app.hits.some((h) => h.url === '/slow?delay=400&on=0') || !app.hits.some((h) => h.url === '/slow?delay=400&on=1')) await new Promise((r) => setTimeout(r, 10));
      const closing = server.close();
      // Readiness drops at once, so the load balancer stops sending new tunnels here.
      const ready = await fetchBuffer(`${server.url}/readyz`, { dispatcher });
      expect([ready.status, ready.headers['x-devtunnel-error']]).toEqual([503, 'server_shutting_down']);
      expect((await Promise.all(inFlight)).map((r) => r.status)).toEqual([200, 200]);
      expect(await reconnecting).toBe('TUNNEL_SERVER_UNREACHABLE');
      await closing;
      // Everything is closed afterwards: both tunnel ports refuse connections.
      for (const base of bases) await expect(fetchBuffer(`${base}/after`, { dispatcher })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    } finally {
      await client.close();
      await second.close();
      await server.close();
    }
  });

  test('a gateway that keeps its connections open: the close does not wait for their keep-alive to end, on any port', async () => {
    // Keep-alive far longer than this test may take: a close that waited for it would time out.
    const server = await startServer({ drainTimeoutMs: 5_000, keepAliveTimeoutMs: 60_000 });
    const first = await startClient(server, { port: app.port });
    const second = await startClient(server, { port: app.port, name: 'second-keepalive' });
    const gateway = new Agent({ keepAliveTimeout: 60_000 });
    try {
      const inFlight = [first, second].map((c, i) => fetchBuffer(`http://127.0.0.1:${c.info.port}/slow?delay=300&keep=${i}`, { dispatcher: gateway }));
      while (!app.hits.some((h) => h.url === '/slow?delay=300&keep=1')) await new Promise((r) => setTimeout(r, 10));
      const closing = server.close();
      expect((await Promise.all(inFlight)).map((r) => r.status)).toEqual([200, 200]);
      await closing;
    } finally {
      await first.close();
      await second.close();
      await gateway.destroy();
    }
  }, 20_000);

  test('the drain budget bounds the wait for a request that never ends', async () => {
    const server = await startServer({ drainTimeoutMs: 300 });
    const client = await startClient(server, { port: app.port });
    try {
      const hanging = fetchBuffer(`http://127.0.0.1:${client.info.port}/hang?drain`, { dispatcher }).catch((e: Error) => e);
      while (!app.hits.some((h) => h.url === '/hang?drain')) await new Promise((r) => setTimeout(r, 10));
      await server.close();
      const outcome = await hanging;
      // Cut or answered with an error: never left hanging past the budget.
      expect(outcome instanceof Error || (outcome as { status: number }).status >= 500).toBe(true);
    } finally {
      await client.close();
    }
  });
});
