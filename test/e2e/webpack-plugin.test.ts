import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { ROOT, runBin, type Child } from '../helpers/child';
import { fetchBuffer, metricSum, pluginEnv, startServer, useDevServerSuite, waitFor } from '../helpers/tunnel';

/**
 * @devtunnel/webpack-plugin's withTunnel() against real dev servers through their Node API: the
 * same assertions for webpack-dev-server 5, @rspack/dev-server 2 and, where Node is recent enough
 * for it (≥ 22.15: the Node 24 run of CI), webpack-dev-server 6.
 */
const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
const kinds: string[] = ['wds5', 'rspack'];
if (major > 22 || (major === 22 && minor >= 15)) kinds.push('wds6');

const scratch = join(ROOT, '.artifacts', 'tmp');

describe.each(kinds)('%s', (kind) => {
  const suite = useDevServerSuite();
  const { dispatcher, children } = suite;

  function start(publicPath: string, plugin: object, env: Record<string, string> = {}) {
    mkdirSync(scratch, { recursive: true });
    const root = mkdtempSync(join(scratch, `${kind}-`));
    cpSync(join(ROOT, 'test/fixtures/webpack-app'), root, { recursive: true });
    const child = runBin(join(ROOT, 'test/helpers/dev-server.mjs'), [kind, root, publicPath, JSON.stringify(plugin)], pluginEnv(suite.server.url, env));
    children.push(child);
    return { root, child };
  }

  async function tunnelPort(child: Child): Promise<number> {
    const line = await child.waitForLine((l) => /Tunnel: http:\/\/\S+ →/.test(l), 60_000);
    return Number(/Tunnel: http:\/\/[^:]+:(\d+)/.exec(line)![1]);
  }

  test("the inspector: its address in webpack's log, the tunnel's requests in it", async () => {
    const { child } = start('/cart/', {});
    const port = await tunnelPort(child);
    const line = await child.waitForLine((l) => l.includes('[devtunnel]') && l.includes('inspect: '), 60_000);
    const url = new URL(/inspect: (http:\/\/127\.0\.0\.1:\d+\/\?key=[0-9a-f]{32})/.exec(line)![1]!);
    expect((await fetchBuffer(`http://127.0.0.1:${port}/cart/main.js`, { dispatcher })).status).toBe(200);
    const authorization = `Bearer ${url.searchParams.get('key')}`;
    await waitFor(async () => (await fetchBuffer(`${url.origin}/api/requests`, { headers: { authorization }, dispatcher })).json<{ requests: Array<{ url: string }> }>().requests.some((r) => r.url === '/cart/main.js'), 10_000, '/cart/main.js in the inspector');
  }, 90_000);

  test('registers on the bound port, passes Host and Origin checks, live updates over the tunnelled socket', async () => {
    const { root, child } = start('/cart/', { allowedHosts: ['.test.example.com'] });
    const port = await tunnelPort(child);
    const devPort = (JSON.parse(await child.waitForLine((l) => l.startsWith('{'))) as { port: number }).port;
    const base = `http://127.0.0.1:${port}`;
    // The cluster's host passes the dev server's own check; any other host is rewritten by the client.
    expect((await fetchBuffer(`${base}/cart/main.js`, { headers: { host: 'shop.test.example.com' }, dispatcher })).status).toBe(200);
    expect((await fetchBuffer(`${base}/cart/`, { headers: { host: 'elsewhere.example.org' }, dispatcher })).status).toBe(200);
    // The dev server's check itself was not widened to 'all'.
    expect((await fetchBuffer(`http://127.0.0.1:${devPort}/cart/`, { headers: { host: 'elsewhere.example.org' }, dispatcher })).status).toBe(403);

    // The HMR socket as the page opens it: on the page's origin, under the prefix.
    const ws = new WebSocket(`ws://127.0.0.1:${port}/cart/ws`, { headers: { host: 'shop.test.example.com' }, origin: 'https://shop.test.example.com' });
    const types: string[] = [];
    const seen = (type: string, count = 1) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "${type}" (seen ${types.join(',')})`)), 30_000);
        const check = () => {
          if (types.filter((t) => t === type).length >= count) {
            clearTimeout(timer);
            resolve();
          } else ws.once('message', check);
        };
        check();
      });
    ws.on('message', (data) => types.push((JSON.parse(data.toString()) as { type: string }).type));
    try {
      await seen('ok');
      expect(types).not.toContain('error');
      // The page names its bundle, which comes pushed; a rebuild drops what is pushed and unused.
      const metric = (name: string) => metricSum(suite.server, name, dispatcher);
      const received = await metric('devtunnel_pushes_received_total');
      await fetchBuffer(`${base}/cart/`, { headers: { host: 'shop.test.example.com', accept: 'text/html' }, dispatcher });
      await waitFor(async () => (await metric('devtunnel_pushes_received_total')) > received, 10_000, 'the push of main.js');
      const dropped = await metric('devtunnel_pushes_dropped_total{reason="invalidated"}');
      writeFileSync(join(root, 'src/message.js'), "export const message = 'edited on the laptop';\n");
      await seen('invalid');
      await waitFor(async () => (await metric('devtunnel_pushes_dropped_total{reason="invalidated"}')) > dropped, 10_000, 'the pushes to be dropped');
      await seen('ok', 2);
    } finally {
      ws.terminate();
    }
  }, 90_000);

  test('the tunnel server is down: one warning, the dev server keeps serving', async () => {
    const { child } = start('/', {}, { DEVTUNNEL_SERVER: 'http://127.0.0.1:9' });
    const devPort = (JSON.parse(await child.waitForLine((l) => l.startsWith('{'), 60_000)) as { port: number }).port;
    await child.waitForLine((l) => l.includes('not connected yet'), 30_000);
    expect((await fetchBuffer(`http://127.0.0.1:${devPort}/`, { dispatcher })).status).toBe(200);
  }, 90_000);

  test('a wrong token: one "stopped" line that names the token, the dev server keeps serving', async () => {
    const before = suite.server.tunnels().length;
    const { child } = start('/', {}, { DEVTUNNEL_TOKEN: 'a-wrong-token-0123456789' });
    const devPort = (JSON.parse(await child.waitForLine((l) => l.startsWith('{'), 60_000)) as { port: number }).port;
    const stopped = await child.waitForLine((l) => l.includes('stopped:'), 30_000);
    expect(stopped).toContain('refused the token (401)');
    expect((await fetchBuffer(`http://127.0.0.1:${devPort}/`, { dispatcher })).status).toBe(200);
    const all = child.output();
    expect(all.filter((l) => l.includes('stopped:'))).toHaveLength(1);
    expect(suite.server.tunnels().length).toBe(before);
  }, 90_000);

  test('off with DEVTUNNEL=0: the dev server runs untouched', async () => {
    const before = suite.server.tunnels().length;
    const { child } = start('/', {}, { DEVTUNNEL: '0' });
    const devPort = (JSON.parse(await child.waitForLine((l) => l.startsWith('{'), 60_000)) as { port: number }).port;
    expect(await child.waitForLine((l) => l.includes('no tunnel.'), 30_000)).toContain('DEVTUNNEL=0');
    expect((await fetchBuffer(`http://127.0.0.1:${devPort}/`, { dispatcher })).status).toBe(200);
    // webpack's infrastructure logger writes to stderr.
    expect(child.output().join('\n')).not.toContain('Tunnel:');
    expect(suite.server.tunnels().length).toBe(before);
  }, 90_000);
});

