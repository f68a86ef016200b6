// Starts a real webpack-dev-server 5 or 6, or @rspack/dev-server, through its Node API with
// `withTunnel()` from the built @devtunnel/webpack-plugin, on 127.0.0.1 with port 'auto'. Prints one
// JSON line with the bound port, then runs until SIGTERM.
// Usage: node dev-server.mjs <wds5|wds6|rspack> <project root> [publicPath] [plugin options JSON]
import { join } from 'node:path';
import { withTunnel } from '@devtunnel/webpack-plugin';

const [kind, root, publicPath = '/', pluginJson = '{}'] = process.argv.slice(2);
const config = {
  mode: 'development',
  context: root,
  entry: './src/index.js',
  output: { path: join(root, 'dist'), publicPath },
  infrastructureLogging: { level: 'info' },
  stats: 'none',
};
const devServerOptions = withTunnel(
  {
    host: '127.0.0.1',
    port: 'auto',
    hot: true,
    static: { directory: join(root, 'public'), publicPath },
    devMiddleware: { publicPath },
  },
  JSON.parse(pluginJson),
);

let server;
if (kind === 'rspack') {
  const { rspack } = await import('@rspack/core');
  const { RspackDevServer } = await import('@rspack/dev-server');
  server = new RspackDevServer(devServerOptions, rspack(config));
} else {
  const { default: webpack } = await import('webpack');
  const { default: WebpackDevServer } = await import(kind === 'wds6' ? 'webpack-dev-server6' : 'webpack-dev-server');
  server = new WebpackDevServer(devServerOptions, webpack(config));
}
await server.start();
console.log(JSON.stringify({ port: server.server.address().port }));
process.on('SIGTERM', () => server.stop().then(() => process.exit(0)));
