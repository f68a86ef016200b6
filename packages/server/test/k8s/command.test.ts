import { k8sManifestCommand } from '../../src/k8s/command';
import { renderManifests } from '../../src/k8s/manifests';

describe('k8sManifestCommand', () => {
  function run(argv: string[]) {
    let stdout = '';
    let stderr = '';
    const code = k8sManifestCommand(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
    return { code, stdout, stderr };
  }

  test('prints the manifests for its flags, exit code 0', () => {
    const r = run(['--tunnel-ports', '9000-9009', '--port', '8081', '--namespace', 'dt']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toBe(renderManifests({ tunnelPorts: '9000-9009', port: 8081, namespace: 'dt' }));
  });

  test.each([
    [['--tunnel-ports', '9100-9000'], 'tunnelPorts'],
    [['--port', 'http'], 'port'],
    [['--port', '9005'], 'port'],
    [['--nope'], 'nope'],
    [['--namespace'], 'namespace'],
    [['--route'], '--route'],
    [['extra'], 'extra'],
  ])('bad options %j: exit code 2 and a message naming %s, with the usage', (argv, named) => {
    const r = run(argv);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(named);
    expect(r.stderr).toContain('Usage: devtunnel-server k8s-manifest');
  });

  test('--route, repeated: one route each, in order', () => {
    const cart = 'cart:8101=http://cart.shop.svc.cluster.local:80;public-url=https://shop.test.example.com/cart';
    const r = run(['--route', cart, '--route=search:8102=http://search.shop.svc.cluster.local:8080']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toBe(renderManifests({ routes: [cart, 'search:8102=http://search.shop.svc.cluster.local:8080'] }));
  });

  test.each([
    [['--route', 'cart'], 'must be NAME:PORT=URL'],
    [['--route', 'cart:8101=http://cart.shop.svc/cart'], 'the upstream must be the app\'s origin only'],
    [['--route', 'cart:9003=http://cart.shop.svc'], 'lies inside tunnelPorts'],
    [['--route', 'cart:8101=http://a', '--route', 'cart:8102=http://b'], 'names "cart" twice'],
    [['--route', 'cart:8101=http://a;public-url=https://b/c,d'], 'contains a comma'],
  ])('a bad route %j: exit code 2 and a message naming --route: %s', (argv, says) => {
    const r = run(argv);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^devtunnel-server k8s-manifest: --route \(option "routes"\) /);
    expect(r.stderr).toContain(says);
    expect(r.stderr).toContain('Usage: devtunnel-server k8s-manifest');
  });

  test('a bad value is named by its flag, with the option behind it', () => {
    expect(run(['--namespace', 'Dev']).stderr).toMatch(/^devtunnel-server k8s-manifest: --namespace \(option "namespace"\) must be a DNS label/);
    expect(run(['--port', '9005']).stderr).toMatch(/^devtunnel-server k8s-manifest: --port \(option "port"\) /);
    expect(run(['--tunnel-ports', '9100-9000']).stderr).toMatch(/^devtunnel-server k8s-manifest: --tunnel-ports \(option "tunnelPorts"\) must be a port range/);
  });

  test('--replicas with --store: the replicas mode, as the API renders it', () => {
    const store = 'redis://redis.devtunnel.svc.cluster.local:6379/0';
    const r = run(['--replicas', '3', '--store', store]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toBe(renderManifests({ replicas: 3, store }));
    expect(r.stdout).toContain('kind: PodDisruptionBudget');
  });

  test.each([
    [['--replicas', '3'], /^devtunnel-server k8s-manifest: --replicas \(option "replicas"\) is 3, but several replicas need --store \(option "store"\)/],
    [['--replicas', 'three', '--store', 'redis://r:6379'], /^devtunnel-server k8s-manifest: --replicas must be a whole number/],
    [['--replicas', '0', '--store', 'redis://r:6379'], /^devtunnel-server k8s-manifest: --replicas \(option "replicas"\) must be a whole number from 1 to 100/],
    [['--replicas', '3', '--store', 'http://redis:6379'], /^devtunnel-server k8s-manifest: --store \(option "store"\) must be a redis:\/\/ or rediss:\/\/ URL/],
    [['--store', 'redis://r:6379', '--state-file', '/data/state.json'], /^devtunnel-server k8s-manifest: --state-file \(option "stateFile"\) cannot be used with --store/],
    [['--store', 'redis://:hunter2@r:6379'], /^devtunnel-server k8s-manifest: --store \(option "store"\) must not hold a password/],
  ])('%j: exit code 2, the flag named, with the usage', (argv, message) => {
    const r = run(argv);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toContain('hunter2');
    expect(r.stderr).toContain('Usage: devtunnel-server k8s-manifest');
  });

  test('--ingress-host sets the Ingress host name', () => {
    const r = run(['--ingress-host', 'tunnels.dev.example.org']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toBe(renderManifests({ ingressHost: 'tunnels.dev.example.org' }));
  });

  // --host is devtunnel-server's bind address; here it once meant the Ingress's host name.
  test.each([[['--host', 'devtunnel.example.com']], [['--host=devtunnel.example.com']], [['--tunnel-ports', '9000-9009', '--host']]])(
    '%j: exit code 2, pointing to --ingress-host, with the usage',
    (argv) => {
      const r = run(argv);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^devtunnel-server k8s-manifest: --host is devtunnel-server's bind address/);
      expect(r.stderr).toContain("for the Ingress's host name use --ingress-host");
      expect(r.stderr).toContain('Usage: devtunnel-server k8s-manifest');
    },
  );

  test('--help: the usage on stdout, exit code 0', () => {
    const r = run(['--help']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toContain('--tunnel-ports');
    expect(r.stdout).toContain('--allow-from');
    expect(r.stdout).toContain('--route <value>…');
    expect(r.stdout).toContain('NAME:PORT=URL');
    expect(r.stdout).toContain('--replicas <value>');
    expect(r.stdout).toContain('--store <value>');
    expect(r.stdout).toContain('Several replicas');
  });
});
