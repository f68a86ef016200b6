import { createServer as createNetServer } from 'node:net';
import { createServer } from 'node:http';
import { request } from 'undici';
import WebSocket, { WebSocketServer } from 'ws';
import type { TunnelClient, TunnelInfo } from '@devtunnel/core';
import { CLIENT_BIN, runBin, type Child } from '../helpers/child';
import { type EchoBody } from '../helpers/echo-app';
import { closeServer, listen } from '../helpers/net';
import { fetchBuffer, memoryLogger, startClient, startServer, stateDir, TOKEN, useEchoSuite, waitFor } from '../helpers/tunnel';

/**
 * The inspector with a real tunnel server, client and local app: what crossed the tunnel shows
 * with the ids the server logs, bodies kept to a bound, event streams and WebSockets summarised,
 * replays reach the local app, memory stays bounded under a flood, and only its key opens it.
 */

type Client = TunnelClient & { info: TunnelInfo };

/** The inspector's API as a script reads it: its key as a bearer token. */
function inspectorOf(client: Client) {
  const url = new URL(client.inspector!);
  const key = url.searchParams.get('key')!;
  const origin = url.origin;
  const call = async (path: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}) => {
    const res = await request(`${origin}${path}`, {
      method: (init.method ?? 'GET') as 'GET',
      headers: { authorization: `Bearer ${key}`, ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}), ...init.headers },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) };
  };
  const list = async () => (await call('/api/requests')).json().requests as Array<Record<string, any>>;
  /** The kept request for `url` once it is over (or, with `state`, in that state). */
  const find = async (url: string, state = 'done') => {
    let found: Record<string, any> | undefined;
    await waitFor(async () => (found = (await list()).find((r) => r.url === url && r.state === state)) !== undefined, 10_000, `${url} ${state} in the inspector`);
    return found!;
  };
  return { origin, key, call, list, find, detail: async (seq: number) => (await call(`/api/requests/${seq}`)).json() };
}

