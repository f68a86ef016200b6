import { CLIENT_BIN, runBin, SERVER_BIN, type Child } from '../helpers/child';
import { startEchoApp, type EchoApp, type EchoBody } from '../helpers/echo-app';
import { browser, fetchBuffer, portRange, stateDir } from '../helpers/tunnel';

/** Both CLIs as child processes, the built bins, exactly as a user runs them. */
describe('devtunnel-server and devtunnel CLIs', () => {
  let app: EchoApp;
  const dispatcher = browser();
  const children: Child[] = [];

  beforeAll(async () => {
    app = await startEchoApp();
  });
  afterEach(async () => {
    await Promise.all(children.splice(0).map((c) => c.stop('SIGKILL')));
  });
  afterAll(async () => {
    await app.close();
    await dispatcher.close();
  });

  function run(bin: string, args: string[], env: Record<string, string> = {}): Child {
    const child = runBin(bin, args, { DEVTUNNEL_TOKEN: '', ...env });
    children.push(child);
    return child;
  }

  async function startServerCli(extra: string[] = []) {
    const server = run(SERVER_BIN, ['--port', '0', '--host', '127.0.0.1', '--tunnel-ports', portRange(), ...extra]);
    const listening = JSON.parse(await server.waitForLine((l) => l.includes('"server.listening"'))) as { port: number };
    return { server, url: `http://127.0.0.1:${listening.port}` };
  }

  test('a generated token, a tunnel, a request, Ctrl+C on the client and SIGTERM on the server', async () => {
    const { server, url } = await startServerCli();
    // No token configured: one is generated and printed once, on stderr, never in the JSON log.
    const token = /DEVTUNNEL_TOKEN=([0-9a-f]{48})/.exec(server.stderr())?.[1];
    expect(token).toBeDefined();

    const client = run(CLIENT_BIN, ['--server', url, '--port', String(app.port), '--host', '127.0.0.1', '--state-dir', stateDir(), '--name', 'cli-test', '--json'], { DEVTUNNEL_TOKEN: token! });
    const registered = JSON.parse(await client.waitForLine((l) => l.includes('"registered"'))) as { event: string; port: number; url: string; name: string };
    expect(registered).toMatchObject({ event: 'registered', name: 'cli-test', url: `http://127.0.0.1:${registered.port}` });

    const res = await fetchBuffer(`${registered.url}/through/the/cli?q=1`, { dispatcher });
    expect(res.status).toBe(200);
    expect(res.json<EchoBody>().url).toBe('/through/the/cli?q=1');
    const logged = JSON.parse(await client.waitForLine((l) => l.includes('"request"'))) as Record<string, unknown>;
    expect(logged).toMatchObject({ event: 'request', method: 'GET', path: '/through/the/cli', status: 200 });
    const requestLine = JSON.parse(await server.waitForLine((l) => l.includes('"msg":"request"'))) as Record<string, unknown>;
    expect(requestLine).toMatchObject({ tunnel: 'cli-test', method: 'GET', path: '/through/the/cli', status: 200 });

    // Ctrl+C: 130, as a shell (and npx) reports SIGINT, after the tunnel deregistered.
    expect(await client.stop('SIGINT')).toBe(130);
    expect(client.lines.map((l) => JSON.parse(l).event)).toEqual(['registered', 'request', 'closed']);
    await server.waitForLine((l) => l.includes('"tunnel.closed"') && l.includes('deregistered'));

    expect(await server.stop('SIGTERM')).toBe(0);
    await server.waitForLine((l) => l.includes('"server.closed"'));
    // The token never reached the log.
    expect(server.lines.join('\n')).not.toContain(token);
  });

  test('the human output: one clear line with the URL, then one line per request', async () => {
    const token = 'cli-human-token-0123456789';
    const { url } = await startServerCli(['--token', token]);
    const client = run(CLIENT_BIN, ['--server', url, '--port', String(app.port), '--host', '127.0.0.1', '--state-dir', stateDir()], { DEVTUNNEL_TOKEN: token });
    const line = await client.waitForLine((l) => l.includes('Tunnel:'));
    const port = Number(/port (\d+)/.exec(line)?.[1]);
    expect(line).toContain(`http://127.0.0.1:${port} → http://127.0.0.1:${app.port}`);
    await fetchBuffer(`http://127.0.0.1:${port}/hello?secret=1`, { dispatcher });
    const request = await client.waitForLine((l) => l.includes('/hello'));
    expect(request).toMatch(/GET \/hello 200 \d+ ms$/);
    expect(request).not.toContain('secret');
  });

  test('a wrong token: one error event, then closed, exit code 1, no retry loop', async () => {
    const { url } = await startServerCli(['--token', 'the-right-token-0123456789']);
    const client = run(CLIENT_BIN, ['--server', url, '--port', String(app.port), '--state-dir', stateDir(), '--json'], { DEVTUNNEL_TOKEN: 'a-wrong-token-0123456789' });
    const error = JSON.parse(await client.waitForLine((l) => l.includes('"error"'))) as { code: string; message: string };
    expect(error.code).toBe('TUNNEL_UNAUTHORIZED');
    expect(error.message).toContain('DEVTUNNEL_TOKEN');
    expect(await client.exited()).toBe(1);
    const events = client.lines.map((l) => (JSON.parse(l) as { event: string }).event);
    expect(events).toEqual(['error', 'closed']);
  });

  test('a wrong token without --json: one line on stderr, exit code 1', async () => {
    const { url } = await startServerCli(['--token', 'the-right-token-0123456789']);
    const client = run(CLIENT_BIN, ['--server', url, '--port', String(app.port), '--state-dir', stateDir()], { DEVTUNNEL_TOKEN: 'a-wrong-token-0123456789' });
    expect(await client.exited()).toBe(1);
    expect(client.stderr().trim().split('\n')).toEqual([expect.stringContaining('refused the token (401)')]);
  });

  test('bad options: exit code 2 and a message naming the option', async () => {
    const noPort = run(CLIENT_BIN, ['--server', 'http://127.0.0.1:1']);
    expect(await noPort.exited()).toBe(2);
    expect(noPort.stderr()).toContain('--port is required');
    const badUrl = run(CLIENT_BIN, ['--server', 'not a url', '--port', '3000'], { DEVTUNNEL_TOKEN: 'x' });
    expect(await badUrl.exited()).toBe(2);
    expect(badUrl.stderr()).toContain('"server"');
    const badRange = run(SERVER_BIN, ['--tunnel-ports', '9100-9000']);
    expect(await badRange.exited()).toBe(2);
    expect(badRange.stderr()).toContain('tunnelPorts');
    const unknownFlag = run(SERVER_BIN, ['--nope']);
    expect(await unknownFlag.exited()).toBe(2);
  });

  test('a bad value is reported by the flag or variable it came from, and its option', async () => {
    const fromEnv = run(SERVER_BIN, ['--port', '0'], { DEVTUNNEL_TOKEN: 'too-short' });
    expect(await fromEnv.exited()).toBe(2);
    expect(fromEnv.stderr()).toContain('DEVTUNNEL_TOKEN (option "token") must be at least 16');
    const fromFlag = run(SERVER_BIN, ['--port', '0', '--token', 'too-short']);
    expect(await fromFlag.exited()).toBe(2);
    expect(fromFlag.stderr()).toContain('--token (option "token") must be at least 16');
  });

  test('the server reads every option from DEVTUNNEL_* variables too', async () => {
    const range = portRange();
    const server = run(SERVER_BIN, [], { DEVTUNNEL_PORT: '0', DEVTUNNEL_HOST: '127.0.0.1', DEVTUNNEL_TUNNEL_PORTS: range, DEVTUNNEL_TOKEN: 'env-token-0123456789abcdef' });
    const listening = JSON.parse(await server.waitForLine((l) => l.includes('"server.listening"'))) as { tunnelPorts: string };
    expect(listening.tunnelPorts).toBe(range);
    expect(server.stderr()).not.toContain('generated');
  });
});
