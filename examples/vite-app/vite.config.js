import devTunnel from '@devtunnel/vite-plugin';
import { defineConfig } from 'vite';

// The cluster's web proxy serves this app under /cart/ (see examples/cluster/gateway.mjs), so Vite's base
// is that prefix. DEVTUNNEL_SERVER and DEVTUNNEL_TOKEN come from the environment.
export default defineConfig({
  base: '/cart/',
  plugins: [devTunnel()],
});
