import { defineConfig } from 'tsup';

export default defineConfig([
  {
    entry: { index: 'src/index.ts', protocol: 'src/protocol.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    clean: true,
    target: 'node20',
    sourcemap: true,
    silent: true,
  },
  {
    // The CLI is an executable, not an import target: ESM only, with a shebang.
    entry: { cli: 'src/cli.ts' },
    format: ['esm'],
    target: 'node20',
    sourcemap: true,
    silent: true,
    banner: { js: '#!/usr/bin/env node' },
  },
]);
