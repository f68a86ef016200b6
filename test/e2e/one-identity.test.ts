import { mkdirSync, mkdtempSync, cpSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { request } from 'undici';
import { createTunnelClient } from '@devtunnel/core';
import { paths, type RegisterRequest } from '@devtunnel/core/protocol';
import { CLIENT_BIN, ROOT, runBin, type Child } from '../helpers/child';
import { startEchoApp, type EchoApp } from '../helpers/echo-app';
import { browser, fetchBuffer, memoryLogger, pluginEnv, startServer, stateDir, TOKEN, waitFor } from '../helpers/tunnel';

/**
 * One identity, two live clients (issue: two dev servers of one project fought over one tunnel,
 * hundreds of registrations a second). The newer process takes the tunnel over once; the one it
 * replaced stops with a final error that says why and what to do, and is refused if it tries
 * again; registrations are paced by the client and limited by the server whatever happens.
 */
describe('one identity, two live clients', () => {
  let app: EchoApp;
  const dispatcher = browser();
  const children: Child[] = [];
  const closers: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    app = await startEchoApp();
  });
  afterEach(async () => {
    await Promise.all(children.splice(0).map((c) => c.stop('SIGKILL')));
    while (closers.length) await closers.pop()!();
  });
  afterAll(async () => {
    await app.close();
    await dispatcher.close();
  });

  async function server(options: Parameters<typeof startServer>[0] = {}) {
    const s = await startServer(options);
    closers.push(() => s.close());
    return s;
  }

  const registrations = (logger: ReturnType<typeof memoryLogger>) => logger.lines.filter((l) => l.msg === 'tunnel.registered').length;

  test('two CLIs with one state folder and local port: the newer serves, the older stops with exit 1 and says why; the server stays calm', async () => {
    const logger = memoryLogger();
    const s = await server({ logger });
    const dir = stateDir();
    const args = ['--server', s.url, '--port', String(app.port), '--host', '127.0.0.1', '--state-dir', dir];
    const first = runBin(CLIENT_BIN, args, { DEVTUNNEL_TOKEN: TOKEN });
    children.push(first);
    await first.waitForLine((l) => l.includes('Tunnel:'));
    const second = runBin(CLIENT_BIN, [...args, '--json'], { DEVTUNNEL_TOKEN: TOKEN });
    children.push(second);
    const { port } = JSON.parse(await second.waitForLine((l) => l.includes('"registered"'))) as { port: number };

    expect(await first.exited()).toBe(1);
    expect(first.stderr()).toContain('Another devtunnel client with the same identity took this tunnel over');
    expect(first.stderr()).toContain('--identity');
    // Browsers keep reaching the one that serves, and the server saw two registrations, not a fight.
    for (let i = 0; i < 10; i++) expect((await fetchBuffer(`http://127.0.0.1:${port}/after-${i}`, { dispatcher })).status).toBe(200);
    expect(registrations(logger)).toBe(2);
    expect(second.process.exitCode).toBeNull();
    expect(second.lines.filter((l) => l.includes('"registered"'))).toHaveLength(1);
  });

  test('the replaced process is refused if it registers again, its polls are told at once, and the newer one renews freely', async () => {
    const s = await server();
    const clientId = 'ann@laptop:5173#0123456789abcdef';
    const register = (instance: string) =>
      request(`${s.url}${paths.tunnels}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ clientId, instance, localPort: instance === 'b'.repeat(32) ? 5174 : 5173 } satisfies RegisterRequest),
      }).then(async (res) => ({ status: res.statusCode, code: res.headers['x-devtunnel-error'], body: (await res.body.json()) as { id: string; secret: string; port: number; error?: { message: string } } }));
    const a = await register('a'.repeat(32));
    expect(a.status).toBe(201);
    const poll = request(`${s.url}${paths.poll(a.body.id)}`, { headers: { authorization: `Bearer ${a.body.secret}` } });
    const b = await register('b'.repeat(32));
    expect(b.status).toBe(201);
    expect(b.body.port).toBe(a.body.port);
    const told = await poll;
    expect([told.statusCode, told.headers['x-devtunnel-error']]).toEqual([409, 'tunnel_replaced']);
    expect(((await told.body.json()) as { error: { message: string } }).error.message).toContain('local port 5174');
    const again = await register('a'.repeat(32));
    expect([again.status, again.code]).toEqual([409, 'tunnel_replaced']);
    expect(s.tunnels().find((t) => t.port === a.body.port)).toMatchObject({ id: b.body.id, state: 'connected' });
    const renewed = await register('b'.repeat(32));
    expect([renewed.status, renewed.body.port]).toEqual([201, a.body.port]);
  });

  test('a client facing a server that answers 404 unknown_tunnel to everything registers at a paced rate', async () => {
    // Registration succeeds, then every call on the tunnel is 404: what a server that keeps
    // letting another registration win looks like from one client.
    let registered = 0;
    const fake: Server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.method === 'POST' && req.url === paths.tunnels) {
          registered++;
          const body = JSON.stringify({ protocol: 1, id: 'f'.repeat(32), secret: 's'.repeat(64), name: 'paced', port: 9999, url: 'http://127.0.0.1:9999', timing: { pollTimeoutMs: 1_000, leaseMs: 1_500, localTimeoutMs: 2_500, bodyIdleTimeoutMs: 3_000 }, maxPolls: 8, features: ['batch'] });
          res.writeHead(201, { 'content-type': 'application/json' }).end(body);
          return;
        }
        res.writeHead(404, { 'content-type': 'application/json', 'x-devtunnel-error': 'unknown_tunnel' }).end(JSON.stringify({ error: { code: 'unknown_tunnel', message: 'No such tunnel.' } }));
      });
    });
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => fake.close(resolve)));
    fake.unref();
    const client = createTunnelClient({ server: `http://127.0.0.1:${(fake.address() as AddressInfo).port}`, token: TOKEN, port: app.port, host: '127.0.0.1', stateDir: false, proxy: false, transport: 'poll' });
    closers.push(() => client.close());
    await client.start();
    const start = registered;
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    // Each lost registration makes the next wait at least 0.25, 0.5, 1, 2 s…: at most four more
    // in five seconds (before pacing, several hundred), and never none: it does keep trying.
    expect(registered - start).toBeGreaterThanOrEqual(1);
    expect(registered - start).toBeLessThanOrEqual(4);
  });

  test('the server limits registrations per identity, and says so in its log once', async () => {
    const logger = memoryLogger();
    const s = await server({ logger });
    const body = JSON.stringify({ clientId: 'old@laptop:1#0123456789abcdef' });
    const statuses: Array<[number, unknown]> = [];
    for (let i = 0; i < 15; i++) {
      const res = await request(`${s.url}${paths.tunnels}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body });
      await res.body.dump();
      statuses.push([res.statusCode, res.headers['retry-after']]);
    }
    expect(statuses.slice(0, 12).every(([status]) => status === 201)).toBe(true);
    for (const [status, retryAfter] of statuses.slice(12)) {
      expect(status).toBe(429);
      expect(Number(retryAfter)).toBeGreaterThan(0);
    }
    expect(logger.lines.filter((l) => l.msg === 'registration.limited')).toHaveLength(1);
    // Another identity is not held back by it.
    const other = await request(`${s.url}${paths.tunnels}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ clientId: 'new@laptop:1#0123456789abcdef' }) });
    await other.body.dump();
    expect(other.statusCode).toBe(201);
  });

  test('two Vite dev servers of one project: the newer serves, the older prints a stopped line and keeps working locally', async () => {
    const logger = memoryLogger();
    const s = await server({ logger });
    const scratch = join(ROOT, '.artifacts', 'tmp');
    mkdirSync(scratch, { recursive: true });
    const dir = mkdtempSync(join(scratch, 'one-identity-'));
    cpSync(join(ROOT, 'test/fixtures/vite-hmr'), dir, { recursive: true });
    writeFileSync(join(dir, 'vite.config.mjs'), `import devTunnel from '@devtunnel/vite-plugin';\nexport default { plugins: [devTunnel()] };\n`);
    // One state folder, as on one laptop: the project's root makes them one identity.
    const env = pluginEnv(s.url);
    const vite = () => {
      const child = runBin(join(ROOT, 'node_modules/vite/bin/vite.js'), [dir, '--clearScreen', 'false', '--port', '0', '--host', '127.0.0.1'], env);
      children.push(child);
      return child;
    };
    const first = vite();
    await first.waitForLine((l) => l.includes('devtunnel') && l.includes('connected:'), 30_000);
    const second = vite();
    const line = await second.waitForLine((l) => l.includes('devtunnel') && l.includes('connected:'), 30_000);
    const port = Number(/:(\d+) →/.exec(line)![1]);
    const stopped = await first.waitForLine((l) => l.includes('stopped:'), 10_000);
    expect(stopped).toContain('Another devtunnel client with the same identity took this tunnel over');
    // The page through the tunnel comes from the newer one; the older still serves locally.
    expect((await fetchBuffer(`http://127.0.0.1:${port}/`, { dispatcher })).status).toBe(200);
    const local = /Local:\s+(http:\/\/\S+)/.exec(first.lines.join('\n'))![1]!;
    expect((await fetchBuffer(local, { dispatcher })).status).toBe(200);
    // Settled: nothing more is registered, and neither Vite reports another connection.
    await waitFor(() => s.tunnels().some((t) => t.port === port && t.state === 'connected'), 5_000, 'the newer tunnel');
    expect(registrations(logger)).toBe(2);
    expect(first.output().filter((l) => l.includes('back:') || l.includes('connected:'))).toHaveLength(1);
    expect(second.output().filter((l) => l.includes('back:') || l.includes('connected:'))).toHaveLength(1);
  });
});
