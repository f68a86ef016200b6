import { request } from 'undici';
import { useEchoSuite, fetchBuffer, startClient, startServer, TOKEN } from '../helpers/tunnel';

const ADMIN = 'admin-token-0123456789abcdef';

/** The dashboard's access rules, over real HTTP (the page itself is tested in Chromium). */
describe('dashboard access', () => {
  const suite = useEchoSuite();

  async function signIn(base: string, token: string): Promise<{ status: number; cookie?: string; csrf?: string }> {
    const res = await request(`${base}/dashboard/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${encodeURIComponent(token)}` });
    await res.body.dump();
    const set = res.headers['set-cookie'];
    const cookie = (Array.isArray(set) ? set[0] : set)?.split(';')[0];
    if (!cookie) return { status: res.statusCode };
    const page = await fetchBuffer(`${base}/dashboard`, { headers: { cookie } });
    return { status: res.statusCode, cookie, csrf: /name="devtunnel-csrf" content="([0-9a-f]+)"/.exec(page.text)?.[1] };
  }

  test('sign-in, read-only viewers, admin close with CSRF and same origin only', async () => {
    const server = await startServer({ adminToken: ADMIN });
    suite.defer(() => server.close());
    const client = await startClient(server, { port: suite.app.port, name: 'to-close' });
    suite.defer(() => client.close());
    const base = server.url;
    const closeUrl = `${base}/dashboard/api/tunnels/${client.info.id}/close`;

    const login = await fetchBuffer(`${base}/dashboard`);
    expect(login.status).toBe(200);
    expect(login.text).toContain('name="token"');
    expect(login.headers['content-security-policy']).toContain("script-src 'self'");
    expect((await fetchBuffer(`${base}/dashboard/api/tunnels`)).status).toBe(401);
    expect((await fetchBuffer(`${base}/dashboard/events`)).status).toBe(401);
    expect((await signIn(base, 'wrong-token-0123456789')).status).toBe(401);

    const viewer = await signIn(base, TOKEN);
    expect(viewer.status).toBe(303);
    const list = await fetchBuffer(`${base}/dashboard/api/tunnels`, { headers: { cookie: viewer.cookie! } });
    expect(list.json<{ tunnels: Array<{ name: string }> }>().tunnels.map((t) => t.name)).toContain('to-close');
    const viewerClose = await fetchBuffer(closeUrl, { method: 'POST', headers: { cookie: viewer.cookie!, 'x-csrf-token': viewer.csrf! } });
    expect([viewerClose.status, viewerClose.headers['x-devtunnel-error']]).toEqual([403, 'forbidden']);

    const admin = await signIn(base, ADMIN);
    const noCsrf = await fetchBuffer(closeUrl, { method: 'POST', headers: { cookie: admin.cookie! } });
    expect(noCsrf.status).toBe(403);
    const foreign = await fetchBuffer(closeUrl, { method: 'POST', headers: { cookie: admin.cookie!, 'x-csrf-token': admin.csrf!, origin: 'https://evil.example' } });
    expect(foreign.status).toBe(403);
    expect((await fetchBuffer(closeUrl, { headers: { cookie: admin.cookie! } })).status).toBe(404); // never a GET link
    expect(server.tunnels().find((t) => t.name === 'to-close')?.state).toBe('connected');
    const ok = await fetchBuffer(closeUrl, { method: 'POST', headers: { cookie: admin.cookie!, 'x-csrf-token': admin.csrf!, origin: base } });
    expect(ok.status).toBe(204);
    expect(server.tunnels().find((t) => t.name === 'to-close')?.id).toBeUndefined();
  });

  test('a trusted network reads without a token; recent requests carry no query, cookie or body', async () => {
    const server = await startServer({ dashboardOpenCidrs: ['127.0.0.0/8'] });
    suite.defer(() => server.close());
    const client = await startClient(server, { port: suite.app.port, name: 'open-read' });
    suite.defer(() => client.close());
    await fetchBuffer(`http://127.0.0.1:${client.info.port}/private/path?token=very-secret-value`, { method: 'POST', body: 'body-secret', headers: { cookie: 'session=cookie-secret' } });
    const res = await fetchBuffer(`${server.url}/dashboard/api/tunnels`);
    expect(res.status).toBe(200);
    const text = res.text;
    expect(text).toContain('"/private/path"');
    for (const secret of ['very-secret-value', 'body-secret', 'cookie-secret', TOKEN]) expect(text).not.toContain(secret);
    // Read-only: no admin token configured, so nothing can be closed.
    expect((await fetchBuffer(`${server.url}/dashboard/api/tunnels/${client.info.id}/close`, { method: 'POST' })).status).toBe(403);
  });
});
