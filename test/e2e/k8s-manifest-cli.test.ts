import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, runBin, SERVER_BIN, type Child } from '../helpers/child';

/** `devtunnel-server k8s-manifest` through the built bin, as a platform engineer runs it. */
describe('devtunnel-server k8s-manifest', () => {
  const children: Child[] = [];
  afterEach(async () => {
    await Promise.all(children.splice(0).map((c) => c.stop('SIGKILL')));
  });
  function run(args: string[]): Child {
    // DEVTUNNEL_* variables configure the server, never the generator: set one to prove it.
    const child = runBin(SERVER_BIN, ['k8s-manifest', ...args], { DEVTUNNEL_TUNNEL_PORTS: '1000-1001', DEVTUNNEL_PORT: '1' });
    children.push(child);
    return child;
  }

  test('with no options it prints examples/k8s/devtunnel.yaml, exactly, and starts no server', async () => {
    const child = run([]);
    expect(await child.exited()).toBe(0);
    expect(`${child.lines.join('\n')}\n`).toBe(readFileSync(join(ROOT, 'examples/k8s/devtunnel.yaml'), 'utf8'));
    expect(child.stderr()).toBe('');
  });

  test('a bad range: exit code 2, the option named on stderr, nothing on stdout', async () => {
    const child = run(['--tunnel-ports', '9100-9000']);
    expect(await child.exited()).toBe(2);
    expect(child.stderr()).toContain('tunnelPorts');
    expect(child.lines).toEqual([]);
  });
});
