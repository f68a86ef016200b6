import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { clientFlags as cliFlags } from '../../packages/core/src/cli/flags';
import { envName, ERROR_CODES } from '../../packages/core/src/protocol';
import { serverFlags } from '../../packages/server/src/cli/flags';
import { serverDefaults } from '../../packages/server/src/options';

/** The README's option tables and error table are checked against the sources they describe. */
const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');

/** Table rows whose first cell is `--flag` (both CLIs have a `--port`, so there may be two). */
function rows(flag: string): string[] {
  return readme.split('\n').filter((line) => line.startsWith(`| \`--${flag}\``));
}

describe('README', () => {
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
    expect(readme).toContain(`\`${code}\``);
  });

  test('shows the two quick-start commands', () => {
    expect(readme).toContain('npm ci && npm run demo');
    expect(readme).toContain('npm ci && npm test');
  });
});
