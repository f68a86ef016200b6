import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  target: 'node20',
  sourcemap: true,
  silent: true,
  // the hosts are never bundled; only their shapes are used.
  external: ['webpack', 'webpack-dev-server', '@rspack/core', '@rspack/dev-server'],
});
