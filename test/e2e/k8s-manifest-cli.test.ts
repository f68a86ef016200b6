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

  test.each(['devtunnel.yaml', 'devtunnel-replicas.yaml'])('with the command in its first lines it prints examples/k8s/%s, exactly, and starts no server', async (file) => {
    const example = readFileSync(join(ROOT, 'examples/k8s', file), 'utf8');
    // The header's command line, as a shell splits it (plain words and '…').
    const line = /^# {3}devtunnel-server k8s-manifest (.*)$/m.exec(example)?.[1] ?? '';
    const argv = [...line.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!);
    expect(argv).toContain('--route');
    const child = run(argv);
    expect(await child.exited()).toBe(0);
    expect(`${child.lines.join('\n')}\n`).toBe(example);
    expect(child.stderr()).toBe('');
  });

  test('with no options: no route, no routes Service, eight objects', async () => {
    const child = run([]);
    expect(await child.exited()).toBe(0);
    const text = `${child.lines.join('\n')}\n`;
    expect(text).not.toContain('devtunnel-routes');
    expect(text).not.toContain('DEVTUNNEL_ROUTES');
    expect(text.match(/^kind: /gm)).toHaveLength(8);
  });

  test('--replicas 3 --store: a Deployment of three rolled one at a time, a disruption budget, no volume', async () => {
    // DEVTUNNEL_STORE in the environment (set for the server) is not the generator's.
    const child = runBin(SERVER_BIN, ['k8s-manifest', '--replicas', '3', '--store', 'rediss://redis.example.com:6380/1'], { DEVTUNNEL_STORE: 'redis://elsewhere:6379' });
    children.push(child);
    expect(await child.exited()).toBe(0);
    const text = `${child.lines.join('\n')}\n`;
    expect(text).toMatch(/^ {2}replicas: 3$/m);
    expect(text).toContain('kind: PodDisruptionBudget');
    expect(text).toContain('value: http://$(POD_IP):8080');
    expect(text).toContain('--from-literal=url=rediss://redis.example.com:6380/1');
    expect(text).not.toContain('elsewhere');
    expect(text).not.toContain('PersistentVolumeClaim');
  });

  test('--replicas 3 without --store: exit code 2, both flags named, nothing on stdout', async () => {
    const child = run(['--replicas', '3']);
    expect(await child.exited()).toBe(2);
    expect(child.stderr()).toMatch(/^devtunnel-server k8s-manifest: --replicas \(option "replicas"\) is 3, but several replicas need --store/);
    expect(child.lines).toEqual([]);
  });

  test('a bad route: exit code 2, --route named on stderr, nothing on stdout', async () => {
    const child = run(['--route', 'cart:8101=http://cart.shop.svc.cluster.local/cart']);
    expect(await child.exited()).toBe(2);
    expect(child.stderr()).toMatch(/^devtunnel-server k8s-manifest: --route \(option "routes"\) "cart": the upstream must be the app's origin only/);
    expect(child.lines).toEqual([]);
  });

  test('a bad range: exit code 2, the option named on stderr, nothing on stdout', async () => {
    const child = run(['--tunnel-ports', '9100-9000']);
    expect(await child.exited()).toBe(2);
    expect(child.stderr()).toContain('tunnelPorts');
    expect(child.lines).toEqual([]);
  });
});
