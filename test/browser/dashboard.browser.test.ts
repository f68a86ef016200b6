import { join } from 'node:path';
import type { BrowserContext, Dialog } from 'playwright-core';
import { ARTIFACTS, launchChromium } from '../helpers/browser';
import { startEchoApp, type EchoApp } from '../helpers/echo-app';
import { rawExchange } from '../helpers/net';
import { freeRange, startClient, startServer, TOKEN } from '../helpers/tunnel';

const ADMIN = 'admin-token-0123456789abcdef';

/** The dashboard in real Chromium: sign in, watch a tunnel live, close it; XSS attempts stay text. */
describe('the dashboard, in Chromium', () => {
  let app: EchoApp;
  let server: Awaited<ReturnType<typeof startServer>>;
  let browser: BrowserContext;
  let routePort: number;
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!();
  });

  beforeAll(async () => {
    app = await startEchoApp();
    const { from } = await freeRange(1);
    routePort = from;
    server = await startServer({ adminToken: ADMIN, routes: [`cart:${from}=http://127.0.0.1:${app.port}`] });
    browser = await launchChromium();
  }, 30_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await app?.close();
  });

  test('the routes: the real app answers, the tunnels a name selects, who served the requests', async () => {
    const client = await startClient(server, { port: app.port, name: 'dash-route', route: 'cart' });
    cleanup.push(() => client.close());
    const page = await browser.newPage();
    // Signed out afterwards: the other tests sign in themselves.
    cleanup.push(() => browser.clearCookies());
    cleanup.push(() => page.close());
    await page.goto(`${server.url}/dashboard`);
    await page.fill('#token', TOKEN);
    await page.click('button[type=submit]');
    const route = page.locator('tr[data-route="cart"]');
    await route.locator('.members', { hasText: 'dash-route' }).waitFor({ timeout: 10_000 });
    await route.locator('.health-up').waitFor({ timeout: 10_000 });
    expect(await route.locator('.health-up').textContent()).toBe('yes');
    expect(await page.locator(`tr[data-port="${client.info.port}"] td:nth-child(2)`).textContent()).toBe('cart');
  });

  test('sign in as admin, see the tunnel update live, close it after confirming', async () => {
    const client = await startClient(server, { port: app.port, name: 'dash-test' });
    cleanup.push(() => client.close());
    const page = await browser.newPage();
    const dialogs: string[] = [];
    page.on('dialog', (dialog: Dialog) => {
      dialogs.push(`${dialog.type()}: ${dialog.message()}`);
      void (dialog.type() === 'confirm' ? dialog.accept() : dialog.dismiss());
    });
    await page.goto(`${server.url}/dashboard`);
    await page.fill('#token', ADMIN);
    await page.click('button[type=submit]');
    const row = page.locator(`tr[data-port="${client.info.port}"]`);
    await row.waitFor();
    expect(await row.locator('.name').textContent()).toBe('dash-test');
    expect(await row.locator('.state-connected').textContent()).toBe('connected');

    // An XSS attempt through the request path (client-controlled text on the page).
    const xss = await rawExchange(client.info.port, 'GET /<img/src=x/onerror=alert(document.domain)> HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    // Node's parser takes `<` and `>` in a path: the request reaches the app, and its path the page.
    expect(xss.statuses).toEqual([200]);
    // The page's CSP forbids evaluating strings, so wait with locators, not waitForFunction.
    await row.locator('.requests', { hasText: /^1$/ }).waitFor({ timeout: 10_000 });
    await row.locator('summary').click();
    const shown = await row.locator('details table').textContent();
    expect(shown).toContain('/<img/src=x/onerror=alert(document.domain)>');
    expect(await page.locator('details img').count()).toBe(0);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });

    const stopped = new Promise<string>((resolve) => client.once('error', (e) => resolve(e.code)));
    await row.locator('button.close').click();
    await row.locator('.state-closed').waitFor({ timeout: 10_000 });
    expect(dialogs.filter((d) => d.startsWith('confirm'))).toHaveLength(1);
    expect(dialogs.filter((d) => d.startsWith('alert'))).toHaveLength(0);
    expect(server.tunnels().find((t) => t.port === client.info.port)?.id).toBeUndefined();
    // The client is told, and stops instead of registering again at once.
    expect(await stopped).toBe('TUNNEL_CLOSED_BY_SERVER');
    expect(client.status).toBe('closed');
    await client.close();
    await page.close();
  }, 60_000);

  test('a developer finds a tester\'s request by its trace id and replays it to their tunnel', async () => {
    const client = await startClient(server, { port: app.port, name: 'replayer', route: 'cart' });
    cleanup.push(() => client.close());
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const tester = await fetch(`http://127.0.0.1:${routePort}/checkout?step=2`, { headers: { traceparent: `00-${traceId}-b7ad6b7169203331-01`, cookie: 'session=tester' } });
    expect(tester.headers.get('x-devtunnel-served-by')).toBe('upstream');
    await tester.text();
    const page = await browser.newPage();
    cleanup.push(() => page.close());
    await browser.clearCookies();
    cleanup.push(() => browser.clearCookies());
    await page.goto(`${server.url}/dashboard`);
    await page.fill('#token', TOKEN);
    await page.click('button[type=submit]');
    await page.locator(`tr[data-port="${client.info.port}"]`).waitFor();
    await page.fill('#find-text', traceId);
    await page.click('#find button');
    const row = page.locator('#captures tbody tr', { hasText: '/checkout?step=2' });
    await row.waitFor();
    expect(await page.locator('#captures tbody tr').count()).toBe(1);
    await row.locator('select').selectOption(String(client.info.port));
    await row.locator('button.replay').click();
    await page.locator('#answer-line', { hasText: 'to replayer' }).waitFor({ timeout: 10_000 });
    const body = JSON.parse((await page.locator('#answer-body').textContent())!) as { url: string; headers: Record<string, string> };
    expect([body.url, body.headers.cookie, typeof body.headers['x-devtunnel-replay-of']]).toEqual(['/checkout?step=2', undefined, 'string']);
  }, 60_000);

  test('a developer signed in with the registration token sees the tunnels but no close button', async () => {
    const client = await startClient(server, { port: app.port, name: 'viewer-sees' });
    cleanup.push(() => client.close());
    const page = await browser.newPage();
    await browser.clearCookies();
    await page.goto(`${server.url}/dashboard`);
    await page.fill('#token', TOKEN);
    await page.click('button[type=submit]');
    const row = page.locator(`tr[data-port="${client.info.port}"]`);
    await row.waitFor();
    expect(await row.locator('button.close').count()).toBe(0);
    expect(await page.locator('.role').textContent()).toBe('read-only');
    await client.close();
    await page.close();
  }, 60_000);
});
