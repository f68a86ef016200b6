import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { once } from 'node:events';
import { WebSocket, WebSocketServer } from 'ws';
import { startEchoApp, patternBytes, sha256, type EchoApp, type EchoBody } from '../helpers/echo-app';
import { startBadApp, sendThenClose, type BadApp } from '../helpers/bad-app';
import { CLIENT_BIN, runBin } from '../helpers/child';
import { closeServer, listen, rawExchange, refusedPort } from '../helpers/net';
import { TOKEN, fetchBuffer, freeRange, memoryLogger, startClient, startServer, stateDir, useEchoSuite, waitFor } from '../helpers/tunnel';

/**
 * Routes (issue 15): the tunnel server stands in for an app of the cluster. The real app behind a
 * route is a real HTTP server; developers' tunnels are real clients with local apps of their own.
 */

const served = (res: { headers: Record<string, unknown> }) => res.headers['x-devtunnel-served-by'];

describe('routes', () => {
  const suite = useEchoSuite();
  /** The route's real app: an echo app of its own, so hits tell who served a request. */
  let real: EchoApp;
  beforeAll(async () => {
    real = await startEchoApp();
  });
  afterAll(async () => {
    await real.close();
  });

  /** A server with route `cart` (and more) on free ports; `routes` maps name → upstream. */
  async function routeServer(routes: Record<string, string> = { cart: `http://127.0.0.1:${0}` }, extra: Record<string, unknown> = {}, suffix: Record<string, string> = {}) {
    const names = Object.keys(routes);
    const { from } = await freeRange(names.length);
    const ports: Record<string, number> = {};
    const specs = names.map((name, i) => {
      ports[name] = from + i;
      return `${name}:${from + i}=${routes[name]}${suffix[name] ?? ''}`;
    });
    const logger = memoryLogger();
    const server = await startServer({ routes: specs, logger, ...extra });
    suite.defer(() => server.close());
    const url = (name: string, path = '/') => `http://127.0.0.1:${ports[name]}${path}`;
    return { server, ports, url, logger };
  }

  const realUrl = () => `http://127.0.0.1:${real.port}`;

  async function developer(server: { url: string }, route: string, name: string, app: EchoApp = suite.app) {
    const client = await startClient(server, { port: app.port, route, name });
    suite.defer(() => client.close());
    return client;
  }

  test('a request goes to the developer it names (header, cookie, baggage), else to the real app', async () => {
    const { server, url } = await routeServer({ cart: realUrl() });
    const ann = await startEchoApp();
    suite.defer(() => ann.close());
    const bob = await startEchoApp();
    suite.defer(() => bob.close());
    const annClient = await developer(server, 'cart', 'ann', ann);
    await developer(server, 'cart', 'bob', bob);
    expect(annClient.info.route).toEqual({ name: 'cart', selector: 'ann', link: expect.stringMatching(/\/__devtunnel\/\?use=ann$/) });

    const cases: Array<[string, Record<string, string>, string, EchoApp]> = [
      ['/none', {}, 'upstream', real],
      ['/header', { 'x-devtunnel': 'ann' }, 'tunnel ann', ann],
      ['/cookie', { cookie: 'theme=dark; devtunnel=bob; other=1' }, 'tunnel bob', bob],
      ['/baggage', { baggage: 'userId=42,devtunnel=ann;p=1' }, 'tunnel ann', ann],
      // The header is said per request: it wins over the browser's cookie.
      ['/both', { 'x-devtunnel': 'bob', cookie: 'devtunnel=ann' }, 'tunnel bob', bob],
      ['/unknown', { cookie: 'devtunnel=carol' }, 'upstream', real],
      ['/malformed', { cookie: 'devtunnel=Ann!' }, 'upstream', real],
      ['/oversized', { 'x-devtunnel': 'a'.repeat(5_000) }, 'upstream', real],
      ['/bad-baggage', { baggage: 'devtunnel=%E0%A4%A' }, 'upstream', real],
    ];
    for (const [path, headers, by, app] of cases) {
      const res = await fetchBuffer(url('cart', path), { dispatcher: suite.dispatcher, headers });
      expect([path, res.status, served(res)]).toEqual([path, 200, by]);
      // A laptop's answer varies on the selection; the real app's keeps its own caching headers.
      expect(res.headers.vary).toBe(by === 'upstream' ? undefined : 'Cookie, X-Devtunnel, Baggage');
      expect(app.hits.some((h) => h.url === path)).toBe(true);
    }
    // Every request got exactly one answer from exactly one app.
    const all = [...real.hits, ...ann.hits, ...bob.hits].map((h) => h.url).filter((u) => cases.some(([p]) => p === u));
    expect(all.sort()).toEqual(cases.map(([p]) => p).sort());
  });

  test('one name selects a developer on every route; routes and members are listed, and counted', async () => {
    const search = await startEchoApp();
    suite.defer(() => search.close());
    const { server, url } = await routeServer({ cart: realUrl(), search: `http://127.0.0.1:${search.port}` }, { dashboardOpenCidrs: ['127.0.0.0/8'] });
    const annCart = await startEchoApp();
    suite.defer(() => annCart.close());
    await developer(server, 'cart', 'ann', annCart);
    await developer(server, 'search', 'ann');
    const cookie = { cookie: 'devtunnel=ann' };
    expect(served(await fetchBuffer(url('cart', '/c'), { dispatcher: suite.dispatcher, headers: cookie }))).toBe('tunnel ann');
    expect(served(await fetchBuffer(url('search', '/s'), { dispatcher: suite.dispatcher, headers: cookie }))).toBe('tunnel ann');
    expect(suite.app.hits.some((h) => h.url === '/s')).toBe(true);
    expect(annCart.hits.some((h) => h.url === '/c')).toBe(true);
    expect(served(await fetchBuffer(url('search', '/s2'), { dispatcher: suite.dispatcher }))).toBe('upstream');

    const listing = (await fetchBuffer(`${server.url}/api/v1/tunnels`, { dispatcher: suite.dispatcher, headers: { authorization: `Bearer ${TOKEN}` } })).json<{
      tunnels: Array<{ name: string; route?: string }>;
      routes: Array<{ name: string; upstream: string; health: { state: string }; members: Array<{ name: string; state: string }>; served: Record<string, number> }>;
    }>();
    expect(listing.tunnels.map((t) => [t.name, t.route]).sort()).toEqual([['ann', 'cart'], ['ann', 'search']]);
    const cart = listing.routes.find((r) => r.name === 'cart')!;
    expect(cart).toMatchObject({ upstream: realUrl(), health: { state: 'up' }, members: [{ name: 'ann', state: 'connected' }], served: { tunnel: 1, upstream: 0, error: 0 } });
    expect(listing.routes.find((r) => r.name === 'search')!.served).toEqual({ tunnel: 1, upstream: 1, error: 0 });

    const dashboard = (await fetchBuffer(`${server.url}/dashboard/api/tunnels`, { dispatcher: suite.dispatcher })).json<{ routes: Array<{ name: string }> }>();
    expect(dashboard.routes.map((r) => r.name)).toEqual(['cart', 'search']);

    const metrics = (await fetchBuffer(`${server.url}/metrics`, { dispatcher: suite.dispatcher, headers: { authorization: `Bearer ${TOKEN}` } })).text;
    expect(metrics).toMatch(/devtunnel_route_requests_total\{route="search",served_by="upstream"\} 1/);
    expect(metrics).toMatch(/devtunnel_route_requests_total\{route="cart",served_by="tunnel"\} 1/);
  });

  test('a selected developer who stopped: the real app answers, with no page in between', async () => {
    const { server, url } = await routeServer({ cart: realUrl() });
    const ann = await developer(server, 'cart', 'ann');
    const navigate = { cookie: 'devtunnel=ann', accept: 'text/html', 'sec-fetch-mode': 'navigate' };
    expect(served(await fetchBuffer(url('cart', '/live'), { dispatcher: suite.dispatcher, headers: navigate }))).toBe('tunnel ann');
    await ann.close();
    const after = await fetchBuffer(url('cart', '/after'), { dispatcher: suite.dispatcher, headers: navigate });
    expect([after.status, served(after)]).toEqual([200, 'upstream']);
    expect(real.hits.some((h) => h.url === '/after')).toBe(true);
  });

  test('a member registered by hand that never polls goes offline; offline=error answers 503, the default falls back', async () => {
    const { server, url, ports } = await routeServer({ cart: realUrl(), strict: realUrl() }, {}, { strict: ';offline=error' });
    for (const route of ['cart', 'strict']) {
      const res = await fetchBuffer(`${server.url}/api/v1/tunnels`, {
        dispatcher: suite.dispatcher,
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ clientId: `sleepy@laptop:${route}#k`, name: 'sleepy', route }),
      });
      expect(res.status).toBe(201);
    }
    await waitFor(() => server.tunnels().filter((t) => t.name === 'sleepy').every((t) => t.state === 'offline'), 10_000, 'sleepy offline');
    const cookie = { cookie: 'devtunnel=sleepy' };
    const fallback = await fetchBuffer(url('cart', '/x'), { dispatcher: suite.dispatcher, headers: cookie });
    expect([fallback.status, served(fallback)]).toEqual([200, 'upstream']);
    const strict = await fetchBuffer(url('strict', '/x'), { dispatcher: suite.dispatcher, headers: { ...cookie, accept: 'application/json' } });
    expect([strict.status, strict.headers['x-devtunnel-error'], served(strict)]).toEqual([503, 'tunnel_offline', 'error']);
    expect(strict.json<{ error: { message: string } }>().error.message).toContain('"sleepy"');
    // An upgrade (HMR) gets the same answer, saying who served it.
    const ws = await rawExchange(ports.strict!, 'GET /hmr HTTP/1.1\r\nHost: x\r\nCookie: devtunnel=sleepy\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    expect(ws.statuses).toEqual([503]);
    expect(ws.text).toMatch(/X-Devtunnel-Served-By: error\r\n/i);
    // A request naming nobody on the strict route still reaches the real app.
    expect(served(await fetchBuffer(url('strict', '/y'), { dispatcher: suite.dispatcher }))).toBe('upstream');
  });

  test('registering: an unknown route is refused for good, a name another developer serves is refused until they stop', async () => {
    const { server } = await routeServer({ cart: realUrl() });
    const unknown = startClient(server, { port: suite.app.port, route: 'kart', name: 'ann' });
    await expect(unknown).rejects.toMatchObject({ code: 'TUNNEL_REGISTRATION_REFUSED', message: expect.stringContaining('no route "kart" (its routes: cart)') });
    const ann = await developer(server, 'cart', 'ann');
    const other = startClient(server, { port: suite.app.port, route: 'cart', name: 'ann' });
    await expect(other).rejects.toMatchObject({ code: 'TUNNEL_REGISTRATION_REFUSED', message: expect.stringContaining('Choose another name') });
    // Once its developer stopped, the name is free for another.
    await ann.close();
    const next = await developer(server, 'cart', 'ann');
    expect(next.info.route?.selector).toBe('ann');
  });

  test('the fallback streams both ways, keeps connections alive and forwards by the tunnel path\'s policy', async () => {
    const { url, ports } = await routeServer({ cart: realUrl() });
    const connections = new Set<unknown>();
    const onConnection = (s: unknown) => connections.add(s);
    real.server.on('connection', onConnection);
    suite.defer(async () => void real.server.off('connection', onConnection));

    const body = patternBytes(0, 5 * 1024 * 1024);
    const upload = await fetchBuffer(url('cart', '/upload'), { dispatcher: suite.dispatcher, method: 'POST', body });
    expect([upload.status, upload.json<EchoBody>().sha256, upload.json<EchoBody>().bodyBytes]).toEqual([200, sha256(body), body.length]);
    const download = await fetchBuffer(url('cart', '/bytes?n=3000000'), { dispatcher: suite.dispatcher });
    expect(download.body.length).toBe(3_000_000);
    expect(sha256(download.body)).toBe(sha256(patternBytes(0, 3_000_000)));

    // Raw bytes: an HTTP client library would not send a Connection header naming another one.
    const raw = await rawExchange(ports.cart!, 'GET /headers HTTP/1.1\r\nHost: shop.test\r\nConnection: x-secret, close\r\nX-Secret: hop\r\nTE: trailers\r\nX-Forwarded-For: 10.0.0.1\r\nX-Keep: end-to-end\r\n\r\n');
    expect(raw.statuses).toEqual([200]);
    const seen = (JSON.parse(raw.text.slice(raw.text.indexOf('\r\n\r\n') + 4)) as EchoBody).headers;
    const requestId = /x-request-id: (\S+)/i.exec(raw.text)?.[1];
    expect(seen['x-secret']).toBeUndefined();
    expect(seen.te).toBeUndefined();
    expect(seen['x-keep']).toBe('end-to-end');
    expect(seen['x-forwarded-for']).toBe('10.0.0.1, 127.0.0.1');
    expect(seen['x-forwarded-proto']).toBe('http');
    expect(seen['x-forwarded-host']).toBe('shop.test');
    expect(seen.host).toBe('shop.test');
    expect(seen['x-request-id']).toBe(requestId);
    // Host is the request's on every hop, whatever Connection names.
    const named = await rawExchange(ports.cart!, 'GET /headers HTTP/1.1\r\nHost: shop.test\r\nConnection: close, host\r\n\r\n');
    expect((JSON.parse(named.text.slice(named.text.indexOf('\r\n\r\n') + 4)) as EchoBody).headers.host).toBe('shop.test');

    // HEAD keeps the representation's length and sends no body; a 304 has none either.
    const head = await fetchBuffer(url('cart', '/head'), { dispatcher: suite.dispatcher, method: 'HEAD' });
    expect([head.status, Number(head.headers['content-length']) > 0, head.body.length]).toEqual([200, true, 0]);
    const notModified = await fetchBuffer(url('cart', '/etag?status=304'), { dispatcher: suite.dispatcher, headers: { 'if-none-match': '"v1"' } });
    expect([notModified.status, notModified.headers.etag, notModified.body.length]).toEqual([304, '"v1"', 0]);

    const before = connections.size;
    for (let i = 0; i < 20; i++) await fetchBuffer(url('cart', `/again?i=${i}`), { dispatcher: suite.dispatcher });
    expect(connections.size - before).toBeLessThanOrEqual(1);

    // An event stream arrives as it is written, not when it ends.
    const streamDone = fetchBuffer(url('cart', '/events?tag=route'), { dispatcher: suite.dispatcher });
    const stream = await real.eventStream('route');
    stream.write('data: one\n\n');
    stream.end('data: two\n\n');
    expect((await streamDone).text).toBe('data: one\n\ndata: two\n\n');
  });

  test('a browser that leaves in the middle of an answer cancels the request at the real app', async () => {
    const { ports, logger } = await routeServer({ cart: realUrl() });
    const browserReq = request({ host: '127.0.0.1', port: ports.cart, path: '/events?tag=leave', agent: false });
    browserReq.on('error', () => {});
    browserReq.end();
    const [[answer]] = (await Promise.all([once(browserReq, 'response'), real.eventStream('leave').then((s) => s.write('data: one\n\n'))])) as [[IncomingMessage], unknown];
    await once(answer, 'data');
    browserReq.destroy();
    await real.abortedRequest('/events?tag=leave');
    await waitFor(() => logger.lines.some((l) => l.msg === 'request' && l.path === '/events'), 5_000, 'the request logged');
    expect(logger.lines.find((l) => l.msg === 'request' && l.path === '/events')).toMatchObject({ servedBy: 'upstream', status: 200, code: 'browser_gone', incomplete: true });
  });

  test('WebSockets both ways: to the real app when nobody is selected, to the tunnel when one is', async () => {
    const wsApp = (who: string) => {
      const http = createServer((_req, res) => res.end(who));
      const wss = new WebSocketServer({ server: http });
      wss.on('connection', (socket, req) => socket.on('message', (m) => socket.send(`${who}:${req.url}:${m.toString()}`)));
      return { http, wss };
    };
    const realWs = wsApp('real');
    const laptopWs = wsApp('laptop');
    const realPort = await listen(realWs.http);
    const laptopPort = await listen(laptopWs.http);
    suite.defer(async () => {
      for (const { http, wss } of [realWs, laptopWs]) {
        for (const c of wss.clients) c.terminate();
        wss.close();
        await closeServer(http);
      }
    });
    const { server, url } = await routeServer({ cart: `http://127.0.0.1:${realPort}` });
    await startClient(server, { port: laptopPort, route: 'cart', name: 'ann' }).then((c) => suite.defer(() => c.close()));

    const talk = async (headers: Record<string, string>) => {
      const ws = new WebSocket(url('cart', '/hmr').replace('http', 'ws'), { headers });
      const upgraded = new Promise<Record<string, string | string[] | undefined>>((resolve, reject) => {
        ws.once('upgrade', (res) => resolve(res.headers));
        ws.once('error', reject);
      });
      const [opened] = await Promise.all([upgraded, once(ws, 'open')]);
      ws.send('ping');
      const [reply] = await once(ws, 'message');
      ws.close();
      await once(ws, 'close');
      return { by: opened['x-devtunnel-served-by'], reply: String(reply) };
    };
    expect(await talk({})).toEqual({ by: 'upstream', reply: 'real:/hmr:ping' });
    expect(await talk({ cookie: 'devtunnel=ann' })).toEqual({ by: 'tunnel ann', reply: 'laptop:/hmr:ping' });
    expect(await talk({ cookie: 'devtunnel=nobody' })).toEqual({ by: 'upstream', reply: 'real:/hmr:ping' });

    // A server that stops ends the real app's WebSockets it carries too, not only its tunnels'.
    const lingering = new WebSocket(url('cart', '/hmr').replace('http', 'ws'));
    await once(lingering, 'open');
    const closed = once(lingering, 'close');
    await server.close();
    await closed;
  });

  test('a real app that is down or silent: a coded 502 or 504 naming the route, never a hang', async () => {
    const deadPort = await refusedPort();
    // The deadline (3 s) ends the wait, not the browser connection's idle limit.
    const { url, server, ports } = await routeServer({ cart: `http://127.0.0.1:${deadPort}`, slow: realUrl() }, { bodyIdleTimeoutMs: 10_000 });
    const down = await fetchBuffer(url('cart', '/page'), { dispatcher: suite.dispatcher, headers: { accept: 'application/json' } });
    expect([down.status, down.headers['x-devtunnel-error'], served(down)]).toEqual([502, 'upstream_unreachable', 'error']);
    expect(down.json<{ error: { message: string } }>().error.message).toContain('route "cart"');
    const ws = await rawExchange(ports.cart!, 'GET /hmr HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    expect(ws.statuses).toEqual([502]);
    expect(ws.text).toContain('upstream_unreachable');

    // The real app accepts but never answers: 504 after the server's deadline (3 s here).
    const silent = await fetchBuffer(url('slow', '/hang'), { dispatcher: suite.dispatcher });
    expect([silent.status, silent.headers['x-devtunnel-error']]).toEqual([504, 'upstream_timeout']);

    const listing = (await fetchBuffer(`${server.url}/api/v1/tunnels`, { dispatcher: suite.dispatcher, headers: { authorization: `Bearer ${TOKEN}` } })).json<{ routes: Array<{ name: string; health: { state: string; error?: string } }> }>();
    expect(listing.routes.find((r) => r.name === 'cart')!.health).toMatchObject({ state: 'down', error: expect.stringContaining('ECONNREFUSED') });
  });

  describe('bad input on the fallback path gets the tunnel path\'s protections', () => {
    let bad: BadApp;
    beforeAll(async () => {
      bad = await startBadApp({
        '/status-600': sendThenClose('HTTP/1.1 600 Nope\r\nContent-Length: 0\r\n\r\n'),
        '/short': sendThenClose('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this'),
        '/long': sendThenClose('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfour and more'),
        '/two-lengths': sendThenClose('HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nfour!'),
        '/hop': sendThenClose('HTTP/1.1 200 OK\r\nConnection: close, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=1\r\nContent-Length: 2\r\n\r\nok'),
      });
    });
    afterAll(async () => {
      await bad.close();
    });

    test('requests: duplicate Host, obfuscated framing, absolute-form and CONNECT targets', async () => {
      const { ports } = await routeServer({ cart: `http://127.0.0.1:${bad.port}` });
      const port = ports.cart!;
      const dupHost = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n');
      expect(dupHost.statuses).toEqual([400]);
      const teCl = await rawExchange(port, 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
      expect(teCl.statuses).toEqual([400]);
      const obfuscated = await rawExchange(port, 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n');
      expect(obfuscated.statuses).toEqual([400]);
      const connect = await rawExchange(port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
      expect(connect.statuses).toEqual([405]);
      const absolute = await rawExchange(port, 'GET http://elsewhere.example/abs?q=1 HTTP/1.1\r\nHost: elsewhere.example\r\nConnection: close\r\n\r\n');
      expect(absolute.statuses).toEqual([200]);
      // Only the configured upstream is ever dialled, with the target in origin-form.
      expect(bad.hits).toContain('/abs?q=1');
      expect(bad.hits.some((h) => h.includes('elsewhere'))).toBe(false);
    });

    test('answers: a status out of range, bodies shorter or longer than declared, two lengths, hop-by-hop headers', async () => {
      const { url, ports, server } = await routeServer({ cart: `http://127.0.0.1:${bad.port}` });
      const status = await fetchBuffer(url('cart', '/status-600'), { dispatcher: suite.dispatcher });
      expect([status.status, status.headers['x-devtunnel-error']]).toEqual([502, 'bad_response']);
      // The same answer to an upgrade: a coded 502 too, never `600` passed on.
      const upgrade = await rawExchange(ports.cart!, 'GET /status-600 HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
      expect(upgrade.statuses).toEqual([502]);
      expect(upgrade.text).toContain('bad_response');
      expect(upgrade.text).not.toMatch(/^HTTP\/1\.1 600/m);
      // `OPTIONS *` is about a server, not the app's: a 400 here, and the app is not marked down.
      const asterisk = await rawExchange(ports.cart!, 'OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
      expect(asterisk.statuses).toEqual([400]);
      expect(bad.hits).not.toContain('*');
      const listing = (await fetchBuffer(`${server.url}/api/v1/tunnels`, { dispatcher: suite.dispatcher, headers: { authorization: `Bearer ${TOKEN}` } })).json<{ routes: Array<{ name: string; health: { state: string } }> }>();
      expect(listing.routes.find((r) => r.name === 'cart')!.health.state).toBe('up');
      const two = await fetchBuffer(url('cart', '/two-lengths'), { dispatcher: suite.dispatcher });
      expect([two.status, two.headers['x-devtunnel-error']]).toEqual([502, 'bad_response']);
      // Shorter than declared: the browser's connection is cut, never left waiting or desynced.
      await expect(fetchBuffer(url('cart', '/short'), { dispatcher: suite.dispatcher })).rejects.toThrow();
      // Longer: exactly the declared bytes, and nothing after them on the connection.
      const long = await rawExchange(ports.cart!, 'GET /long HTTP/1.1\r\nHost: a\r\n\r\nGET /long HTTP/1.1\r\nHost: a\r\n\r\n', 1_000);
      expect(long.statuses).toEqual([200, 200]);
      expect(long.text.match(/four(?! and)/g)).toHaveLength(2);
      expect(long.text).not.toContain('and more');
      const hop = await fetchBuffer(url('cart', '/hop'), { dispatcher: suite.dispatcher });
      // The app's Connection and Keep-Alive are its hop's; the browser's hop has this server's own.
      expect([hop.status, hop.text, hop.headers['x-hop'], hop.headers['keep-alive']]).toEqual([200, 'ok', undefined, 'timeout=5']);
    });
  });

  test('the route page: lists live tunnels, a click sets the cookie, a cross-site or tokenless POST does not', async () => {
    const { server, url } = await routeServer({ cart: realUrl() });
    await developer(server, 'cart', 'ann');
    const page = await fetchBuffer(url('cart', '/cart/__devtunnel/?use=ann'), { dispatcher: suite.dispatcher });
    expect(page.status).toBe(200);
    expect(page.text).toContain('Use ann');
    const setCookie = String(page.headers['set-cookie']);
    expect(setCookie).toMatch(/^devtunnel_page=[0-9a-f]{32}; HttpOnly; SameSite=Strict$/);
    const token = /devtunnel_page=([0-9a-f]{32})/.exec(setCookie)![1]!;
    expect(page.text).toContain(`value="${token}"`);
    // The page is the server's own: the real app never saw it.
    expect(real.hits.some((h) => h.url.includes('__devtunnel'))).toBe(false);

    const post = (form: string, headers: Record<string, string>) =>
      fetchBuffer(url('cart', '/cart/__devtunnel/'), { dispatcher: suite.dispatcher, method: 'POST', body: form, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } });
    const crossSite = await post(`token=${token}&use=ann`, { cookie: `devtunnel_page=${token}`, 'sec-fetch-site': 'cross-site' });
    expect([crossSite.status, crossSite.headers['set-cookie']]).toEqual([403, undefined]);
    const noToken = await post('use=ann', {});
    expect([noToken.status, noToken.headers['set-cookie']]).toEqual([403, undefined]);
    const wrongToken = await post(`token=${'0'.repeat(32)}&use=ann`, { cookie: `devtunnel_page=${token}` });
    expect(wrongToken.status).toBe(403);
    const unknown = await post(`token=${token}&use=carol`, { cookie: `devtunnel_page=${token}`, 'sec-fetch-site': 'same-origin' });
    expect(unknown.status).toBe(400);

    const chosen = await post(`token=${token}&use=ann`, { cookie: `devtunnel_page=${token}`, 'sec-fetch-site': 'same-origin' });
    expect(chosen.status).toBe(303);
    expect(chosen.headers.location).toBe('../');
    expect(String(chosen.headers['set-cookie'])).toMatch(/^devtunnel=ann; Path=\/; Max-Age=43200; SameSite=Lax$/);
    const off = await post(`token=${token}&off=1`, { cookie: `devtunnel_page=${token}; devtunnel=ann` });
    expect(String(off.headers['set-cookie'])).toMatch(/^devtunnel=; Path=\/; Max-Age=0/);
    // Without the trailing slash, to the page with it (relative: a gateway may have stripped /cart).
    const bare = await fetchBuffer(url('cart', '/__devtunnel?use=ann'), { dispatcher: suite.dispatcher });
    expect([bare.status, bare.headers.location]).toEqual([302, '__devtunnel/?use=ann']);
    const inUse = await fetchBuffer(url('cart', '/__devtunnel/'), { dispatcher: suite.dispatcher, headers: { cookie: 'devtunnel=ann' } });
    expect(inUse.text).toContain('This browser selects <b>ann</b>');
    expect(inUse.text).toContain('<a href="../">Back to the app</a>');
  });

  test('the CLI: --route, its line and its --json event name the route, the selecting name and the link', async () => {
    const { server } = await routeServer({ cart: realUrl() }, {}, {});
    const json = runBin(CLIENT_BIN, ['--server', server.url, '--port', String(suite.app.port), '--host', '127.0.0.1', '--state-dir', stateDir(), '--route', 'cart', '--name', 'ann', '--json'], { DEVTUNNEL_TOKEN: TOKEN });
    suite.defer(() => json.stop('SIGINT'));
    const event = JSON.parse(await json.waitForLine((l) => l.includes('"registered"'))) as { route: unknown };
    expect(event.route).toEqual({ name: 'cart', selector: 'ann', link: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/__devtunnel\/\?use=ann$/) });

    const text = runBin(CLIENT_BIN, ['--server', server.url, '--port', String(real.port), '--host', '127.0.0.1', '--state-dir', stateDir(), '--name', 'bob'], { DEVTUNNEL_TOKEN: TOKEN, DEVTUNNEL_ROUTE: 'cart' });
    suite.defer(() => text.stop('SIGINT'));
    const line = await text.waitForLine((l) => l.includes('Route:'));
    expect(line).toContain('route cart: requests that select "bob" come here (cookie devtunnel=bob, or header X-Devtunnel: bob); turn it on in a browser: http://127.0.0.1:');
  });
});

describe('route options', () => {
  test('bad routes are refused at start, naming the route and the fix', async () => {
    const start = (routes: string[]) => startServer({ routes, tunnelPorts: '20000-20009' }).then((s) => s.close());
    await expect(start(['cart'])).rejects.toThrow(/NAME:PORT=URL/);
    await expect(start(['cart:8101=ftp://x'])).rejects.toThrow(/http:\/\/ or https:\/\//);
    await expect(start(['cart:8101=http://x/path'])).rejects.toThrow(/origin only/);
    await expect(start(['Cart:8101=http://x'])).rejects.toThrow(/lower-case/);
    await expect(start(['cart:8101=http://x', 'cart:8102=http://y'])).rejects.toThrow(/names "cart" twice/);
    await expect(start(['cart:8101=http://x', 'search:8101=http://y'])).rejects.toThrow(/port 8101 to both/);
    await expect(start(['cart:20005=http://x'])).rejects.toThrow(/inside tunnelPorts/);
    await expect(start(['cart:8101=http://x;offline=maybe'])).rejects.toThrow(/unknown option/);
  });

  test('a route port another process holds: the server does not start, and says which', async () => {
    const holder: Server = createServer();
    const port = await listen(holder);
    try {
      await expect(startServer({ routes: [`cart:${port}=http://127.0.0.1:1`] })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await closeServer(holder);
    }
  });
});
