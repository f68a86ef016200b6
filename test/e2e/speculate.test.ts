import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, runBin } from '../helpers/child';
import { fetchBuffer, metricSum, pluginEnv, useDevServerSuite, waitFor, type Fetched } from '../helpers/tunnel';

/**
 * Speculative delivery against a real Vite dev server with @devtunnel/vite-plugin (docs/speculation.md):
 * the page's modules are answered from pushes, each fetched from Vite once; and every case where a
 * push must not be used. The requests follow a browser's order (a module only after the one that
 * imports it), which is what makes the promises deterministic: no timing is asserted.
 */
const scratch = join(ROOT, '.artifacts', 'tmp');
const VITE = join(ROOT, 'node_modules/vite/bin/vite.js');

/** The fixture in a project inside the repository (so it resolves the plugin), with a counting plugin. */
function project(pluginOptions = '{}'): string {
  mkdirSync(scratch, { recursive: true });
  const dir = mkdtempSync(join(scratch, 'vite-push-'));
  cpSync(join(ROOT, 'test/fixtures/vite-push'), dir, { recursive: true });
  writeFileSync(
    join(dir, 'vite.config.mjs'),
    `import devTunnel from '@devtunnel/vite-plugin';
const seen = {};
const count = { name: 'count', configureServer(server) {
  server.middlewares.use((req, res, next) => {
    if (req.url === '/__seen') { res.setHeader('content-type', 'application/json'); res.setHeader('cache-control', 'no-store'); return res.end(JSON.stringify(seen)); }
    seen[req.url] = (seen[req.url] ?? 0) + 1;
    next();
  });
} };
export default { plugins: [count, devTunnel(${pluginOptions})], optimizeDeps: { noDiscovery: true, include: [] } };
`,
  );
  return dir;
}

