import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import WebSocket from 'ws';
import { ROOT, runBin, type Child } from '../helpers/child';
import { fetchBuffer, pluginEnv, useDevServerSuite, waitFor } from '../helpers/tunnel';

/**
 * @devtunnel/vite-plugin against real Vite dev servers, the oldest and the newest supported major:
 * the same assertions for each (unplugin's habit). Vite runs as its own CLI in a child process with
 * a config file, exactly as a developer runs it.
 */
const versions = [
  ['8', join(ROOT, 'node_modules/vite/bin/vite.js')],
  ['5', join(ROOT, 'node_modules/vite5/bin/vite.js')],
] as const;

const scratch = join(ROOT, '.artifacts', 'tmp');

/** A small project inside the repository (so it resolves the plugin), with the given config. */
function project(pluginOptions: string, viteOptions = ''): string {
  mkdirSync(scratch, { recursive: true });
  const dir = mkdtempSync(join(scratch, 'vite-plugin-'));
  cpSync(join(ROOT, 'test/fixtures/vite-hmr'), dir, { recursive: true });
  writeConfig(dir, pluginOptions, viteOptions);
  return dir;
}

function writeConfig(dir: string, pluginOptions: string, viteOptions: string): void {
  writeFileSync(
    join(dir, 'vite.config.mjs'),
    `import devTunnel from '@devtunnel/vite-plugin';\nexport default { ${viteOptions} plugins: [devTunnel(${pluginOptions})] };\n`,
  );
}

