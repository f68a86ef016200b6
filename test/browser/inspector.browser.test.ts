import { join } from 'node:path';
import type { BrowserContext, ConsoleMessage, Page } from 'playwright-core';
import type { TunnelClient, TunnelInfo } from '@devtunnel/core';
import { ARTIFACTS, launchChromium } from '../helpers/browser';
import { startEchoApp, type EchoApp, type EchoBody } from '../helpers/echo-app';
import { rawExchange } from '../helpers/net';
import { browser as pool, fetchBuffer, startClient, startServer, waitFor } from '../helpers/tunnel';

/** A host name that resolves to 127.0.0.1, as a DNS-rebinding attacker's would. */
const REBOUND = 'rebound.test';

/**
 * The inspector in real Chromium: opened by its printed URL, requests appear live, one opens in
 * full, an edited replay is answered beside the original; filter, pause and clear; the page stays
 * within its memory budget under a flood of large bodies; attacker-controlled text stays text;
 * without the key, or under another host name, it shows nothing.
 */
describe('the inspector, in Chromium', () => {
  let app: EchoApp;
  let server: Awaited<ReturnType<typeof startServer>>;
  let client: TunnelClient & { info: TunnelInfo };
  let browser: BrowserContext;
  const dispatcher = pool();
  const through = (path: string, options: Parameters<typeof fetchBuffer>[1] = {}) => fetchBuffer(`${client.info.url}${path}`, { dispatcher, ...options });
  /** Console errors of the page: a CSP violation shows there. */
  const problems: string[] = [];

  async function openInspector(): Promise<Page> {
    problems.length = 0;
    const page = await browser.newPage();
    page.on('console', (m: ConsoleMessage) => m.type() === 'error' && problems.push(m.text()));
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(client.inspector!);
    // The key went into a cookie: the address bar shows none.
    expect(page.url()).toBe(`${new URL(client.inspector!).origin}/`);
    await page.locator('#status', { hasText: 'live' }).waitFor();
    return page;
  }

  const row = (page: Page, path: string) => page.locator('#list tbody tr', { has: page.locator('td.path', { hasText: new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) }) });

  beforeAll(async () => {
    app = await startEchoApp();
    server = await startServer();
    client = await startClient(server, { port: app.port, name: 'inspected' });
    browser = await launchChromium([`--host-resolver-rules=MAP ${REBOUND} 127.0.0.1`]);
  }, 30_000);
  afterAll(async () => {
    await browser?.close();
    await client?.close();
    await server?.close();
    await app?.close();
    await dispatcher.close();
  });

  test('requests appear live; one opens in full; an edited replay is answered beside it', async () => {
    const page = await openInspector();
    await through('/api/cart?id=7', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"qty":2}' });
    // An attempt at markup through a path (raw bytes: a URL parser would escape it): it reaches
    // the page as text.
    const xss = await rawExchange(client.info.port, 'GET /<img/src=x/onerror=alert(document.domain)> HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(xss.statuses).toEqual([200]);
    const cart = row(page, '/api/cart?id=7');
    await cart.waitFor();
    await row(page, '/<img/src=x/onerror=alert(document.domain)>').waitFor();
    expect(await page.locator('#list img').count()).toBe(0);
    expect(await cart.locator('td').nth(3).textContent()).toBe('200');

    await cart.click();
    const detail = page.locator('#detail');
    await detail.locator('h2', { hasText: 'POST /api/cart?id=7 → 200' }).waitFor();
    const requestId = await detail.locator('.fact-request-id').textContent();
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(await detail.locator('.headers').first().textContent()).toContain('X-Request-Id');
    expect(await detail.locator('pre.body-json').first().textContent()).toBe('{\n  "qty": 2\n}');
    expect(JSON.parse((await detail.locator('.side pre.body-json').first().textContent())!).url).toBe('/api/cart?id=7');

    // Edit the path, a header and the body, and replay.
    const form = detail.locator('form.replay');
    await form.locator('input[name=url]').fill('/api/cart?id=8');
    await form.locator('textarea[name=headers]').fill('Content-Type: application/json\nX-Edited: yes');
    await form.locator('textarea[name=body]').fill('{"qty":3}');
    await form.locator('button.edited').click();
    const replayed = detail.locator('.side > div', { hasText: 'Replay at' });
    await replayed.waitFor();
    const answer = JSON.parse((await replayed.locator('pre.body-json').textContent())!) as EchoBody;
    expect(answer).toMatchObject({ method: 'POST', url: '/api/cart?id=8', bodyBytes: 9 });
    expect(answer.headers['x-edited']).toBe('yes');
    expect(await replayed.locator('.status-line').textContent()).toMatch(/^Status 200/);
    // The original answer is still there, beside it.
    expect(JSON.parse((await detail.locator('.side > div').first().locator('pre.body-json').textContent())!).url).toBe('/api/cart?id=7');
    expect(app.hits.at(-1)).toEqual({ method: 'POST', url: '/api/cart?id=8' });
    // The edits stay in the form, to change once more.
    expect(await detail.locator('form.replay input[name=url]').inputValue()).toBe('/api/cart?id=8');
    await detail.evaluate((e) => e.scrollTo(0, 0));
    await page.screenshot({ path: join(ARTIFACTS, 'inspector.png') });
    expect(problems).toEqual([]);
    await page.close();
  });

  test('filter, pause and clear', async () => {
    const page = await openInspector();
    await through('/filter/apple');
    await through('/filter/pear?status=404');
    await row(page, '/filter/pear?status=404').waitFor();
    await page.fill('#search', 'apple');
    expect(await row(page, '/filter/pear?status=404').isHidden()).toBe(true);
    expect(await row(page, '/filter/apple').isVisible()).toBe(true);
    await page.fill('#search', '');
    await page.selectOption('#kind', '4');
    expect(await row(page, '/filter/apple').isHidden()).toBe(true);
    expect(await row(page, '/filter/pear?status=404').isVisible()).toBe(true);
    await page.selectOption('#kind', '');

    await page.click('#pause');
    await through('/while/paused');
    await page.locator('#held', { hasText: '1 new while paused' }).waitFor();
    expect(await row(page, '/while/paused').count()).toBe(0);
    await page.click('#pause');
    await row(page, '/while/paused').waitFor();

    await page.click('#clear');
    await page.locator('#empty').waitFor();
    expect(await page.locator('#list tbody tr').count()).toBe(0);
    expect(await page.locator('#stats').getAttribute('data-kept')).toBe('0');
    expect(problems).toEqual([]);
    await page.close();
  });

  test('a flood of large bodies: the inspector stays within its budget, and so does the page', async () => {
    const page = await openInspector();
    const size = 256 * 1024;
    const upload = Buffer.alloc(size, 5);
    let next = 0;
    const worker = async () => {
      while (next < 600) {
        const i = next++;
        const res = await through(i % 2 ? `/upload?flood=${i}` : `/bytes?n=${size}&flood=${i}`, i % 2 ? { method: 'POST', body: upload } : {});
        expect(res.status).toBe(200);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    await row(page, `/upload?flood=599`).waitFor();
    const stats = page.locator('#stats');
    await waitFor(async () => Number(await stats.getAttribute('data-kept')) > 0, 10_000, 'the stats');
    const kept = Number(await stats.getAttribute('data-kept'));
    const bytes = Number(await stats.getAttribute('data-bytes'));
    expect(bytes).toBeLessThanOrEqual(Number(await stats.getAttribute('data-max-bytes')));
    expect(kept).toBeLessThanOrEqual(Number(await stats.getAttribute('data-max-records')));
    // 150 MiB crossed: the ring let the oldest go, and the page keeps no more rows than the ring.
    expect(kept).toBeLessThan(600);
    expect(await page.locator('#list tbody tr').count()).toBeLessThanOrEqual(kept);
    // The newest still opens in full.
    await row(page, `/upload?flood=599`).click();
    await page.locator('#detail h2', { hasText: '/upload?flood=599' }).waitFor();
    expect(problems).toEqual([]);
    await page.close();
  }, 120_000);

  test('without its key, or under another host name, it shows nothing', async () => {
    const { origin, port } = new URL(client.inspector!);
    const context = await launchChromium([`--host-resolver-rules=MAP ${REBOUND} 127.0.0.1`]);
    try {
      const page = await context.newPage();
      const plain = await page.goto(`${origin}/`);
      expect(plain!.status()).toBe(401);
      expect(await page.locator('body').textContent()).toContain('opens only with the key that devtunnel printed');
      const api = await page.goto(`${origin}/api/requests`);
      expect(api!.status()).toBe(401);
      // A page of another site whose name now resolves to 127.0.0.1 (DNS rebinding), with the key even.
      const rebound = await page.goto(`http://${REBOUND}:${port}/?key=${new URL(client.inspector!).searchParams.get('key')}`);
      expect(rebound!.status()).toBe(403);
      expect(await page.locator('body').textContent()).not.toContain('/api/cart');
    } finally {
      await context.close();
    }
  });
});
