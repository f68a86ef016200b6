import { join } from 'node:path';
import { ROOT, runBin } from '../helpers/child';
import { fetchBuffer, portRange } from '../helpers/tunnel';

const SERVED_BY = 'x-devtunnel-served-by';
/** `name=value` of the Set-Cookie whose name is `name`. */
const cookieOf = (setCookie: string | string[] | undefined, name: string) => [setCookie ?? []].flat().find((c) => c.startsWith(`${name}=`))?.split(';')[0];

/**
 * `npm run demo` is the README's main command: it must start, serve the story, and stop cleanly.
 * The story: a static web proxy sends /cart/ to the tunnel server's route `cart`; a request that
 * selects the laptop's tunnel gets Vite, every other one the cluster's own cart app.
 */
describe('npm run demo (examples/cluster/demo.mjs)', () => {
  test('prints the route link; the link page switches /cart/ to the laptop and back; Ctrl+C stops everything', async () => {
    const demo = runBin(join(ROOT, 'examples/cluster/demo.mjs'), [], { DEVTUNNEL_TUNNEL_PORTS: portRange() });
    try {
      const line = await demo.waitForLine((l) => /Open http:\/\/127\.0\.0\.1:\d+\/cart\/__devtunnel\/\?use=[a-z0-9-]+/.test(l), 60_000);
      const [, shop, name] = /(http:\/\/127\.0\.0\.1:\d+)\/cart\/__devtunnel\/\?use=([a-z0-9-]+)/.exec(line)!;
      // The Vite app said the same link itself (the plugin logs it once registered).
      expect(demo.lines.some((l) => l.includes('vite │') && l.includes(`turn it on in a browser: ${shop}/cart/__devtunnel/?use=${name}`))).toBe(true);

      // The site's pages come from the site app, not through the route.
      const home = await fetchBuffer(`${shop}/`);
      expect(home.text).toContain('id="cart-frame"');
      expect(home.headers[SERVED_BY]).toBeUndefined();

      // Without a selection the route serves the cluster's own cart app.
      const clusters = await fetchBuffer(`${shop}/cart/`);
      expect(clusters.text).toContain("The cluster's own cart app.");
      expect(clusters.headers[SERVED_BY]).toBe('upstream');

      // The link page offers the laptop's tunnel; its form (same origin, with the page's token) selects it.
      const linkPage = await fetchBuffer(`${shop}/cart/__devtunnel/?use=${name}`);
      expect(linkPage.status).toBe(200);
      expect(linkPage.text).toContain(`Use ${name}</button>`);
      const pageCookie = cookieOf(linkPage.headers['set-cookie'], 'devtunnel_page')!;
      const token = /name="token" value="([0-9a-f]{32})"/.exec(linkPage.text)![1]!;
      const form = { 'content-type': 'application/x-www-form-urlencoded', cookie: pageCookie };
      const use = await fetchBuffer(`${shop}/cart/__devtunnel/`, { method: 'POST', headers: form, body: new URLSearchParams({ token, use: name! }).toString() });
      expect(use.status).toBe(303);
      // Relative to the page, as the browser sees it: /cart/__devtunnel/ → /cart/.
      expect(new URL(use.headers.location as string, `${shop}/cart/__devtunnel/`).href).toBe(`${shop}/cart/`);
      const cookie = cookieOf(use.headers['set-cookie'], 'devtunnel')!;
      expect(cookie).toBe(`devtunnel=${name}`);
      expect(String(use.headers['set-cookie'])).toContain('Path=/');

      // With the cookie, /cart/ is the laptop's Vite, through the tunnel.
      const laptops = await fetchBuffer(`${shop}/cart/`, { headers: { cookie } });
      expect(laptops.text).toContain('<title>Cart · served from your laptop</title>');
      expect(laptops.text).toContain('/cart/@vite/client');
      expect(laptops.headers[SERVED_BY]).toBe(`tunnel ${name}`);
      // An API client names the tunnel in a header instead.
      const api = await fetchBuffer(`${shop}/cart/`, { headers: { 'x-devtunnel': name! } });
      expect(api.text).toContain('<title>Cart · served from your laptop</title>');
      expect(api.headers[SERVED_BY]).toBe(`tunnel ${name}`);
      // The rest of the site is unchanged by the cookie.
      expect((await fetchBuffer(`${shop}/`, { headers: { cookie } })).text).toContain('id="cart-frame"');

      // "Turn off" clears the cookie; the cluster's cart is back.
      const off = await fetchBuffer(`${shop}/cart/__devtunnel/`, { method: 'POST', headers: { ...form, cookie: `${pageCookie}; ${cookie}` }, body: new URLSearchParams({ token, off: '1' }).toString() });
      expect(off.status).toBe(303);
      expect(String(off.headers['set-cookie'])).toMatch(/^devtunnel=; Path=\/; Max-Age=0/);
      const again = await fetchBuffer(`${shop}/cart/`);
      expect(again.text).toContain("The cluster's own cart app.");
      expect(again.headers[SERVED_BY]).toBe('upstream');

      expect(await demo.stop('SIGINT')).toBe(0);
      expect(demo.lines.join('\n')).toContain('everything stopped');
    } finally {
      // Ctrl+C, as a user stops it: the demo ends its children (a SIGKILL would orphan its tunnel
      // server and Vite when an assertion failed); stop() kills it after 10 s if it hangs.
      await demo.stop('SIGINT');
    }
  }, 90_000);
});
