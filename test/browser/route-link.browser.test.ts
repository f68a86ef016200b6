import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { join } from 'node:path';
import type { BrowserContext, Page, Response } from 'playwright-core';
import { ARTIFACTS, launchChromium } from '../helpers/browser';
import { ROOT, runBin, type Child } from '../helpers/child';
import { closeServer, listen } from '../helpers/net';
import { pluginEnv, waitFor } from '../helpers/tunnel';
import { startCluster, type Cluster } from './cluster';

const NAME = 'ann';
const SERVED_BY = 'x-devtunnel-served-by';
/** A host name Chromium sends to 127.0.0.1 without treating it as loopback (no Sec-Fetch-* headers). */
const PLAIN_HOST = 'shop.test';

/**
 * The demo's story in Chromium, through the static web proxy of examples/cluster: the route's link
 * page switches a browser's /cart/ to the laptop's Vite (examples/vite-app, `route: 'cart'`), HMR
 * comes through the route, "Turn off" brings the cluster's cart app back; and a page of another
 * origin cannot make that switch for the browser.
 */
describe('the route link page, in Chromium, through the static web proxy', () => {
  let cluster: Cluster;
  let vite: Child;
  let app: string;
  let shop: string;
  let link: string;
  let browser: BrowserContext;

  beforeAll(async () => {
    // A copy of the example inside the repository, so it resolves vite and the plugin.
    const scratch = join(ROOT, '.artifacts', 'tmp');
    mkdirSync(scratch, { recursive: true });
    app = mkdtempSync(join(scratch, 'route-vite-app-'));
    cpSync(join(ROOT, 'examples/vite-app'), app, { recursive: true, filter: (p) => !p.includes('node_modules') && !p.includes('/dist') });
    cluster = await startCluster();
    shop = cluster.shop;
    // The developer's `vite`, its config naming the route; the plugin logs the route's link.
    vite = runBin(join(ROOT, 'node_modules/vite/bin/vite.js'), ['--port', '0', '--clearScreen', 'false', app], pluginEnv(cluster.server.url, { DEVTUNNEL_NAME: NAME }));
    const line = await vite.waitForLine((l) => l.includes('devtunnel') && l.includes('turn it on in a browser: '), 60_000);
    link = /turn it on in a browser: (\S+)/.exec(line)![1]!;
    browser = await launchChromium([`--host-resolver-rules=MAP ${PLAIN_HOST} 127.0.0.1`]);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await vite?.stop('SIGTERM');
    await cluster?.close();
  });

  /** The documents served at `<origin>/cart/` on `page`, with who served each. */
  function cartDocuments(page: Page, origin = shop): Array<{ status: number; servedBy: string | undefined }> {
    const seen: Array<{ status: number; servedBy: string | undefined }> = [];
    page.on('response', (r: Response) => {
      if (r.request().resourceType() === 'document' && r.url() === `${origin}/cart/`) seen.push({ status: r.status(), servedBy: r.headers()[SERVED_BY] });
    });
    return seen;
  }

  const selection = async (origin = shop) => (await browser.cookies(origin)).find((c) => c.name === 'devtunnel')?.value;

  test('Use: /cart/ comes from the laptop\'s Vite, an edit arrives by HMR through the route; Turn off: the cluster\'s cart again', async () => {
    expect(link).toBe(`${shop}/cart/__devtunnel/?use=${NAME}`);
    await browser.clearCookies();
    const page = await browser.newPage();
    const documents = cartDocuments(page);
    const navigations: string[] = [];
    page.on('framenavigated', (f) => navigations.push(f.url()));

    // No selection: the route serves the cluster's cart app.
    await page.goto(`${shop}/cart/`);
    expect(await page.textContent('#message')).toContain("The cluster's own cart app.");
    expect(documents.at(-1)).toEqual({ status: 200, servedBy: 'upstream' });

    // The link: the page offers the laptop's tunnel; the choice is a click.
    await page.goto(link);
    expect(await page.textContent('li.offered')).toContain(NAME);
    expect(await page.textContent('body')).toContain('This browser selects no tunnel');
    const hmrSocket = page.waitForEvent('websocket', { predicate: (ws) => ws.url().startsWith(`${shop.replace('http:', 'ws:')}/cart/`), timeout: 30_000 });
    await Promise.all([page.waitForURL(`${shop}/cart/`), page.click(`button:text-is("Use ${NAME}")`)]);
    expect(await selection()).toBe(NAME);
    expect(documents.at(-1)).toEqual({ status: 200, servedBy: `tunnel ${NAME}` });
    await page.waitForFunction(`document.querySelector('#message')?.textContent?.includes('Fresh from the laptop')`, undefined, { timeout: 15_000 });
    // Vite's HMR socket opens on the web proxy's /cart/, which it sends to the route's port only.
    await hmrSocket;

    // State a reload would lose; then an edit on the laptop.
    await page.click('#add');
    await page.click('#add');
    expect(await page.textContent('#count')).toBe('2');
    const navigationsBefore = navigations.length;
    const file = join(app, 'src/message.js');
    writeFileSync(file, readFileSync(file, 'utf8').replace(/'[^']*'/, "'Edited on the laptop, delivered by HMR through the route.'"));
    await page.waitForFunction(`document.querySelector('#message')?.textContent?.includes('delivered by HMR through the route')`, undefined, { timeout: 15_000 });
    // Updated in place: no navigation, the counter kept its value.
    expect(await page.textContent('#count')).toBe('2');
    expect(navigations.length).toBe(navigationsBefore);
    await page.screenshot({ path: join(ARTIFACTS, 'route-link-laptop.png'), fullPage: true });

    // Back on the link page: the selection is shown, and turned off with a click.
    await page.goto(`${shop}/cart/__devtunnel/`);
    expect(await page.textContent('body')).toContain(`This browser selects ${NAME}`);
    await Promise.all([page.waitForURL(`${shop}/cart/`), page.click('button:text-is("Turn off")')]);
    expect(await selection()).toBeUndefined();
    expect(documents.at(-1)).toEqual({ status: 200, servedBy: 'upstream' });
    expect(await page.textContent('#message')).toContain("The cluster's own cart app.");
    await page.screenshot({ path: join(ARTIFACTS, 'route-link-cluster.png'), fullPage: true });
    await page.close();

    // The HMR socket (closed when the page left Vite) was the tunnel's, on the route.
    await waitFor(
      () => cluster.log.lines.some((l) => l.msg === 'request' && l.route === 'cart' && l.servedBy === `tunnel ${NAME}` && l.status === 101 && l.path === '/cart/'),
      10_000,
      'the HMR upgrade in the server log',
    );
  }, 60_000);

  test('behind a web proxy that strips the app\'s prefix: the page\'s links, redirects and token cookie still fit', async () => {
    // ingress-nginx rewrite-target, Traefik StripPrefix: the browser asks /cart/__devtunnel/, the
    // route receives /__devtunnel/.
    const route = new URL(cluster.routeUrl);
    // The apps of this cluster expect /cart/ kept, so the app's page itself is answered here: what
    // is checked is where the link page sends the browser, and the cookies it sets.
    const arrivals: string[] = [];
    const stripping = createServer((req, res) => {
      if (req.url === '/cart/') {
        arrivals.push(req.url);
        return void res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>the app</title>');
      }
      if (!req.url!.startsWith('/cart/')) return void res.writeHead(404).end();
      const upstream = httpRequest({ host: route.hostname, port: route.port, method: req.method, path: req.url!.slice('/cart'.length), headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    });
    const origin = `http://127.0.0.1:${await listen(stripping)}`;
    try {
      await browser.clearCookies();
      const page = await browser.newPage();
      // Without the trailing slash, the page sends the browser to its own URL with it, under /cart.
      await page.goto(`${origin}/cart/__devtunnel?use=${NAME}`);
      expect(page.url()).toBe(`${origin}/cart/__devtunnel/?use=${NAME}`);
      expect(await page.textContent('li.offered')).toContain(NAME);
      expect((await browser.cookies(`${origin}/cart/__devtunnel/`)).map((c) => [c.name, c.path])).toContainEqual(['devtunnel_page', '/cart/__devtunnel']);
      await Promise.all([page.waitForURL(`${origin}/cart/`), page.click(`button:text-is("Use ${NAME}")`)]);
      expect(await selection(origin)).toBe(NAME);
      await page.goto(`${origin}/cart/__devtunnel/`);
      expect(await page.textContent('body')).toContain(`This browser selects ${NAME}`);
      await Promise.all([page.waitForURL(`${origin}/cart/`), page.click('a:text-is("Back to the app")')]);
      await page.goto(`${origin}/cart/__devtunnel/`);
      await Promise.all([page.waitForURL(`${origin}/cart/`), page.click('button:text-is("Turn off")')]);
      expect(await selection(origin)).toBeUndefined();
      expect(arrivals).toEqual(['/cart/', '/cart/', '/cart/']);
      await page.close();
    } finally {
      await closeServer(stripping);
    }
  }, 30_000);

  describe('a POST from another origin sets no cookie', () => {
    let attacker: Server;
    let attackerOrigin: string;
    /** What the attacker's page posts: the real token, as if it had leaked, so only the origin checks stand. */
    let form = '';
    beforeAll(async () => {
      attacker = createServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end(form);
      });
      attackerOrigin = `http://127.0.0.1:${await listen(attacker)}`;
    });
    afterAll(async () => {
      await closeServer(attacker);
    });

    /** Opens the link page at `origin` (the browser gets the page's token cookie) and returns its token. */
    async function visitLinkPage(page: Page, origin: string): Promise<string> {
      await page.goto(`${origin}/cart/__devtunnel/?use=${NAME}`);
      expect(await page.textContent('li.offered')).toContain(NAME);
      return (await page.getAttribute('input[name=token]', 'value'))!;
    }

    const attackForm = (target: string, token: string) =>
      `<!doctype html><title>Win a prize</title><form method="post" action="${target}/cart/__devtunnel/"><input type="hidden" name="token" value="${token}"><input type="hidden" name="use" value="${NAME}"><button id="win">Win a prize</button></form>`;

    /** Submits the attacker's form on `page` and returns the answer to that POST. */
    async function submit(page: Page): Promise<{ status: number; text: string }> {
      const answer = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().includes('/__devtunnel/'));
      await page.click('#win');
      const r = await answer;
      return { status: r.status(), text: await r.text() };
    }

    test('from another site (Sec-Fetch-Site: cross-site): refused', async () => {
      await browser.clearCookies();
      const page = await browser.newPage();
      const token = await visitLinkPage(page, shop);
      // A page of another site: answered by Playwright, so no name resolution is needed.
      await page.route('http://evil.test/**', (route) => route.fulfill({ contentType: 'text/html', body: attackForm(shop, token) }));
      await page.goto('http://evil.test/');
      const answer = await submit(page);
      expect(answer.status).toBe(403);
      expect(answer.text).toContain('another site (cross-site)');
      expect(await selection()).toBeUndefined();
      await page.goto(`${shop}/cart/`);
      expect(await page.textContent('#message')).toContain("The cluster's own cart app.");
      await page.close();
    }, 30_000);

    test('from another origin of the same site (another port: same-site): refused', async () => {
      await browser.clearCookies();
      const page = await browser.newPage();
      const token = await visitLinkPage(page, shop);
      form = attackForm(shop, token);
      await page.goto(`${attackerOrigin}/`);
      const answer = await submit(page);
      expect(answer.status).toBe(403);
      expect(answer.text).toContain('another site (same-site)');
      expect(await selection()).toBeUndefined();
      await page.close();
    }, 30_000);

    test('to a host that gets no Sec-Fetch-Site (plain http, not loopback): the token cookie stays home, refused', async () => {
      await browser.clearCookies();
      const plain = shop.replace('127.0.0.1', PLAIN_HOST);
      const page = await browser.newPage();
      const token = await visitLinkPage(page, plain);
      expect((await browser.cookies(`${plain}/cart/__devtunnel/`)).map((c) => c.name)).toContain('devtunnel_page');
      await page.route('http://evil.test/**', (route) => route.fulfill({ contentType: 'text/html', body: attackForm(plain, token) }));
      await page.goto('http://evil.test/');
      const answer = await submit(page);
      expect(answer.status).toBe(403);
      expect(answer.text).toContain('did not come from the devtunnel page');
      expect(await selection(plain)).toBeUndefined();
      await page.close();
    }, 30_000);
  });
});
