import devTunnel from '@devtunnel/vite-plugin';
import { defineConfig } from 'vite';

// This app is the shop's cart. The cluster's web proxy serves the cart under /cart/ (see
// examples/cluster/gateway.mjs), so Vite's base is that prefix; `route: 'cart'` makes the tunnel
// serve the tunnel server's route of that name, for the browsers that select this tunnel (the
// plugin prints the link that does it). DEVTUNNEL_SERVER and DEVTUNNEL_TOKEN come from the
// environment.
export default defineConfig({
  base: '/cart/',
  plugins: [devTunnel({ route: 'cart' })],
});
