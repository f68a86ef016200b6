import { defineConfig } from 'tsup';
import { library } from '../../tsup.base';

// vite is the host, never bundled; only its types are used.
export default defineConfig(library({ index: 'src/index.ts' }, { external: ['vite'] }));