describe('the inspector', () => {
  const suite = useEchoSuite();
  const logger = memoryLogger();
  let server: Awaited<ReturnType<typeof startServer>>;
  let client: Client;
  let inspector: ReturnType<typeof inspectorOf>;

  beforeAll(async () => {
    server = await startServer({ logger });
    client = await startClient(server, { port: suite.app.port, name: 'inspected' });
    inspector = inspectorOf(client);
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
  });
  const through = (path: string, options: Parameters<typeof fetchBuffer>[1] = {}) => fetchBuffer(`${client.info.url}${path}`, { dispatcher: suite.dispatcher, ...options });

  test('each request with its ids, as the server logs them; one in full, bodies decoded and cut', async () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const res = await through('/api/cart?id=7', { method: 'POST', headers: { 'content-type': 'application/json', traceparent }, body: '{"qty":2}' });
    const echoed = res.json<EchoBody>();
    const kept = await inspector.find('/api/cart?id=7');
    // The id the local app saw is the one the inspector shows, and the one in the server's log line.
    expect(kept).toMatchObject({ method: 'POST', status: 200, requestId: echoed.headers['x-request-id'], traceparent, bytesIn: 9, bytesOut: res.body.length });
    await waitFor(() => logger.lines.some((l) => l.msg === 'request' && l.path === '/api/cart'), 5_000, 'the server log line');
    const line = logger.lines.find((l) => l.msg === 'request' && l.path === '/api/cart')!;
    expect(line.requestId).toBe(kept.requestId);
    expect((line.trace as Record<string, string>).traceparent).toBe(traceparent);
    expect(kept.localMs).toBeGreaterThanOrEqual(0);
    // Its wait in the cluster, as the server measured it (the request message carries it).
    expect(kept.waitedMs).toBe(Math.max(0, Math.round(line.queuedMs as number)));

    const full = await inspector.detail(kept.seq);
    expect(full.requestHeaders).toEqual(expect.arrayContaining([['traceparent', traceparent]]));
    expect(full.requestBody).toMatchObject({ kind: 'json', text: '{\n  "qty": 2\n}', cut: false });
    expect(full.responseBody.kind).toBe('json');
    expect(JSON.parse(full.responseBody.text).url).toBe('/api/cart?id=7');
    expect(full.editableBody).toBe('{"qty":2}');

    // 1 MiB of binary: counted whole, the first 64 KiB kept, shown as hex.
    const big = await through('/bytes?n=1048576');
    expect(big.body.length).toBe(1048576);
    const large = await inspector.detail((await inspector.find('/bytes?n=1048576')).seq);
    expect(large.responseBody).toMatchObject({ size: 1048576, kept: 65536, cut: true, kind: 'binary' });
    expect(large.via).toBe('upload');
  });

  test('the live stream tells a page of each request as it happens', async () => {
    const res = await fetch(`${inspector.origin}/events`, { headers: { authorization: `Bearer ${inspector.key}` } });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    const seen = (async () => {
      while (!text.includes('/live/one')) {
        const { value, done } = await reader.read();
        if (done) break;
        text += Buffer.from(value).toString('utf8');
      }
    })();
    // The snapshot comes first, then changes: this request is one of them.
    await waitFor(() => text.includes('event: snapshot'), 5_000, 'the snapshot');
    await through('/live/one');
    await seen;
    await reader.cancel();
    expect(text).toMatch(/event: changes\ndata: .*"url":"\/live\/one"/);
  });

  test('an event stream is summarised: how many events, the last few', async () => {
    const pending = through('/events?tag=insp');
    const stream = await suite.app.eventStream('insp');
    for (let i = 0; i < 15; i++) stream.write(`event: tick\ndata: {"n":${i}}\n\n`);
    stream.write(': keep-alive\n\n');
    const open = await inspector.find('/events?tag=insp', 'streaming');
    expect(open.status).toBe(200);
    stream.end();
    await pending;
    const full = await inspector.detail((await inspector.find('/events?tag=insp')).seq);
    expect(full.messages).toMatchObject({ kind: 'event-stream', count: 15, control: 1 });
    expect(full.messages.last).toHaveLength(10);
    expect(full.messages.last.at(-1).preview).toBe('event: tick\ndata: {"n":14}');
  });

  test('a WebSocket is summarised both ways, and is not replayed', async () => {
    const http = createServer((_req, res) => res.end('plain'));
    const wss = new WebSocketServer({ server: http });
    wss.on('connection', (ws) => ws.on('message', (data, binary) => ws.send(binary ? data : `echo: ${data.toString()}`, { binary })));
    const port = await listen(http);
    const wsClient = await startClient(server, { port, name: 'inspected-ws' });
    try {
      const ws = new WebSocket(`${wsClient.info.url.replace('http', 'ws')}/socket`);
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      const echoes: string[] = [];
      ws.on('message', (data) => echoes.push(data.toString()));
      ws.send('hello');
      ws.send(Buffer.alloc(3000, 1));
      ws.send('last');
      await waitFor(() => echoes.length === 3, 5_000, 'three echoes');
      ws.close(1000, 'done');
      const ins = inspectorOf(wsClient);
      const kept = await ins.find('/socket', 'closed');
      expect(kept.status).toBe(101);
      const full = await ins.detail(kept.seq);
      expect(full.messages.kind).toBe('websocket');
      const messages = full.messages.last.map((m: { from: string; kind: string; size: number; preview: string }) => [m.from, m.kind, m.size, m.kind === 'binary' ? '' : m.preview]);
      expect(messages).toEqual(expect.arrayContaining([['browser', 'text', 5, 'hello'], ['app', 'text', 11, 'echo: hello'], ['browser', 'binary', 3000, ''], ['app', 'text', 10, 'echo: last']]));
      expect(messages.filter(([, kind]: string[]) => kind === 'close').length).toBeGreaterThanOrEqual(1);
      expect((await ins.call(`/api/requests/${kept.seq}/replay`, { method: 'POST', body: {} })).status).toBe(409);
    } finally {
      await wsClient.close();
      for (const c of wss.clients) c.terminate();
      wss.close();
      await closeServer(http);
    }
  });

  test('a replay reaches the local app as it was, or edited, and is kept beside the request', async () => {
    await through('/replay/me', { method: 'PUT', headers: { 'content-type': 'text/plain', 'x-mine': 'one' }, body: 'first' });
    const kept = await inspector.find('/replay/me');
    const before = suite.app.hits.length;

    const asWas = await inspector.call(`/api/requests/${kept.seq}/replay`, { method: 'POST', body: {} });
    expect(asWas.status).toBe(200);
    const again = JSON.parse(asWas.json().responseBody.text) as EchoBody;
    expect(again).toMatchObject({ method: 'PUT', url: '/replay/me', bodyBytes: 5 });
    expect(again.headers['x-mine']).toBe('one');
    // The same request id: the local app's logs tie the replay to the original.
    expect(again.headers['x-request-id']).toBe(kept.requestId);

    const edited = await inspector.call(`/api/requests/${kept.seq}/replay`, { method: 'POST', body: { method: 'POST', url: '/replay/edited?x=1', headers: [['Content-Type', 'text/plain'], ['X-Mine', 'two']], body: 'second body' } });
    expect(edited.status).toBe(200);
    const answer = edited.json();
    expect(answer.status).toBe(200);
    const echoed = JSON.parse(answer.responseBody.text) as EchoBody;
    expect(echoed).toMatchObject({ method: 'POST', url: '/replay/edited?x=1', bodyBytes: 11 });
    expect(echoed.headers['x-mine']).toBe('two');
    expect(suite.app.hits.slice(before)).toEqual([{ method: 'PUT', url: '/replay/me' }, { method: 'POST', url: '/replay/edited?x=1' }]);

    const full = await inspector.detail(kept.seq);
    expect(full.replays.map((r: { url: string }) => r.url)).toEqual(['/replay/me', '/replay/edited?x=1']);
    expect(full.replayCount).toBe(2);
    // A replay never goes anywhere but the local app.
    expect((await inspector.call(`/api/requests/${kept.seq}/replay`, { method: 'POST', body: { url: 'http://example.com/' } })).json().code).toBe('invalid_replay');
  });

  test('memory stays bounded under a flood of large bodies both ways, watched or not', async () => {
    // Each body is over the 64 KiB kept of it: 320 of them are more than the 16 MiB budget.
    const size = 256 * 1024;
    const upload = Buffer.alloc(size, 7);
    const flood = async (tag: string) => {
      let next = 0;
      const worker = async () => {
        while (next < 320) {
          const i = next++;
          const res = await through(i % 2 ? `/upload?${tag}=${i}` : `/bytes?n=${size}&${tag}=${i}`, i % 2 ? { method: 'POST', body: upload } : {});
          expect(res.status).toBe(200);
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
      return (await inspector.call('/api/stats')).json();
    };

    // Nobody watching: the last 100 are kept.
    const idle = await flood('idle');
    expect(idle.kept).toBeLessThanOrEqual(idle.idleRecords);
    expect(idle.bytes).toBeLessThanOrEqual(idle.maxBytes);

    // A page watching (its live stream open, read as a page would): up to 500, within the bytes.
    const page = await fetch(`${inspector.origin}/events`, { headers: { authorization: `Bearer ${inspector.key}` } });
    const reader = page.body!.getReader();
    const reading = (async () => {
      while (!(await reader.read()).done);
    })().catch(() => {});
    const watched = await flood('watched');
    await reader.cancel();
    await reading;
    expect(watched.seen - idle.seen).toBeGreaterThanOrEqual(320);
    expect(watched.bytes).toBeLessThanOrEqual(watched.maxBytes);
    expect(watched.kept).toBeLessThanOrEqual(watched.maxRecords);
    // 80 MiB crossed; 64 KiB of each body at most was kept, and the budget let the oldest go.
    expect(watched.kept).toBeGreaterThan(idle.idleRecords);
    expect(watched.kept).toBeLessThan(320);
    expect((await inspector.list()).length).toBe(watched.kept);
  }, 120_000);

  test('clear empties it', async () => {
    await through('/before/clear');
    await inspector.find('/before/clear');
    expect((await inspector.call('/api/clear', { method: 'POST', body: {} })).status).toBe(204);
    expect((await inspector.call('/api/stats')).json()).toMatchObject({ kept: 0, bytes: 0 });
  });

  test('only its key opens it; other sites, other hosts and forms are refused', async () => {
    const { origin, key, call } = inspector;
    const plain = (path: string, headers: Record<string, string> = {}, method = 'GET') => request(`${origin}${path}`, { method: method as 'GET', headers }).then(async (r) => ({ status: r.statusCode, headers: r.headers, text: await r.body.text() }));
    expect((await plain('/api/requests')).status).toBe(401);
    const page = await plain('/');
    expect(page.status).toBe(401);
    expect(page.text).toContain('key');
    expect((await plain(`/?key=${'0'.repeat(32)}`)).status).toBe(401);
    expect((await plain(`/?key=${encodeURIComponent('é'.repeat(32))}`)).status).toBe(401);
    // The key in the URL becomes a cookie no script reads and no other site's request carries.
    const opened = await plain(`/?key=${key}`, { 'sec-fetch-site': 'none' });
    expect(opened.status).toBe(303);
    const cookie = String(opened.headers['set-cookie']);
    expect(cookie).toMatch(/^devtunnel_inspector_\d+=[0-9a-f]{32}; Path=\/; HttpOnly; SameSite=Strict$/);
    const withCookie = await plain('/', { cookie: cookie.split(';')[0]! });
    expect(withCookie.status).toBe(200);
    expect(withCookie.headers['content-security-policy']).toContain("script-src 'self'");
    expect(withCookie.headers['x-frame-options']).toBe('DENY');
    // DNS rebinding: a page of another site resolved to 127.0.0.1 names its own host.
    expect((await call('/api/requests', { headers: { host: 'evil.example:80' } })).status).toBe(403);
    // Another page's requests, by Fetch Metadata or Origin, even with the cookie.
    expect((await plain('/api/requests', { cookie: cookie.split(';')[0]!, 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect((await plain('/api/requests', { cookie: cookie.split(';')[0]!, 'sec-fetch-site': 'same-site' })).status).toBe(403);
    expect((await plain('/api/clear', { cookie: cookie.split(';')[0]!, origin: 'http://127.0.0.1:5173', 'content-type': 'application/json' }, 'POST')).status).toBe(403);
    // A replay that is not JSON is the caller's mistake, said so.
    await through('/for/bad/json');
    const seq = (await inspector.find('/for/bad/json')).seq;
    const badJson = await request(`${origin}/api/requests/${seq}/replay`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: '{not json' });
    expect(badJson.statusCode).toBe(400);
    expect(await badJson.body.json()).toMatchObject({ code: 'bad_request' });
    // A form post (no preflight) is not JSON.
    expect((await call('/api/clear', { method: 'POST', headers: { 'content-type': 'text/plain' } })).status).toBe(415);
    // The page's script and style carry no data and need no key.
    expect((await plain('/app.js')).status).toBe(200);
  });
});

describe('the inspector, switched', () => {
  const suite = useEchoSuite();

  test('inspect: false captures nothing and listens nowhere', async () => {
    const server = await startServer();
    suite.defer(() => server.close());
    const client = await startClient(server, { port: suite.app.port, inspect: false });
    suite.defer(() => client.close());
    expect(client.inspector).toBeUndefined();
    expect(client.info.inspector).toBeUndefined();
  });

  test('the CLI prints it, --no-inspect has none, a taken address falls back to a free port', async () => {
    const server = await startServer();
    suite.defer(() => server.close());
    const children: Child[] = [];
    suite.defer(() => Promise.all(children.map((c) => c.stop('SIGKILL'))));
    const run = (args: string[]) => {
      const child = runBin(CLIENT_BIN, ['--server', server.url, '--port', String(suite.app.port), '--host', '127.0.0.1', '--state-dir', stateDir(), ...args], { DEVTUNNEL_TOKEN: TOKEN });
      children.push(child);
      return child;
    };
    const human = run([]);
    const line = await human.waitForLine((l) => l.includes('Inspect:'));
    const printed = /(http:\/\/127\.0\.0\.1:\d+\/\?key=[0-9a-f]{32})/.exec(line)![1]!;
    expect((await request(printed)).statusCode).toBe(303);

    const off = run(['--json', '--no-inspect']);
    const registered = JSON.parse(await off.waitForLine((l) => l.includes('"registered"')));
    expect(registered.inspector).toBeUndefined();

    // A port some other program holds (ngrok's 4040, say): a warning, and a free port instead.
    const taken = createNetServer();
    const takenPort = await new Promise<number>((resolve) => taken.listen(0, '127.0.0.1', () => resolve((taken.address() as { port: number }).port)));
    suite.defer(() => new Promise((resolve) => taken.close(resolve)));
    const fallback = run(['--inspect', `127.0.0.1:${takenPort}`]);
    const moved = /(http:\/\/127\.0\.0\.1:\d+\/\?key=[0-9a-f]{32})/.exec(await fallback.waitForLine((l) => l.includes('Inspect:')))![1]!;
    expect(new URL(moved).port).not.toBe(String(takenPort));
    expect(fallback.stderr()).toContain(`127.0.0.1:${takenPort} is taken`);

    const refused = run(['--inspect', '0.0.0.0:4040']);
    expect(await refused.exited()).toBe(2);
    expect(refused.stderr()).toContain('--inspect (option "inspect") must be true, false, or a loopback address');
  });
});
