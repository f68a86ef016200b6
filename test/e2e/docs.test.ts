import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { clientFlags as cliFlags } from '../../packages/core/src/cli/flags';
import { envName, ERROR_CODES } from '../../packages/core/src/protocol';
import { serverFlags } from '../../packages/server/src/cli/flags';
import { serverDefaults } from '../../packages/server/src/options';

/** The docs' option tables and error tables are checked against the sources they describe. */
const doc = (path: string) => readFileSync(join(__dirname, '..', '..', path), 'utf8');
const readme = doc('README.md');
const options = doc('docs/options.md');
const errors = doc('docs/errors.md');

/** Table rows whose first cell is `--flag` (both CLIs have a `--port`, so there may be two). */
function rows(flag: string): string[] {
  return options.split('\n').filter((line) => line.startsWith(`| \`--${flag}\``));
}

describe('docs/options.md and docs/errors.md', () => {
  test.each(cliFlags.map((f) => [f.flag, f]))('documents the client flag --%s', (flag, f) => {
    const line = rows(flag).find((l) => !f.option || l.includes(`\`${f.option}\``));
    expect(line).toBeDefined();
    if ('env' in f) expect(line).toContain(f.env);
  });

  test.each(serverFlags.map((f) => [f.flag, f]))('documents the server flag --%s with its variable and default', (flag, f) => {
    const line = rows(flag).find((l) => l.includes(envName(flag)));
    expect(line).toBeDefined();
    const def = (serverDefaults as Record<string, unknown>)[f.option];
    if (def !== undefined) expect(line).toContain(String(def));
  });

  const userFacing = Object.keys(ERROR_CODES).filter((c) => !['unknown_tunnel', 'unknown_request', 'request_answered', 'browser_gone', 'too_many_polls', 'not_found', 'payload_too_large', 'internal_error', 'invalid_request', 'method_not_supported', 'request_timeout'].includes(c));
  test.each(userFacing)('explains the error %s', (code) => {
    expect(errors).toContain(`\`${code}\``);
  });
});

describe('README', () => {
  test('shows the two quick-start commands', () => {
    expect(readme).toContain('npm ci && npm run demo');
    expect(readme).toContain('npm ci && npm test');
  });
});

describe('links', () => {
  const root = join(__dirname, '..', '..');
  const files = ['README.md', 'ARCHITECTURE.md', ...['docs', 'examples/cluster', 'examples/k8s', 'examples/vite-app', 'examples/webpack-app', 'packages/core', 'packages/server', 'packages/vite-plugin', 'packages/webpack-plugin'].flatMap((dir) =>
    readdirSync(join(root, dir)).filter((f) => f.endsWith('.md')).map((f) => `${dir}/${f}`),
  )];
  const links = (file: string) => [...doc(file).matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!);

  test.each(files)('%s: every link stays in the repository and finds its file', (file) => {
    for (const link of links(file)) {
      expect(link).not.toMatch(/^[a-z]+:/i);
      const target = link.split('#')[0]!;
      if (target) expect(existsSync(join(root, dirname(file), target))).toBe(true);
    }
  });

  test.each(files.filter((f) => f.startsWith('packages/')))('%s: no link leaves the package (it must work from the registry page)', (file) => {
    for (const link of links(file)) expect(link.startsWith('../')).toBe(false);
  });
});
