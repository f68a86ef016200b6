import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer as createNetServer } from 'node:net';
import { CLIENT_BIN, runBin, type Child } from '../helpers/child';
import { startEchoApp, type EchoApp } from '../helpers/echo-app';
import { freeRange, startServer, stateDir, TOKEN } from '../helpers/tunnel';

/**
 * A new user's first minutes with the `devtunnel` CLI (issue: wrong server URLs got the wrong word
 * or none, a retry line at every retry, nothing said of a local app that does not answer, Ctrl+C's
 * exit code depending on how the CLI was started). Real CLIs, real servers.
 */
describe('the first minutes with devtunnel', () => {
  let app: EchoApp;
  const children: Child[] = [];
  const servers: Server[] = [];

  beforeAll(async () => {
    app = await startEchoApp();
  });
  afterEach(async () => {
    await Promise.all(children.splice(0).map((c) => c.stop('SIGKILL')));
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });
  afterAll(() => app.close());

  function client(server: string, extra: string[] = [], env: Record<string, string> = {}): Child {
    const child = runBin(CLIENT_BIN, ['--server', server, '--port', String(app.port), '--host', '127.0.0.1', '--state-dir', stateDir(), ...extra], { DEVTUNNEL_TOKEN: TOKEN, ...env });
    children.push(child);
    return child;
  }

  async function listen(server: Server): Promise<string> {
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  describe('a wrong server URL: a final error that says what is wrong, at once', () => {
    test('a path that is not the API (…/dashboard): the path, not the token', async () => {
      const s = await startServer();
      const c = client(`${s.url}/dashboard`);
      expect(await c.exited()).toBe(1);
      expect(c.stderr()).toContain('Nothing at /dashboard/api/v1/tunnels');
      expect(c.stderr()).toContain('Check --server');
      expect(c.stderr()).not.toContain('token');
      await s.close();
    });

    test('https:// against a server that speaks http', async () => {
      const s = await startServer();
      const c = client(s.url.replace('http:', 'https:'));
      expect(await c.exited()).toBe(1);
      expect(c.stderr()).toContain('does not speak https');
      expect(c.stderr()).toContain(`Use ${s.url}/`);
      await s.close();
    });

    test('http:// against a TLS server: said as such, and retried (a reset may also be a network)', async () => {
      // A TLS listener that drops a plain-HTTP hello, as a TLS-only server does.
      const tls = createNetServer((socket) => socket.destroy());
      await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
      const c = client(`http://127.0.0.1:${(tls.address() as AddressInfo).port}`);
      await c.waitForLine((l) => l.includes('If the server speaks https, use https://'));
      await new Promise((r) => tls.close(r));
    });

    test('the URL of an app that is not a devtunnel server', async () => {
      const other = await listen(createHttpServer((_req, res) => res.writeHead(501).end('Unsupported method')));
      const c = client(`http://${other}`);
      expect(await c.exited()).toBe(1);
      expect(c.stderr()).toContain('answered 501 and is not a devtunnel tunnel server');
    });
  });

  test('an unreachable server: said once, then retried quietly', async () => {
    const { from } = await freeRange(1);
    const c = client(`http://127.0.0.1:${from}`);
    await c.waitForLine((l) => l.includes('Cannot reach the tunnel server'));
    // Several retries happen in three seconds (250 ms backoff base); the line is not repeated.
    await new Promise((r) => setTimeout(r, 3_000));
    expect(c.stderr().split('\n').filter((l) => l.includes('Cannot reach'))).toHaveLength(1);
    expect(await c.stop('SIGTERM')).toBe(0);
  });

  test('a local app that does not answer is said at start, and when it answers', async () => {
    const s = await startServer();
    const { from: port } = await freeRange(1);
    const c = runBin(CLIENT_BIN, ['--server', s.url, '--port', String(port), '--host', '127.0.0.1', '--state-dir', stateDir(), '--json'], { DEVTUNNEL_TOKEN: TOKEN });
    children.push(c);
    const down = JSON.parse(await c.waitForLine((l) => l.includes('"local"'))) as Record<string, unknown>;
    expect(down).toMatchObject({ event: 'local', answering: false, target: `http://127.0.0.1:${port}`, error: 'ECONNREFUSED' });
    const late = createHttpServer((_req, res) => res.end('late'));
    servers.push(late);
    await new Promise<void>((resolve) => late.listen(port, '127.0.0.1', resolve));
    const up = JSON.parse(await c.waitForLine((l) => l.includes('"answering":true'))) as Record<string, unknown>;
    expect(up).toMatchObject({ event: 'local', answering: true });
    await c.stop('SIGTERM');
    await s.close();
  });

  test('a local app that answers from the start: nothing said of it', async () => {
    const s = await startServer();
    const c = client(s.url, ['--json']);
    await c.waitForLine((l) => l.includes('"registered"'));
    expect(await c.stop('SIGTERM')).toBe(0);
    expect(c.lines.some((l) => l.includes('"local"'))).toBe(false);
    await s.close();
  });

  test('exit codes: 130 for Ctrl+C, 0 for SIGTERM, each after deregistering', async () => {
    const s = await startServer();
    const interrupted = client(s.url);
    await interrupted.waitForLine((l) => l.includes('Tunnel:'));
    expect(await interrupted.stop('SIGINT')).toBe(130);
    const terminated = client(s.url);
    await terminated.waitForLine((l) => l.includes('Tunnel:'));
    expect(await terminated.stop('SIGTERM')).toBe(0);
    // Two state folders, two identities: both tunnels deregistered, their ports kept.
    expect(s.tunnels().map((t) => t.state)).toEqual(['closed', 'closed']);
    await s.close();
  });

  test('a bad value names the variable it came from', async () => {
    const c = runBin(CLIENT_BIN, ['--port', '3000'], { DEVTUNNEL_SERVER: 'not a url', DEVTUNNEL_TOKEN: TOKEN });
    children.push(c);
    expect(await c.exited()).toBe(2);
    expect(c.stderr()).toContain('DEVTUNNEL_SERVER (option "server") must be');
  });
});
