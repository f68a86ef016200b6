import { once } from 'node:events';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import type { TunnelError } from '@devtunnel/core';
import { CLIENT_BIN, runBin, type Child } from '../helpers/child';
import { rawExchange, refusedPort } from '../helpers/net';
import type { EchoBody } from '../helpers/echo-app';
import { useEchoSuite, fetchBuffer, startClient, startServer, stateDir, TOKEN, waitFor } from '../helpers/tunnel';

/** Every failure a user can meet: its own status, code and message, and nothing hangs. */
describe('failures a user can meet', () => {
  const suite = useEchoSuite();
  const { dispatcher } = suite;

  async function tunnel(serverOptions: Parameters<typeof startServer>[0] = {}, clientOptions: Partial<Parameters<typeof startClient>[1]> = {}) {
    const server = await startServer(serverOptions);
    suite.defer(() => server.close());
    const client = await startClient(server, { port: suite.app.port, ...clientOptions });
    suite.defer(() => client.close());
    return { server, client, base: `http://127.0.0.1:${client.info.port}` };
  }

  test('tunnel closed by its client: its port answers 503 tunnel_offline naming it, page or JSON by Accept', async () => {
    const { client, base } = await tunnel();
    const name = client.info.name;
    await client.close();
    const page = await fetchBuffer(`${base}/`, { headers: { accept: 'text/html,application/xhtml+xml' }, dispatcher });
    expect(page.status).toBe(503);
    expect(page.headers['x-devtunnel-error']).toBe('tunnel_offline');
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    expect(page.headers['retry-after']).toBe('5');
    expect(page.text).toContain(name);
    const api = await fetchBuffer(`${base}/api`, { headers: { accept: 'application/json' }, dispatcher });
    expect(api.status).toBe(503);
    expect(api.json()).toEqual({ error: { code: 'tunnel_offline', message: expect.stringContaining('offline') } });
    // fetch() and module traffic that accept anything get text, never an HTML interstitial.
    const fetchLike = await fetchBuffer(`${base}/module.js`, { headers: { accept: '*/*', 'sec-fetch-mode': 'cors' }, dispatcher });
    expect(fetchLike.status).toBe(503);
    expect(fetchLike.headers['content-type']).toMatch(/^text\/plain/);
  });

  test('client gone without a goodbye: its tunnel goes offline (503 tunnel_offline)', async () => {
    const server = await startServer({ disconnectGraceMs: 100 });
    suite.defer(() => server.close());
    const child = runBin(CLIENT_BIN, ['--server', server.url, '--port', String(suite.app.port), '--host', '127.0.0.1', '--state-dir', stateDir(), '--json'], { DEVTUNNEL_TOKEN: TOKEN });
    suite.defer(() => child.stop('SIGKILL'));
    const { port } = JSON.parse(await child.waitForLine((l) => l.includes('"registered"'))) as { port: number };
    expect((await fetchBuffer(`http://127.0.0.1:${port}/`, { dispatcher })).status).toBe(200);
    await child.stop('SIGKILL');
    const res = await waitForStatus(`http://127.0.0.1:${port}/`, 503, { accept: 'application/json' });
    expect(res.headers['x-devtunnel-error']).toBe('tunnel_offline');
    expect(server.tunnels().find((t) => t.port === port)?.state).toBe('offline');
  });

  async function waitForStatus(url: string, status: number, headers: Record<string, string>) {
    const deadline = Date.now() + 5_000;
    for (;;) {
      const res = await fetchBuffer(url, { headers, dispatcher });
      if (res.status === status || Date.now() > deadline) return res;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  test('local app refused: 502 local_app_refused naming host and port', async () => {
    const deadPort = await refusedPort();
    const { base } = await tunnel({}, { port: deadPort });
    const res = await fetchBuffer(`${base}/`, { headers: { accept: 'application/json' }, dispatcher });
    expect(res.status).toBe(502);
    expect(res.headers['x-devtunnel-error']).toBe('local_app_refused');
    expect(res.json<{ error: { message: string } }>().error.message).toContain(`127.0.0.1:${deadPort}`);
  });

  test('an upload slower than the server deadline still arrives whole: only the idle limit applies while it streams', async () => {
    const { server, base } = await tunnel();
    const part = Buffer.alloc(1024, 'u');
    const parts = 12;
    async function* slowly() {
      // 12 parts 400 ms apart: longer than the 3 s deadline, never idle for the 3 s idle limit.
      for (let i = 0; i < parts; i++) {
        yield part;
        await new Promise((resolve) => setTimeout(resolve, 400));
      }
    }
    expect(server.options.deadlineMs).toBeLessThan(parts * 400);
    const res = await fetchBuffer(`${base}/upload`, { method: 'POST', body: Readable.from(slowly()), headers: { 'content-length': String(parts * part.length) }, dispatcher });
    expect(res.status).toBe(200);
    expect(res.json<EchoBody>().bodyBytes).toBe(parts * part.length);
  });

  test('a refused raw connection whose peer never closes its side is cut, so shutdown never waits on it', async () => {
    const { server, client } = await tunnel();
    const socket = connect({ port: client.info.port, host: '127.0.0.1', allowHalfOpen: true });
    socket.on('error', () => {});
    socket.write('CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n');
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
    await once(socket, 'end'); // the server's side is closed; ours stays open on purpose
    expect(answer).toMatch(/^HTTP\/1\.1 405 /);
    await client.close();
    // Before the fix, this waited forever on the half-open socket.
    await server.close();
    socket.destroy();
  }, 20_000);

  test('local app too slow: 504 local_app_timeout from the client, before the server deadline', async () => {
    // The client's wait starts only once the request reaches it; a wide gap keeps a loaded CI
    // machine from letting the server's deadline (tunnel_timeout) win the race.
    const { base } = await tunnel({ localTimeoutMs: 1_000, deadlineMs: 4_000 });
    const res = await fetchBuffer(`${base}/hang`, { dispatcher });
    expect(res.status).toBe(504);
    expect(res.headers['x-devtunnel-error']).toBe('local_app_timeout');
  });

  test('queue full: 503 queue_full with Retry-After; a request nobody polls for: 503 tunnel_busy', async () => {
    const { base, server } = await tunnel(
      { queueLimit: 1, waitForPollMs: 2_500, localTimeoutMs: 4_000, deadlineMs: 6_500, keepAliveTimeoutMs: 7_500, bodyIdleTimeoutMs: 7_500 },
      { polls: 1, maxInFlight: 1 },
    );
    // One request occupies the only slot, one waits in the queue, the next is refused.
    const first = fetchBuffer(`${base}/hang?occupied`, { dispatcher });
    await waitUntilHit('/hang?occupied');
    const second = fetchBuffer(`${base}/queued`, { dispatcher });
    // The second must hold the queue's one place before the third comes.
    await waitFor(() => server.tunnels()[0]!.queued === 1, 5_000, 'the second request queued');
    const third = await retryUntil(() => fetchBuffer(`${base}/third`, { dispatcher }), (r) => r.status === 503);
    expect(third.headers['x-devtunnel-error']).toBe('queue_full');
    expect(third.headers['retry-after']).toBe('1');
    const queued = await second;
    expect(queued.status).toBe(503);
    expect(queued.headers['x-devtunnel-error']).toBe('tunnel_busy');
    expect((await first).headers['x-devtunnel-error']).toBe('local_app_timeout');
  });

  async function waitUntilHit(path: string) {
    const deadline = Date.now() + 5_000;
    while (!suite.app.hits.some((h) => h.url === path)) {
      if (Date.now() > deadline) throw new Error(`the app never saw ${path}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async function retryUntil<T>(fn: () => Promise<T>, ok: (t: T) => boolean): Promise<T> {
    for (let i = 0; i < 50; i++) {
      const r = await fn();
      if (ok(r)) return r;
    }
    throw new Error('condition never met');
  }

  test('bad token: start() rejects with TUNNEL_UNAUTHORIZED at once, without retrying, after one error event and the closed event', async () => {
    const server = await startServer();
    suite.defer(() => server.close());
    let attempts = 0;
    const events: string[] = [];
    const { createTunnelClient } = await import('@devtunnel/core');
    const client = createTunnelClient({ server: server.url, token: 'wrong-token-wrong-token', port: suite.app.port, stateDir: stateDir(), proxy: false });
    client.on('reconnecting', () => attempts++);
    // What a dev-server plugin listens to: it never awaits start().
    client.on('error', (error) => events.push(`error ${error.code}`));
    client.on('closed', () => events.push('closed'));
    await expect(client.start()).rejects.toMatchObject({ code: 'TUNNEL_UNAUTHORIZED', status: 401 });
    expect(attempts).toBe(0);
    expect(events).toEqual(['error TUNNEL_UNAUTHORIZED', 'closed']);
    expect(client.status).toBe('closed');
  });

  test('a server URL with a wrong path: the server says nothing is there, a final error that names the setting, no retry loop', async () => {
    const server = await startServer();
    suite.defer(() => server.close());
    let attempts = 0;
    const { createTunnelClient } = await import('@devtunnel/core');
    const client = createTunnelClient({ server: `${server.url}/devtunnel`, token: TOKEN, port: suite.app.port, stateDir: stateDir(), proxy: false });
    client.on('reconnecting', () => attempts++);
    const error = (await client.start().catch((e: unknown) => e)) as TunnelError;
    expect(error).toMatchObject({ code: 'TUNNEL_REGISTRATION_REFUSED', status: 404 });
    expect(error.message).toContain('DEVTUNNEL_SERVER');
    expect(attempts).toBe(0);
  });

  test('port range full: 503 port_range_full; the client reports it and keeps trying', async () => {
    const server = await startServer();
    suite.defer(() => server.close());
    const holder = await startClient(server, { port: suite.app.port });
    suite.defer(() => holder.close());
    const narrow = await startServer({ tunnelPorts: `${holder.info.port + 1}-${holder.info.port + 1}` });
    suite.defer(() => narrow.close());
    const first = await startClient(narrow, { port: suite.app.port });
    suite.defer(() => first.close());
    const { createTunnelClient } = await import('@devtunnel/core');
    const second = createTunnelClient({ server: narrow.url, token: TOKEN, port: suite.app.port, stateDir: stateDir(), proxy: false });
    suite.defer(() => second.close());
    const reported = new Promise<TunnelError>((resolve) => second.once('reconnecting', (e) => resolve(e.error)));
    void second.start().catch(() => {});
    expect(await reported).toMatchObject({ code: 'TUNNEL_PORT_RANGE_FULL', status: 503 });
    expect(second.status).not.toBe('closed');
  });

  test('client killed mid-request: the browser gets 502 client_disconnected, not the deadline\'s 504', async () => {
    // A 10 s deadline: the kill, the closed sockets and the 200 ms grace must win against it
    // across processes on a loaded machine.
    const server = await startServer({ disconnectGraceMs: 200, deadlineMs: 10_000, keepAliveTimeoutMs: 11_000 });
    suite.defer(() => server.close());
    const child: Child = runBin(CLIENT_BIN, ['--server', server.url, '--port', String(suite.app.port), '--host', '127.0.0.1', '--state-dir', stateDir(), '--json'], { DEVTUNNEL_TOKEN: TOKEN });
    suite.defer(() => child.stop('SIGKILL'));
    const registered = JSON.parse(await child.waitForLine((l) => l.includes('"registered"'))) as { port: number };
    const pending = fetchBuffer(`http://127.0.0.1:${registered.port}/hang?killed`, { dispatcher });
    await waitUntilHit('/hang?killed');
    await child.stop('SIGKILL');
    const res = await pending;
    expect(res.text).toContain('disconnected');
    expect(res.status).toBe(502);
    // Not the server's own deadline (its 504 tunnel_timeout): the poll sockets closing told it.
    expect(res.headers['x-devtunnel-error']).toBe('client_disconnected');
  });

  test('browser abort: the local app sees its request closed', async () => {
    const { client } = await tunnel();
    const socket = connect(client.info.port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write('GET /hang?abort HTTP/1.1\r\nHost: test\r\n\r\n');
    await waitUntilHit('/hang?abort');
    const aborted = suite.app.abortedRequest('/hang?abort');
    socket.destroy();
    await aborted;
  });

  test('browser abort while queued: the request is never replayed', async () => {
    const { base, client, server } = await tunnel(
      { waitForPollMs: 2_500, localTimeoutMs: 4_000, deadlineMs: 5_000, keepAliveTimeoutMs: 6_000, bodyIdleTimeoutMs: 6_000 },
      { polls: 1, maxInFlight: 1 },
    );
    const queued = () => server.tunnels().find((t) => t.port === client.info.port)?.queued ?? 0;
    const first = fetchBuffer(`${base}/hang?first`, { dispatcher });
    await waitUntilHit('/hang?first');
    const socket = connect(client.info.port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write('GET /never-replayed HTTP/1.1\r\nHost: test\r\n\r\n');
    await waitFor(() => queued() === 1, 5_000, 'the request to be queued');
    socket.destroy();
    await waitFor(() => queued() === 0, 5_000, 'the abandoned request to leave the queue');
    await first;
    // The slot is free again: a later request goes through and the dropped one never did.
    expect((await fetchBuffer(`${base}/after`, { dispatcher })).status).toBe(200);
    expect(suite.app.hits.some((h) => h.url === '/never-replayed')).toBe(false);
  });

  test('an upgrade the local app does not speak: the browser gets the app\'s own answer, never a hang', async () => {
    const { client } = await tunnel();
    const res = await rawExchange(client.info.port, 'GET /ws HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    // The echo app has no upgrade handler and answers 200: a refusal, passed on, then closed.
    expect(res.statuses).toEqual([200]);
    expect(res.closedByServer).toBe(true);
    expect(res.text).toContain('"url":"/ws"');
  });
});