describe.each(versions)('Vite %s', (_major, bin) => {
  const suite = useDevServerSuite();
  const { dispatcher, children } = suite;

  function vite(dir: string, args: string[] = [], env: Record<string, string> = {}): Child {
    const child = runBin(bin, ['--clearScreen', 'false', ...args], pluginEnv(suite.server.url, env));
    children.push(child);
    return child;
  }

  async function connectedPort(child: Child): Promise<number> {
    const line = await child.waitForLine((l) => l.includes('devtunnel') && l.includes('connected:'), 30_000);
    return Number(/:(\d+) →/.exec(line)![1]);
  }

  test('banner, registration on the bound port, host check passed without disabling it, HMR handshake', async () => {
    const dir = project("{ allowedHosts: ['.test.example.com'] }");
    const child = vite(dir, [dir, '--port', '0', '--host', '127.0.0.1']);
    await child.waitForLine((l) => l.includes('➜') && l.includes('Tunnel:'), 30_000);
    const port = await connectedPort(child);
    const base = `http://127.0.0.1:${port}`;
    // A cluster host on the list keeps its Host; an unknown one is rewritten by the client: both pass.
    expect((await fetchBuffer(`${base}/`, { headers: { host: 'shop.test.example.com' }, dispatcher })).status).toBe(200);
    expect((await fetchBuffer(`${base}/`, { headers: { host: 'elsewhere.example.org' }, dispatcher })).status).toBe(200);
    // Vite's own check still refuses that host when asked directly: it was not disabled.
    const local = /Local:\s+(http:\/\/\S+)/.exec(child.lines.join('\n'))![1]!;
    expect((await fetchBuffer(local, { headers: { host: 'elsewhere.example.org' }, dispatcher })).status).toBe(403);
    // The HMR socket, with the token Vite gives the page, through the tunnel.
    const token = /const wsToken = "([^"]+)"/.exec((await fetchBuffer(`${base}/@vite/client`, { dispatcher })).text)?.[1];
    const ws = new WebSocket(`ws://127.0.0.1:${port}/?token=${token}`, 'vite-hmr', { origin: base });
    const first = await new Promise<string>((resolve, reject) => {
      ws.once('message', (d) => resolve(d.toString()));
      ws.once('error', reject);
    });
    ws.terminate();
    expect(JSON.parse(first)).toMatchObject({ type: 'connected' });
  }, 60_000);

  test("the inspector: its address in devtunnel's line (and the banner), the tunnel's requests in it", async () => {
    const dir = project('{}');
    const child = vite(dir, [dir, '--port', '0', '--host', '127.0.0.1']);
    const port = await connectedPort(child);
    const line = await child.waitForLine((l) => l.includes('devtunnel') && l.includes('inspect: '), 30_000);
    const url = new URL(/inspect: (http:\/\/127\.0\.0\.1:\d+\/\?key=[0-9a-f]{32})/.exec(line)![1]!);
    expect((await fetchBuffer(`http://127.0.0.1:${port}/main.js`, { dispatcher })).status).toBe(200);
    const authorization = `Bearer ${url.searchParams.get('key')}`;
    await waitFor(async () => (await fetchBuffer(`${url.origin}/api/requests`, { headers: { authorization }, dispatcher })).json<{ requests: Array<{ url: string }> }>().requests.some((r) => r.url === '/main.js'), 10_000, '/main.js in the inspector');
  }, 60_000);

  test('Vite moved to the next port: the tunnel follows the port it really bound', async () => {
    const busy: Server = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const taken = (busy.address() as { port: number }).port;
    try {
      const dir = project('{}');
      const child = vite(dir, [dir, '--port', String(taken), '--host', '127.0.0.1']);
      const port = await connectedPort(child);
      const line = child.lines.find((l) => l.includes('connected:'))!;
      expect(line).not.toContain(`127.0.0.1:${taken} `);
      expect((await fetchBuffer(`http://127.0.0.1:${port}/main.js`, { dispatcher })).status).toBe(200);
    } finally {
      await new Promise((resolve) => busy.close(resolve));
    }
  }, 60_000);

  test('a config edit restarts Vite and keeps one registration on the same port', async () => {
    const dir = project("{ name: 'restart-me' }");
    const child = vite(dir, [dir, '--port', '0', '--host', '127.0.0.1']);
    const port = await connectedPort(child);
    writeConfig(dir, "{ name: 'restart-me' }", "define: { __EDITED__: '1' },");
    await child.waitForLine((l) => /server restarted/.test(l), 30_000);
    await waitFor(async () => (await fetchBuffer(`http://127.0.0.1:${port}/main.js`, { dispatcher })).status === 200, 10_000, 'the tunnel to serve the restarted Vite');
    const mine = suite.server.tunnels().filter((t) => t.name === 'restart-me');
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ port, state: 'connected' });
  }, 60_000);

  test('off with DEVTUNNEL=0 and in CI; Vite serves locally either way', async () => {
    const before = suite.server.tunnels().length;
    const cases: Array<Record<string, string>> = [{ DEVTUNNEL: '0' }, { DEVTUNNEL: '', CI: 'true' }];
    for (const env of cases) {
      const dir = project('{}');
      const child = vite(dir, [dir, '--port', '0', '--host', '127.0.0.1'], env);
      const local = /Local:\s+(http:\/\/\S+)/.exec(await child.waitForLine((l) => l.includes('Local:'), 30_000))![1]!;
      expect((await fetchBuffer(local, { dispatcher })).status).toBe(200);
      expect(child.lines.join('\n')).not.toContain('Tunnel:');
    }
    expect(suite.server.tunnels().length).toBe(before);
  }, 60_000);

  test('the tunnel server is down: one warning, and Vite keeps serving', async () => {
    // A "server" that drops every connection, and counts the client's attempts.
    let attempts = 0;
    const down: Server = createServer((socket) => {
      attempts++;
      socket.destroy();
    });
    down.listen(0, '127.0.0.1');
    await once(down, 'listening');
    try {
      const dir = project('{}');
      const child = vite(dir, [dir, '--port', '0', '--host', '127.0.0.1'], { DEVTUNNEL_SERVER: `http://127.0.0.1:${(down.address() as AddressInfo).port}` });
      const warning = await child.waitForLine((l) => l.includes('devtunnel') && l.includes('not connected yet'), 30_000);
      expect(warning).toContain('keeps working locally');
      const local = /Local:\s+(http:\/\/\S+)/.exec(child.lines.join('\n'))![1]!;
      expect((await fetchBuffer(local, { dispatcher })).status).toBe(200);
      // Said once, not at every retry: after three attempts, still one line.
      await waitFor(() => attempts >= 3, 20_000, 'three registration attempts');
      expect(child.output().filter((l) => l.includes('not connected yet'))).toHaveLength(1);
    } finally {
      await new Promise((r) => down.close(r));
    }
  }, 60_000);

  test('a wrong token: one "stopped" line that names the token, no retries, Vite keeps serving; fixed in the config, the restart opens the tunnel', async () => {
    const dir = project("{ name: 'fix-my-token', token: 'a-wrong-token-0123456789' }");
    const child = vite(dir, [dir, '--port', '0', '--host', '127.0.0.1']);
    const stopped = await child.waitForLine((l) => l.includes('devtunnel') && l.includes('stopped:'), 30_000);
    expect(stopped).toContain('refused the token (401)');
    const local = /Local:\s+(http:\/\/\S+)/.exec(child.lines.join('\n'))![1]!;
    expect((await fetchBuffer(local, { dispatcher })).status).toBe(200);
    const all = child.output();
    expect(all.filter((l) => l.includes('stopped:'))).toHaveLength(1);
    expect(all.filter((l) => l.includes('not connected yet') || l.includes('lost:'))).toHaveLength(0);
    expect(suite.server.tunnels().filter((t) => t.name === 'fix-my-token')).toHaveLength(0);
    // The token fixed (the right one comes from DEVTUNNEL_TOKEN): the restart opens a new tunnel.
    writeConfig(dir, "{ name: 'fix-my-token' }", '');
    const port = await connectedPort(child);
    expect((await fetchBuffer(`http://127.0.0.1:${port}/main.js`, { dispatcher })).status).toBe(200);
    expect(suite.server.tunnels().filter((t) => t.name === 'fix-my-token')).toMatchObject([{ port, state: 'connected' }]);
  }, 60_000);

  test('a refused option: its error line, and the banner says the tunnel is not running', async () => {
    const dir = project('{}');
    const child = vite(dir, [dir, '--port', '0', '--host', '127.0.0.1'], { DEVTUNNEL_NAME: 'Not_A_Valid_Name' });
    const banner = await child.waitForLine((l) => l.includes('Tunnel:'), 30_000);
    expect(banner).toContain('not running (see the devtunnel line above)');
    expect(child.output().join('\n')).toContain('name');
  }, 60_000);

  test('an app under a path prefix (base) works through the tunnel', async () => {
    const dir = project('{}', "base: '/cart/',");
    const child = vite(dir, [dir, '--port', '0', '--host', '127.0.0.1']);
    const port = await connectedPort(child);
    const page = await fetchBuffer(`http://127.0.0.1:${port}/cart/`, { dispatcher });
    expect(page.status).toBe(200);
    expect(page.text).toContain('/cart/@vite/client');
  }, 60_000);
});
