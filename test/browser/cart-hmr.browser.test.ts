import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext, Frame, Page } from 'playwright-core';
import { ARTIFACTS, launchChromium } from '../helpers/browser';
import { ROOT, runBin, type Child } from '../helpers/child';
import { pluginEnv } from '../helpers/tunnel';
import { startCluster, type Cluster } from './cluster';

/**
 * The whole story in a real browser: Chromium → stand-in company web proxy (static) → the tunnel
 * server's route `cart` → tunnel client in the dev server → an edit → HMR. The same page and
 * assertions for Vite (examples/vite-app, @devtunnel/vite-plugin, `route: 'cart'` in its config)
 * and webpack (examples/webpack-app, withTunnel(), DEVTUNNEL_ROUTE=cart).
 */
const apps = [
  {
    name: 'Vite',
    example: 'examples/vite-app',
    bin: 'node_modules/vite/bin/vite.js',
    args: (dir: string) => ['--port', '0', '--clearScreen', 'false', dir],
    registered: (l: string) => l.includes('devtunnel') && l.includes('turn it on in a browser: '),
  },
  {
    name: 'webpack',
    example: 'examples/webpack-app',
    bin: 'node_modules/webpack-cli/bin/cli.js',
    args: (dir: string) => ['serve', '--config', join(dir, 'webpack.config.js')],
    registered: (l: string) => l.includes('devtunnel') && l.includes('turn it on in a browser: '),
  },
] as const;

describe.each(apps)('a $name app through the cluster, in Chromium', (spec) => {
  let cluster: Cluster;
  let devServer: Child;
  let app: string;
  let shop: string;
  let browser: BrowserContext;

  beforeAll(async () => {
    // A copy of the example inside the repository, so it resolves vite and the plugin.
    const scratch = join(ROOT, '.artifacts', 'tmp');
    mkdirSync(scratch, { recursive: true });
    app = mkdtempSync(join(scratch, `${spec.name.toLowerCase()}-app-`));
    cpSync(join(ROOT, spec.example), app, { recursive: true, filter: (p) => !p.includes('node_modules') && !p.includes('/dist') });
    cluster = await startCluster();
    shop = cluster.shop;
    devServer = runBin(join(ROOT, spec.bin), spec.args(app), pluginEnv(cluster.server.url, { DEVTUNNEL_NAME: 'demo', DEVTUNNEL_ROUTE: 'cart' }));
    await devServer.waitForLine(spec.registered, 60_000);
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await devServer?.stop('SIGTERM');
    await cluster?.close();
  });

  async function cartFrame(page: Page): Promise<Frame> {
    const handle = await page.waitForSelector('#cart-frame');
    const frame = await handle.contentFrame();
    if (!frame) throw new Error('no cart frame');
    return frame;
  }

  test('the site shows the cart from the laptop, and an edit updates it in place', async () => {
    const page = await browser.newPage();
    const reloads: string[] = [];
    page.on('framenavigated', (f) => reloads.push(f.url()));
    // Speculative delivery (on by default): the modules the page names come from pushes.
    const pushed: string[] = [];
    page.on('response', (r) => {
      if (r.headers()['x-devtunnel-push'] === 'hit') pushed.push(r.url());
    });
    // The selection, as a developer makes it: the route's link page sets the cookie devtunnel=demo.
    await page.goto(`${shop}/cart/__devtunnel/?use=demo`);
    await Promise.all([page.waitForURL(`${shop}/cart/`), page.click('button:text-is("Use demo")')]);
    // The rest of the site, unchanged; its cart frame now comes from the laptop.
    await page.goto(`${shop}/`);
    const frame = await cartFrame(page);
    await frame.waitForFunction(`document.querySelector('#message')?.textContent?.includes('Fresh from the laptop')`, undefined, { timeout: 15_000 });
    // State a reload would lose.
    await frame.click('#add');
    await frame.click('#add');
    expect(await frame.textContent('#count')).toBe('2');
    const navigationsBefore = reloads.length;

    const file = join(app, 'src/message.js');
    writeFileSync(file, readFileSync(file, 'utf8').replace(/'[^']*'/, "'Edited on the laptop, delivered by HMR through the tunnel.'"));
    await frame.waitForFunction(`document.querySelector('#message')?.textContent?.includes('delivered by HMR')`, undefined, { timeout: 15_000 });
    // Updated in place: no navigation, the counter kept its value.
    expect(await frame.textContent('#count')).toBe('2');
    expect(reloads.length).toBe(navigationsBefore);
    if (spec.name === 'Vite') expect(pushed.length).toBeGreaterThan(0);
    // A reload after the edit: the edited module, never a push made before it.
    await page.reload();
    const again = await cartFrame(page);
    await again.waitForFunction(`document.querySelector('#message')?.textContent?.includes('delivered by HMR')`, undefined, { timeout: 15_000 });
    await page.screenshot({ path: join(ARTIFACTS, `${spec.name.toLowerCase()}-hmr-through-the-tunnel.png`), fullPage: true });
    await page.close();
  }, 60_000);

  test('without the cookie the same page shows the cluster\'s own cart', async () => {
    const page = await browser.newPage();
    await browser.clearCookies();
    await page.goto(`${shop}/`);
    const frame = await cartFrame(page);
    await frame.waitForSelector('#message');
    expect(await frame.textContent('#message')).toContain("cluster's own cart");
    await page.close();
  }, 30_000);
});
