import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withTunnel } from '@devtunnel/webpack-plugin';

const here = dirname(fileURLToPath(import.meta.url));

// The cluster's web proxy serves this app under /cart/ (examples/cluster/gateway.mjs), hence the
// publicPath. DEVTUNNEL_SERVER and DEVTUNNEL_TOKEN come from the environment.
export default {
  mode: 'development',
  context: here,
  entry: './src/main.js',
  output: { path: join(here, 'dist'), publicPath: '/cart/' },
  devServer: withTunnel({
    port: 'auto',
    hot: true,
    static: { directory: join(here, 'public'), publicPath: '/cart/' },
    devMiddleware: { publicPath: '/cart/' },
  }),
};
