import { request } from 'undici';
import type { EchoBody } from '../helpers/echo-app';
import { fetchBuffer, freeRange, startClient, startServer, TOKEN, useEchoSuite } from '../helpers/tunnel';

/**
 * Replay from the cluster (docs/replay.md): a tester's request reaches a route's real app; a
 * developer signed in on the dashboard finds it by its trace id and sends it to their own tunnel,
 * without the tester's cookies or credentials, and sees the answer.
 */
describe('replay from the cluster', () => {
  const suite = useEchoSuite();
  const { dispatcher } = suite;

  async function signIn(base: string): Promise<{ cookie: string; csrf: string }> {
    const res = await request(`${base}/dashboard/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${encodeURIComponent(TOKEN)}` });
    await res.body.dump();
    const set = res.headers['set-cookie'];
    const cookie = (Array.isArray(set) ? set[0] : set)!.split(';')[0]!;
    const page = await fetchBuffer(`${base}/dashboard`, { headers: { cookie }, dispatcher });
    return { cookie, csrf: /name="devtunnel-csrf" content="([0-9a-f]+)"/.exec(page.text)![1]! };
  }

  async function setUp(capture?: number) {
    const { from } = await freeRange(1);
    const server = await startServer({ routes: [`cart:${from}=http://127.0.0.1:${suite.app.port}`], ...(capture === undefined ? {} : { capture }) });
    suite.defer(() => server.close());
    const bob = await startClient(server, { port: suite.app.port, name: 'bob', route: 'cart' });
    suite.defer(() => bob.close());
    return { server, bob, routeUrl: `http://127.0.0.1:${from}` };
  }

  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';

  test('a tester\'s request to the real app, found by its trace id and replayed to a developer\'s tunnel, without secrets', async () => {
    const { server, bob, routeUrl } = await setUp();
    const tester = await fetchBuffer(`${routeUrl}/api/items?id=7&token=s3cret`, {
      headers: { cookie: 'session=abc; devtunnel=nobody', authorization: 'Bearer tester-credential', traceparent: `00-${traceId}-00f067aa0ba902b7-01`, 'x-custom': 'kept', 'x-api-key': 'k-123' },
      dispatcher,
    });
    expect([tester.status, tester.headers['x-devtunnel-served-by']]).toEqual([200, 'upstream']);
    const requestId = tester.json<EchoBody>().headers['x-request-id'] as string;

    const { cookie, csrf } = await signIn(server.url);
    const found = (await fetchBuffer(`${server.url}/dashboard/api/captures?find=${traceId}`, { headers: { cookie }, dispatcher })).json<{ captures: Array<Record<string, unknown>> }>();
    expect(found.captures).toHaveLength(1);
    const captured = found.captures[0]!;
    expect(captured).toMatchObject({ id: requestId, traceId, method: 'GET', url: '/api/items?id=7', route: 'cart', servedBy: 'upstream', status: 200 });
    const names = (captured.headers as Array<[string, string]>).map(([n]) => n.toLowerCase());
    expect(names).toContain('x-custom');
    expect(names.filter((n) => ['cookie', 'authorization', 'x-api-key'].includes(n))).toEqual([]);

    const replayUrl = `${server.url}/dashboard/api/captures/${requestId}/replay`;
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    // The page's CSRF token is required (a cross-site form cannot replay).
    const forged = await fetchBuffer(replayUrl, { method: 'POST', headers: { cookie, ...form }, body: `port=${bob.info.port}`, dispatcher });
    expect([forged.status, forged.headers['x-devtunnel-error']]).toEqual([403, 'forbidden']);

    const replayed = await fetchBuffer(replayUrl, { method: 'POST', headers: { cookie, 'x-csrf-token': csrf, ...form }, body: `port=${bob.info.port}`, dispatcher });
    expect(replayed.status).toBe(200);
    const { answer, tunnel } = replayed.json<{ tunnel: string; answer: { status: number; body: string; headers: Array<[string, string]> } }>();
    expect([tunnel, answer.status]).toEqual(['bob', 200]);
    // What bob's laptop received: the tester's request, marked, with nothing that could act as them.
    const atLaptop = JSON.parse(answer.body) as EchoBody;
    expect([atLaptop.method, atLaptop.url, atLaptop.headers['x-custom'], atLaptop.headers['x-devtunnel-replay-of']]).toEqual(['GET', '/api/items?id=7', 'kept', requestId]);
    expect([atLaptop.headers.cookie, atLaptop.headers.authorization, atLaptop.headers['x-api-key']]).toEqual([undefined, undefined, undefined]);
    // The replay itself is kept too, naming what it replays.
    const after = (await fetchBuffer(`${server.url}/dashboard/api/captures`, { headers: { cookie }, dispatcher })).json<{ captures: Array<{ replayOf?: string; servedBy: string }> }>();
    expect(after.captures[0]).toMatchObject({ replayOf: requestId, servedBy: 'tunnel bob' });
  });

  test('what cannot be replayed: an unknown id, a request with a body, a port with no tunnel; a viewer without sign-in', async () => {
    const { server, bob, routeUrl } = await setUp();
    const posted = await fetchBuffer(`${routeUrl}/orders`, { method: 'POST', body: '{"secret":"in the body"}', headers: { 'content-type': 'application/json' }, dispatcher });
    const postedId = posted.json<EchoBody>().headers['x-request-id'] as string;
    const { cookie, csrf } = await signIn(server.url);
    const post = (id: string, port: number) =>
      fetchBuffer(`${server.url}/dashboard/api/captures/${id}/replay`, { method: 'POST', headers: { cookie, 'x-csrf-token': csrf, 'content-type': 'application/x-www-form-urlencoded' }, body: `port=${port}`, dispatcher });
    const unknown = await post('no-such-request', bob.info.port);
    expect([unknown.status, unknown.headers['x-devtunnel-error']]).toEqual([404, 'unknown_request']);
    const withBody = await post(postedId, bob.info.port);
    expect([withBody.status, withBody.headers['x-devtunnel-error']]).toEqual([400, 'invalid_request']);
    const captured = (await fetchBuffer(`${server.url}/dashboard/api/captures?find=/orders`, { headers: { cookie }, dispatcher })).json<{ captures: Array<{ bodyLeftOut?: boolean }> }>();
    expect(captured.captures[0]!.bodyLeftOut).toBe(true);
    await fetchBuffer(`${routeUrl}/plain`, { dispatcher });
    const plainId = (await fetchBuffer(`${server.url}/dashboard/api/captures?find=/plain`, { headers: { cookie }, dispatcher })).json<{ captures: Array<{ id: string }> }>().captures[0]!.id;
    const nowhere = await post(plainId, 1);
    expect([nowhere.status, nowhere.headers['x-devtunnel-error']]).toEqual([404, 'unknown_tunnel']);
    expect((await fetchBuffer(`${server.url}/dashboard/api/captures`, { dispatcher })).status).toBe(401);
  });

  test('memory stays bounded: the server keeps the last --capture requests, and none with --capture 0', async () => {
    const { server, routeUrl } = await setUp(3);
    for (let i = 0; i < 5; i++) await fetchBuffer(`${routeUrl}/n${i}`, { dispatcher });
    const { cookie } = await signIn(server.url);
    const kept = (await fetchBuffer(`${server.url}/dashboard/api/captures`, { headers: { cookie }, dispatcher })).json<{ kept: number; captures: Array<{ url: string }> }>();
    expect([kept.kept, kept.captures.map((c) => c.url)]).toEqual([3, ['/n4', '/n3', '/n2']]);
    const off = await setUp(0);
    await fetchBuffer(`${off.routeUrl}/n`, { dispatcher });
    const none = await signIn(off.server.url);
    expect((await fetchBuffer(`${off.server.url}/dashboard/api/captures`, { headers: { cookie: none.cookie }, dispatcher })).json<{ kept: number }>().kept).toBe(0);
  });
});
