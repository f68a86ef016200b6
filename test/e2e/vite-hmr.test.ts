import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { ROOT, runBin, type Child } from '../helpers/child';
import { browser, fetchBuffer, startClient, startServer } from '../helpers/tunnel';

/**
 * A real Vite dev server behind the tunnel: the HMR handshake (`vite-hmr` subprotocol with its
 * token) is accepted through the tunnel, and an edit reaches the browser side as an HMR update.
 */
describe('Vite HMR through the tunnel', () => {
  let vite: Child;
  let root: string;
  let server: Awaited<ReturnType<typeof startServer>>;
  let client: Awaited<ReturnType<typeof startClient>>;
  let base: string;
  const dispatcher = browser();

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'devtunnel-vite-'));
    cpSync(join(ROOT, 'test/fixtures/vite-hmr'), root, { recursive: true });
    vite = runBin(join(ROOT, 'test/helpers/vite-server.mjs'), [root]);
    const { port } = JSON.parse(await vite.waitForLine((l) => l.startsWith('{'), 20_000)) as { port: number };
    server = await startServer();
    client = await startClient(server, { port });
    base = `127.0.0.1:${client.info.port}`;
  }, 30_000);

  afterAll(async () => {
    await client?.close();
    await server?.close();
    await vite?.stop('SIGTERM');
    await dispatcher.close();
  });

  test('the page, the vite-hmr handshake with its token, and an update after an edit', async () => {
    const page = await fetchBuffer(`http://${base}/`, { dispatcher });
    expect(page.status).toBe(200);
    expect(page.text).toContain('/@vite/client');
    const viteClient = await fetchBuffer(`http://${base}/@vite/client`, { dispatcher });
    const token = /const wsToken = "([^"]+)"/.exec(viteClient.text)?.[1];
    expect(token).toBeDefined();
    // Load the modules so Vite's module graph knows them, as a browser would.
    expect((await fetchBuffer(`http://${base}/main.js`, { dispatcher })).status).toBe(200);
    expect((await fetchBuffer(`http://${base}/message.js`, { dispatcher })).text).toContain('served from the laptop');

    // As a browser does: with the page's Origin, which makes Vite check the token.
    const ws = new WebSocket(`ws://${base}/?token=${token}`, 'vite-hmr', { origin: `http://${base}` });
    const messages: Array<{ type: string; updates?: Array<{ path: string; acceptedPath: string }> }> = [];
    const waiters: Array<() => void> = [];
    ws.on('message', (data) => {
      messages.push(JSON.parse(data.toString()));
      for (const w of waiters.splice(0)) w();
    });
    const next = (type: string) =>
      new Promise<(typeof messages)[number]>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${type} message; got ${JSON.stringify(messages)}`)), 15_000);
        const look = () => {
          const found = messages.find((m) => m.type === type);
          if (found) {
            clearTimeout(timer);
            resolve(found);
          } else waiters.push(look);
        };
        look();
      });
    try {
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      expect(ws.protocol).toBe('vite-hmr');
      await next('connected');
      writeFileSync(join(root, 'message.js'), "export const message = 'edited on the laptop';\n");
      const update = await next('update');
      expect(update.updates?.map((u) => u.acceptedPath)).toContain('/message.js');
      const fresh = await fetchBuffer(`http://${base}${update.updates![0]!.acceptedPath}?t=1`, { dispatcher });
      expect(fresh.text).toContain('edited on the laptop');
    } finally {
      ws.terminate();
    }
  }, 30_000);

  test('a wrong token is refused by Vite itself, through the tunnel', async () => {
    const ws = new WebSocket(`ws://${base}/?token=wrong`, 'vite-hmr', { origin: `http://${base}` });
    const outcome = await new Promise<string>((resolve) => {
      ws.once('open', () => resolve('open'));
      ws.once('unexpected-response', (_req, res) => resolve(`status ${res.statusCode}`));
      ws.once('error', () => resolve('error'));
    });
    ws.terminate();
    expect(outcome).toMatch(/^status 4\d\d$|^error$/);
  });
});
