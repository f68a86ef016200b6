import { defineConfig } from 'tsup';
import { library } from '../../tsup.base';

// The hosts are never bundled; only their shapes are used.
export default defineConfig(library({ index: 'src/index.ts' }, { external: ['webpack', 'webpack-dev-server', '@rspack/core', '@rspack/dev-server'] }));
