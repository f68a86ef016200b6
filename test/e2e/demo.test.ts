import { join } from 'node:path';
import { ROOT, runBin } from '../helpers/child';
import { fetchBuffer, portRange } from '../helpers/tunnel';

/** `npm run demo` is the README's main command: it must start, serve the story, and stop cleanly. */
describe('npm run demo (examples/cluster/demo.mjs)', () => {
  test('prints one URL; the page shows the cart from the laptop; Ctrl+C stops everything', async () => {
    const demo = runBin(join(ROOT, 'examples/cluster/demo.mjs'), [], { DEVTUNNEL_TUNNEL_PORTS: portRange() });
    try {
      const line = await demo.waitForLine((l) => /Open http:\/\/127\.0\.0\.1:\d+\/__override\/demo/.test(l), 60_000);
      const shop = /(http:\/\/127\.0\.0\.1:\d+)/.exec(line)![1]!;
      const override = await fetchBuffer(`${shop}/__override/demo`);
      expect(override.status).toBe(302);
      const cookie = String(override.headers['set-cookie']).split(';')[0]!;
      const page = await fetchBuffer(`${shop}/`, { headers: { cookie } });
      expect(page.text).toContain('routed to your laptop');
      const cart = await fetchBuffer(`${shop}/cart/`, { headers: { cookie } });
      expect(cart.text).toContain('<title>Cart · served from your laptop</title>');
      expect(cart.text).toContain('/cart/@vite/client');
      // An API client names the tunnel in a header instead.
      const api = await fetchBuffer(`${shop}/cart/`, { headers: { 'x-devtunnel': 'demo' } });
      expect(api.text).toContain('<title>Cart · served from your laptop</title>');
      // Without the cookie the gateway serves the cluster's own cart.
      expect((await fetchBuffer(`${shop}/cart/`)).text).toContain("cluster's own cart");
      expect(await demo.stop('SIGINT')).toBe(0);
      expect(demo.lines.join('\n')).toContain('everything stopped');
    } finally {
      await demo.stop('SIGKILL');
    }
  }, 90_000);
});
