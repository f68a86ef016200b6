import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { CLIENT_BIN, ROOT, runBin, watchChild } from '../helpers/child';
import { closeServer, listen, refusedPort } from '../helpers/net';
import { startBufferingFront, startConnectProxy } from '../helpers/proxies';
import { fetchBuffer, startServer, TOKEN, useEchoSuite } from '../helpers/tunnel';

/**
 * `devtunnel doctor`, the built CLI as a user runs it, against real servers and what stands in
 * front of them: a healthy server, none, a wrong path, a bad token, proxies that buffer, a
 * TLS-inspecting proxy with its own CA, and a real Vite whose host check refuses the cluster's
 * host. Assertions are on the checks' ids and statuses and the exit code, never on timing.
 */

const fixtures = join(ROOT, 'test', 'fixtures');
/**
 * The built CLI in the test machine's environment without its proxy settings, CA file and
 * DEVTUNNEL_* variables: only what a test gives applies. (Setting them empty would not do: an
 * empty `https_proxy` hides `HTTPS_PROXY`, as the doctor itself warns.)
 */
function runDoctorBin(args: string[], env: Record<string, string>) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(https?|no)_proxy$/i.test(k) && !k.startsWith('DEVTUNNEL_') && k !== 'NODE_EXTRA_CA_CERTS'));
  return watchChild(spawn(process.execPath, [CLIENT_BIN, 'doctor', ...args], { env: { ...clean, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
}

interface Check {
  id: string;
  status: 'pass' | 'warn' | 'fail' | 'skip';
  summary: string;
  fix?: string;
  data?: Record<string, unknown>;
}

async function doctor(args: string[], env: Record<string, string> = {}) {
  const child = runDoctorBin([...args, '--json'], env);
  const code = await child.exited(60_000);
  const lines = child.lines.map((l) => JSON.parse(l) as Check & { event: string; ok?: boolean });
  const checks = Object.fromEntries(lines.filter((l) => l.event === 'check').map((l) => [l.id, l])) as Record<string, Check>;
  const statuses = Object.fromEntries(Object.values(checks).map((c) => [c.id, c.status]));
  return { code, checks, statuses, done: lines.at(-1)!, stderr: child.stderr() };
}

/** The server's checks but speed, whose pass or warn depends on timing (never asserted). */
const SERVER_CHECKS = ['url', 'proxy', 'dns', 'connect', 'api', 'token', 'streams'];

describe('devtunnel doctor', () => {
  const suite = useEchoSuite();

  async function server() {
    const s = await startServer();
    suite.defer(() => s.close());
    return s;
  }

  test('a healthy server and a local app: every check passes, exit 0', async () => {
    const s = await server();
    const run = await doctor(['--server', s.url, '--port', String(suite.app.port), '--host', '127.0.0.1'], { DEVTUNNEL_TOKEN: TOKEN });
    expect(run.statuses).toMatchObject(Object.fromEntries([...SERVER_CHECKS, 'local-app', 'host-check'].map((id) => [id, 'pass'])));
    expect(['pass', 'warn']).toContain(run.statuses.speed);
    expect(run.code).toBe(0);
    expect(run.done).toMatchObject({ event: 'done', ok: true, exitCode: 0 });
    expect(run.checks.api!.data).toMatchObject({ protocol: 1, features: ['batch', 'stream', 'encode', 'push'] });
    expect(run.checks.streams!.data).toMatchObject({ answersStream: true, uploadsStream: true });
    expect(run.checks.speed!.data).toEqual(expect.objectContaining({ rttMs: expect.any(Number), downloadMbits: expect.any(Number), uploadMbits: expect.any(Number) }));
    // Nothing was registered.
    expect(s.tunnels()).toEqual([]);
  });

  test('for a person: a line per check with its status, the fix under a failure, the verdict last', async () => {
    const s = await server();
    const child = runDoctorBin(['--server', s.url], { DEVTUNNEL_TOKEN: 'not-the-token' });
    expect(await child.exited(60_000)).toBe(1);
    const text = child.lines.join('\n');
    expect(text).toMatch(/^pass {2}Control API {3}A devtunnel server answers/m);
    expect(text).toMatch(/^fail {2}Token {9}The server refused the token \(401\)\.\n {20}→ Check DEVTUNNEL_TOKEN/m);
    expect(text).toMatch(/^skip {2}Local app/m);
    expect(child.lines.at(-1)).toBe('A tunnel would not work: 1 check failed. The fixes are under each.');
  });

  test('an unreachable server: TCP fails, the checks that need it are skipped, exit 1', async () => {
    const port = await refusedPort();
    const run = await doctor(['--server', `http://127.0.0.1:${port}`], { DEVTUNNEL_TOKEN: TOKEN });
    expect(run.code).toBe(1);
    expect(run.statuses).toMatchObject({ url: 'pass', proxy: 'pass', dns: 'pass', connect: 'fail', api: 'skip', token: 'skip', streams: 'skip', speed: 'skip', 'local-app': 'skip' });
    expect(run.checks.connect!.summary).toContain('ECONNREFUSED');
  });

  test('a wrong path: the server answers not_found, and the fix names the URL that works', async () => {
    const s = await server();
    const run = await doctor(['--server', `${s.url}/devtunnel`], { DEVTUNNEL_TOKEN: TOKEN });
    expect(run.code).toBe(1);
    expect(run.statuses).toMatchObject({ connect: 'pass', api: 'fail', token: 'skip' });
    expect(run.checks.api!.fix).toContain(`${s.url} (without /devtunnel): use that in --server`);
  });

  test('a bad token: refused without registering anything; the probes that need it are skipped', async () => {
    const s = await server();
    const run = await doctor(['--server', s.url, '--token', 'not-the-token']);
    expect(run.code).toBe(1);
    expect(run.statuses).toMatchObject({ api: 'pass', token: 'fail', streams: 'skip' });
    expect(run.checks.speed!.data).toEqual(expect.objectContaining({ rttMs: expect.any(Number) }));
    expect(run.checks.speed!.data).not.toHaveProperty('downloadMbits');
    expect(run.checks.token!.data).toMatchObject({ status: 401, code: 'unauthorized' });
    expect(s.tunnels()).toEqual([]);
  });

  test('a proxy in front that buffers answers: streams warn (long polls), the tunnel would work', async () => {
    const s = await server();
    const front = await startBufferingFront(s.port, { responses: true });
    suite.defer(() => front.close());
    const run = await doctor(['--server', front.url], { DEVTUNNEL_TOKEN: TOKEN });
    expect(run.statuses).toMatchObject({ api: 'pass', token: 'pass', streams: 'warn' });
    expect(run.checks.streams!.data).toMatchObject({ answersStream: false });
    expect(run.checks.streams!.summary).toContain('long polls');
    expect(run.code).toBe(0);
  });

  test('a proxy in front that buffers uploads: answers stream, uploads do not', async () => {
    const s = await server();
    const front = await startBufferingFront(s.port, { requests: true });
    suite.defer(() => front.close());
    const run = await doctor(['--server', front.url], { DEVTUNNEL_TOKEN: TOKEN });
    expect(run.checks.streams!.status).toBe('warn');
    expect(run.checks.streams!.data).toMatchObject({ answersStream: true, uploadsStream: false });
    expect(run.checks.streams!.fix).toContain('proxy-request-buffering');
    expect(run.code).toBe(0);
  });

  test('with pushes off, /healthz and the probe offer no push', async () => {
    const s = await startServer({ pushLifetimeMs: 0 });
    suite.defer(() => s.close());
    const { dispatcher } = suite;
    expect((await fetchBuffer(`${s.url}/healthz`, { dispatcher })).json<{ features: string[] }>().features).toEqual(['batch', 'stream', 'encode']);
    const probe = await request(`${s.url}/api/v1/doctor`, { headers: { authorization: `Bearer ${TOKEN}` }, dispatcher });
    const first = await new Promise<string>((resolve) => probe.body.once('data', (c: Buffer) => resolve(c.toString().split('\n')[0]!)));
    probe.body.destroy();
    expect((JSON.parse(first) as { features: string[] }).features).toEqual(['batch', 'stream', 'encode']);
  });

  test('the server\'s probe: the token first, bounded sizes; /healthz says the protocol', async () => {
    const s = await server();
    const { dispatcher } = suite;
    expect((await fetchBuffer(`${s.url}/healthz`, { dispatcher })).json()).toEqual({ status: 'ok', protocol: 1, features: ['batch', 'stream', 'encode', 'push'] });
    for (const method of ['GET', 'POST'] as const) {
      const refused = await fetchBuffer(`${s.url}/api/v1/doctor`, { method, body: method === 'POST' ? 'x' : undefined, dispatcher });
      expect([refused.status, refused.headers['x-devtunnel-error']]).toEqual([401, 'unauthorized']);
    }
    const auth = { authorization: `Bearer ${TOKEN}` };
    expect((await fetchBuffer(`${s.url}/api/v1/doctor?bytes=1000`, { headers: auth, dispatcher })).body.length).toBe(1000);
    expect((await fetchBuffer(`${s.url}/api/v1/doctor?bytes=${16 * 1024 * 1024}`, { headers: auth, dispatcher })).status).toBe(400);
    const upload = await fetchBuffer(`${s.url}/api/v1/doctor`, { method: 'POST', body: Buffer.alloc(16 * 1024 * 1024), headers: auth, dispatcher });
    expect([upload.status, upload.headers['x-devtunnel-error']]).toEqual([413, 'payload_too_large']);
    const whole = await fetchBuffer(`${s.url}/api/v1/doctor`, { method: 'POST', body: 'abc', headers: auth, dispatcher });
    expect(whole.text.trim().split('\n').map((l) => JSON.parse(l))).toEqual([{ received: 3, complete: true }, { received: 3, complete: true }]);
  });

  describe('a TLS-inspecting proxy with its own CA (HTTPS_PROXY)', () => {
    async function inspected() {
      const s = await server();
      const proxy = await startConnectProxy({ hosts: { 'devtunnel.test': s.port }, tls: { cert: readFileSync(join(fixtures, 'inspected-cert.pem')), key: readFileSync(join(fixtures, 'inspected-key.pem')) } });
      suite.defer(() => proxy.close());
      return { s, proxy, env: { HTTPS_PROXY: proxy.url, DEVTUNNEL_TOKEN: TOKEN } };
    }

    test('untrusted: TLS fails naming the proxy\'s CA and how to trust it', async () => {
      const { proxy, env } = await inspected();
      const run = await doctor(['--server', 'https://devtunnel.test'], env);
      expect(run.code).toBe(1);
      expect(run.statuses).toMatchObject({ proxy: 'pass', dns: 'pass', connect: 'fail', api: 'skip' });
      expect(run.checks.proxy!.data).toMatchObject({ source: 'HTTPS_PROXY' });
      const connect = run.checks.connect!;
      expect(connect.summary).toContain('issued by CN "Example Corp TLS Inspection CA", O "Example Corp"');
      expect(connect.summary).toContain(`Your proxy ${proxy.url} probably inspects TLS`);
      expect(connect.fix).toContain('NODE_EXTRA_CA_CERTS=');
      expect(proxy.targets).toContain('devtunnel.test:443');
    });

    test('trusted through NODE_EXTRA_CA_CERTS: every check passes through the proxy, the CA is named', async () => {
      const { env } = await inspected();
      const run = await doctor(['--server', 'https://devtunnel.test'], { ...env, NODE_EXTRA_CA_CERTS: join(fixtures, 'inspection-ca.pem') });
      expect(run.statuses).toMatchObject(Object.fromEntries(SERVER_CHECKS.map((id) => [id, 'pass'])));
      expect(run.code).toBe(0);
      expect(run.checks.connect!.summary).toContain('CN "Example Corp TLS Inspection CA", O "Example Corp" is not a public CA');
      // The laptop cannot resolve devtunnel.test; the proxy does.
      expect(run.checks.dns!.summary).toContain('the proxy resolves it');
    });
  });

  describe('a local app whose host check refuses the cluster\'s host', () => {
    /** The server under a name (devtunnel.test) through a plain CONNECT proxy, which resolves it. */
    async function named() {
      const s = await server();
      const proxy = await startConnectProxy({ hosts: { 'devtunnel.test': s.port } });
      suite.defer(() => proxy.close());
      return ['--server', 'http://devtunnel.test', '--proxy', proxy.url, '--host', '127.0.0.1'];
    }

    test('a real Vite: 403 "Blocked request", the fix names server.allowedHosts; --rewrite-host passes', async () => {
      const root = mkdtempSync(join(tmpdir(), 'devtunnel-vite-'));
      cpSync(join(fixtures, 'vite-hmr'), root, { recursive: true });
      const vite = runBin(join(ROOT, 'test/helpers/vite-server.mjs'), [root]);
      suite.defer(() => vite.stop('SIGTERM'));
      const { port } = JSON.parse(await vite.waitForLine((l) => l.startsWith('{'), 20_000)) as { port: number };
      const args = [...(await named()), '--port', String(port)];

      const refused = await doctor(args, { DEVTUNNEL_TOKEN: TOKEN });
      expect(refused.statuses).toMatchObject({ api: 'pass', token: 'pass', 'local-app': 'pass', 'host-check': 'fail' });
      expect(refused.checks['host-check']!.data).toMatchObject({ devServer: 'vite', host: 'devtunnel.test', status: 403 });
      expect(refused.checks['host-check']!.fix).toContain('server.allowedHosts');
      expect(refused.code).toBe(1);

      const rewritten = await doctor([...args, '--rewrite-host'], { DEVTUNNEL_TOKEN: TOKEN });
      expect(rewritten.statuses['host-check']).toBe('pass');
      expect(rewritten.code).toBe(0);
    }, 60_000);

    test('webpack-dev-server\'s "Invalid Host header" (a stand-in that answers as it does)', async () => {
      const app = createHttpServer((req, res) => {
        if (/^(localhost|127\.0\.0\.1)(:\d+)?$/.test(req.headers.host ?? '')) return void res.end('<!doctype html>');
        res.statusCode = 403;
        res.end('Invalid Host header');
      });
      const port = await listen(app);
      suite.defer(() => closeServer(app));
      const run = await doctor([...(await named()), '--port', String(port)], { DEVTUNNEL_TOKEN: TOKEN });
      expect(run.statuses).toMatchObject({ 'local-app': 'pass', 'host-check': 'fail' });
      expect(run.checks['host-check']!.data).toMatchObject({ devServer: 'webpack-dev-server' });
      expect(run.checks['host-check']!.fix).toContain('--allowed-hosts');
      expect(run.code).toBe(1);
    });
  });
});
