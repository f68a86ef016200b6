import type { Options } from 'tsup';

/** What every package's build shares: Node 20 output with source maps, quiet. */
const common = { target: 'node20', sourcemap: true, silent: true } satisfies Options;

/** An importable entry: ESM and CommonJS with type declarations. */
export function library(entry: Record<string, string>, more: Options = {}): Options {
  return { ...common, entry, format: ['esm', 'cjs'], dts: true, clean: true, ...more };
}

/** The CLI is an executable, not an import target: ESM only, with a shebang. */
export const cli: Options = { ...common, entry: { cli: 'src/cli/main.ts' }, format: ['esm'], banner: { js: '#!/usr/bin/env node' } };