/** The compiler-plugin form, which only `webpack serve` honours: the CLI, a config file, a plugin entry. */
describe('new DevTunnelPlugin() under webpack serve', () => {
  test('registers, serves through the tunnel, and deregisters on Ctrl+C', async () => {
    const server = await startServer();
    try {
      mkdirSync(scratch, { recursive: true });
      const root = mkdtempSync(join(scratch, 'wp-plugin-'));
      cpSync(join(ROOT, 'test/fixtures/webpack-app'), root, { recursive: true });
      writeFileSync(
        join(root, 'webpack.config.mjs'),
        `import { DevTunnelPlugin } from '@devtunnel/webpack-plugin';
export default {
  mode: 'development', context: ${JSON.stringify(root)}, entry: './src/index.js',
  devServer: { host: '127.0.0.1', port: 'auto', static: { directory: ${JSON.stringify(join(root, 'public'))} } },
  plugins: [new DevTunnelPlugin()],
};
`,
      );
      const child = runBin(join(ROOT, 'node_modules/webpack-cli/bin/cli.js'), ['serve', '--config', join(root, 'webpack.config.mjs')], pluginEnv(server.url, { DEVTUNNEL_NAME: 'compiler-plugin' }));
      const line = await child.waitForLine((l) => /Tunnel: http:\/\/\S+ →/.test(l), 60_000);
      const port = Number(/Tunnel: http:\/\/[^:]+:(\d+)/.exec(line)![1]);
      expect((await fetchBuffer(`http://127.0.0.1:${port}/`)).text).toContain('main.js');
      expect(server.tunnels().find((t) => t.name === 'compiler-plugin')?.state).toBe('connected');
      await child.stop('SIGINT');
      // Deregistered (not merely dropped): the session is gone at once, the port kept for its owner.
      expect(server.tunnels().find((t) => t.name === 'compiler-plugin')?.id).toBeUndefined();
    } finally {
      await server.close();
    }
  }, 90_000);
});
