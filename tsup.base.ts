import type { Options } from 'tsup';

/**
 * What every package's build shares: Node 20 output with source maps that point at the sources
 * without embedding them (embedded, they were two thirds of a tarball), quiet.
 */
const common = {
  target: 'node20',
  sourcemap: true,
  silent: true,
  esbuildOptions(options) {
    options.sourcesContent = false;
  },
} satisfies Options;

/** An importable entry: ESM and CommonJS with type declarations. */
export function library(entry: Record<string, string>, more: Options = {}): Options {
  return { ...common, entry, format: ['esm', 'cjs'], dts: true, clean: true, ...more };
}

/**
 * A library with a CLI (`src/cli/main.ts`, which starts with its shebang): the ESM build holds
 * both, so they share one chunk instead of the CLI bundling the library again; the CommonJS build
 * holds the library only. Each build cleans only the files it writes, as the two run at once.
 */
export function libraryWithCli(entry: Record<string, string>, more: Options = {}): Options[] {
  return [
    { ...common, entry: { ...entry, cli: 'src/cli/main.ts' }, format: ['esm'], dts: { entry }, clean: ['*.js', '*.js.map', '*.d.ts'], ...more },
    { ...common, entry, format: ['cjs'], dts: { entry }, clean: ['*.cjs', '*.cjs.map', '*.d.cts'], ...more },
  ];
}