describe('speculative delivery with Vite', () => {
  const suite = useDevServerSuite();
  const { dispatcher, children } = suite;

  async function vite(dir: string, env: Record<string, string> = {}): Promise<string> {
    const child = runBin(VITE, ['--clearScreen', 'false', dir, '--port', '0', '--host', '127.0.0.1'], pluginEnv(suite.server.url, { DEVTUNNEL_INSPECT: 'false', ...env }));
    children.push(child);
    const line = await child.waitForLine((l) => l.includes('devtunnel') && l.includes('connected:'), 30_000);
    return `http://127.0.0.1:${/:(\d+) →/.exec(line)![1]}`;
  }

  const get = (url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Fetched> => fetchBuffer(url, { dispatcher, method: method as 'GET', headers: { cookie: 'devtunnel=ann; sid=1', ...headers } });
  const pushed = (r: Fetched) => r.headers['x-devtunnel-push'] === 'hit';
  const seen = async (base: string) => (await get(`${base}/__seen`)).json<Record<string, number>>();
  const metric = (name: string) => metricSum(suite.server, name, dispatcher);

  /** The page as a browser loads it: each module after the one that names it. */
  async function load(base: string, headers: Record<string, string> = {}): Promise<Record<string, Fetched>> {
    const out: Record<string, Fetched> = {};
    out['/'] = await get(`${base}/`, { accept: 'text/html', ...headers });
    out['/style.css'] = await get(`${base}/style.css`, { accept: 'text/css,*/*;q=0.1', ...headers });
    for (const url of ['/@vite/client', '/main.js', '/a.js', '/b.js', '/c.js']) out[url] = await get(`${base}${url}`, { accept: '*/*', ...headers });
    return out;
  }

  test("a page's modules come from pushes, each fetched from Vite once; a reload sends validators", async () => {
    const base = await vite(project());
    const hitsBefore = await metric('devtunnel_push_hits_total');
    const first = await load(base);
    expect(first['/']!.status).toBe(200);
    expect(pushed(first['/']!)).toBe(false);
    for (const url of ['/style.css', '/@vite/client', '/main.js', '/a.js', '/b.js', '/c.js']) {
      expect([url, first[url]!.status, pushed(first[url]!)]).toEqual([url, 200, true]);
    }
    expect(first['/style.css']!.text).toContain('rebeccapurple');
    expect(first['/b.js']!.text).toContain('/c.js');
    expect(await metric('devtunnel_push_hits_total')).toBe(hitsBefore + 6);
    const counts = await seen(base);
    for (const url of ['/', '/style.css', '/@vite/client', '/main.js', '/a.js', '/b.js', '/c.js']) expect([url, counts[url]]).toEqual([url, 1]);

    // A reload with a warm cache: conditional requests, answered 304 from validator pushes.
    const etag = (r: Fetched) => String(r.headers.etag);
    const reload = await get(`${base}/`, { accept: 'text/html', 'if-none-match': etag(first['/']!) });
    expect(reload.status).toBe(304);
    const bytesBefore = await metric('devtunnel_push_bytes_received_total');
    for (const url of ['/main.js', '/a.js', '/b.js', '/c.js']) {
      const r = await get(`${base}${url}`, { accept: '*/*', 'if-none-match': etag(first[url]!) });
      expect([url, r.status, pushed(r)]).toEqual([url, 304, true]);
    }
    // Validators carry no body: the reload pushed next to nothing.
    expect(await metric('devtunnel_push_bytes_received_total')).toBe(bytesBefore);
  }, 60_000);

  test('never for another browser, another query, another method, a range, or a hard reload', async () => {
    const base = await vite(project());
    await get(`${base}/`, { accept: 'text/html' });
    // Each of these waits for the push it might take, then must go to Vite instead.
    const other = await get(`${base}/style.css`, { accept: 'text/css,*/*;q=0.1', cookie: 'devtunnel=bob' });
    expect([other.status, pushed(other)]).toEqual([200, false]);
    const query = await get(`${base}/style.css?x=1`, { accept: 'text/css,*/*;q=0.1' });
    expect(pushed(query)).toBe(false);
    const post = await get(`${base}/style.css`, { accept: 'text/css,*/*;q=0.1' }, 'POST');
    expect(pushed(post)).toBe(false);
    const range = await get(`${base}/style.css`, { accept: 'text/css,*/*;q=0.1', range: 'bytes=0-3' });
    expect(pushed(range)).toBe(false);
    const hard = await get(`${base}/style.css`, { accept: 'text/css,*/*;q=0.1', 'cache-control': 'no-cache', pragma: 'no-cache' });
    expect(pushed(hard)).toBe(false);
    // As a script it is another request (Vite answers CSS as a module): not the stylesheet's push.
    const asScript = await get(`${base}/style.css`, { accept: '*/*' });
    expect(pushed(asScript)).toBe(false);
    expect(asScript.text).toContain('import');
    // HEAD takes a GET's push: the headers and the length, no body.
    const head = await get(`${base}/main.js`, { accept: '*/*' }, 'HEAD');
    expect([head.status, pushed(head), head.body.length]).toEqual([200, true, 0]);
    expect(Number(head.headers['content-length'])).toBeGreaterThan(0);
    // The push is still there for the browser it was made for.
    const mine = await get(`${base}/style.css`, { accept: 'text/css,*/*;q=0.1' });
    expect([mine.status, pushed(mine)]).toEqual([200, true]);
  }, 60_000);

  test('an edited module: pushes are dropped, the next load gets the new content', async () => {
    const dir = project();
    const base = await vite(dir);
    const received = await metric('devtunnel_pushes_received_total');
    await get(`${base}/`, { accept: 'text/html' });
    await get(`${base}/main.js`, { accept: '*/*' });
    // a.js pushed and not used yet (the browser has not asked): then the file changes.
    await waitFor(async () => (await metric('devtunnel_pushes_received_total')) >= received + 5, 10_000, 'the pushes of a.js and b.js');
    const dropped = await metric('devtunnel_pushes_dropped_total{reason="invalidated"}');
    writeFileSync(join(dir, 'a.js'), "export const a = 'a, edited';\n");
    await waitFor(async () => (await metric('devtunnel_pushes_dropped_total{reason="invalidated"}')) > dropped, 10_000, 'the pushes to be dropped');
    const a = await get(`${base}/a.js`, { accept: '*/*' });
    expect(a.text).toContain('a, edited');
    expect(pushed(a)).toBe(false);
    // The next load, pushed again or not (a watcher may report the write twice): the new content.
    const next = await load(base);
    expect(next['/a.js']!.text).toContain('a, edited');
  }, 60_000);

  test('speculate: false sends no pushes', async () => {
    const base = await vite(project('{ speculate: false }'));
    const received = await metric('devtunnel_pushes_received_total');
    const page = await load(base);
    for (const url of ['/style.css', '/main.js', '/a.js']) expect([url, pushed(page[url]!)]).toEqual([url, false]);
    expect(await metric('devtunnel_pushes_received_total')).toBe(received);
  }, 60_000);
});
