import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { serverFlags } from '../../src/cli/flags';
import { k8sFlags, k8sManifestDefaults, resolveK8sManifestOptions, type K8sManifestOptions } from '../../src/k8s/options';

const ROOT = join(__dirname, '..', '..', '..', '..');

describe('resolveK8sManifestOptions', () => {
  test('the default image tag is the package version', () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'packages/server/package.json'), 'utf8')) as { version: string };
    expect(k8sManifestDefaults.image).toBe(`devtunnel-server:${version}`);
  });

  test.each([
    ['tunnelPorts', { tunnelPorts: '9100-9000' }],
    ['tunnelPorts', { tunnelPorts: 'all' }],
    ['tunnelPorts', { tunnelPorts: '1-30000' }],
    ['port', { port: 9050 }],
    ['port', { port: 0 }],
    ['namespace', { namespace: 'Dev_Tunnel' }],
    // Shared namespaces would get the Namespace document's Pod Security label.
    ['namespace', { namespace: 'default' }],
    ['namespace', { namespace: 'kube-system' }],
    ['image', { image: 'has space' }],
    ['ingressHost', { ingressHost: 'https://devtunnel.example.com' }],
    ['stateFile', { stateFile: 'state.json' }],
    ['stateFile', { stateFile: '/state.json' }],
    ['stateFile', { stateFile: '/data/../state.json' }],
    // A volume over the image's /app (or /usr, /etc…) hides the server itself: the pod crash-loops.
    ['stateFile', { stateFile: '/app/state.json' }],
    ['stateFile', { stateFile: '/usr/state.json' }],
    ['stateFile', { stateFile: '/etc/state.json' }],
    ['stateFile', { stateFile: '/proc/devtunnel/state.json' }],
    ['ingressClass', { ingressClass: 'Nginx!' }],
    ['allowFrom', { allowFrom: 'ingress-nginx' }],
    ['allowFrom', { allowFrom: 'a=b,c' }],
    // Routes: the server's own rules (resolveRoute, then one name and one port each)…
    ['routes', { routes: ['cart'] }],
    ['routes', { routes: ['cart:8101=ftp://cart.shop.svc'] }],
    ['routes', { routes: ['cart:8101=http://cart.shop.svc/cart'] }],
    ['routes', { routes: ['Cart:8101=http://cart.shop.svc'] }],
    ['routes', { routes: ['cart:8101=http://cart.shop.svc;offline=maybe'] }],
    ['routes', { routes: ['cart:8080=http://cart.shop.svc'] }],
    ['routes', { routes: ['cart:9050=http://cart.shop.svc'] }],
    ['routes', { routes: ['cart:8101=http://cart.shop.svc', 'cart:8102=http://cart.shop.svc'] }],
    ['routes', { routes: ['cart:8101=http://cart.shop.svc', 'search:8101=http://search.shop.svc'] }],
    // …and the manifests': a Service port name route-<name> is a DNS label; DEVTUNNEL_ROUTES is a
    // comma list; the header comment is one line of ASCII.
    ['routes', { routes: [`${'a'.repeat(58)}:8101=http://cart.shop.svc`] }],
    ['routes', { routes: ['cart-:8101=http://cart.shop.svc'] }],
    ['routes', { routes: ['cart:8101=http://cart.shop.svc;public-url=https://shop.example/a,b'] }],
    ['routes', { routes: ['cart:8101=http://cart.shop.svc;public-url=https://shop.example/\ncart'] }],
    ['routes', { routes: ['cart:8101=http://café.shop.svc'] }],
    ['routes', { routes: 'cart:8101=http://cart.shop.svc' }],
    ['routes', { routes: [{ name: 'cart', port: 8101, upstream: 'http://cart.shop.svc' }] }],
    // Replicas: a count; above 1 only with a store, which is a Redis URL without a password (the
    // output repeats it), and which keeps the reservations instead of a state file.
    ['replicas', { replicas: 0 }],
    ['replicas', { replicas: 1.5 }],
    ['replicas', { replicas: 101 }],
    ['replicas', { replicas: '3' }],
    ['replicas', { replicas: 3 }],
    ['store', { store: 'http://redis.devtunnel.svc:6379' }],
    ['store', { store: 'redis.devtunnel.svc:6379' }],
    ['store', { store: 'redis:///0' }],
    ['store', { store: 'redis://:hunter2@redis.devtunnel.svc:6379/0' }],
    ['store', { store: 'redis://devtunnel:hunter2@redis.devtunnel.svc:6379/0' }],
    ['store', { store: 'redis://rédis.devtunnel.svc:6379' }],
    ['store', { store: 6379 }],
    ['stateFile', { store: 'redis://redis.devtunnel.svc:6379', stateFile: '/data/state.json' }],
  ])('refuses a bad %s, naming it', (option, patch) => {
    expect(() => resolveK8sManifestOptions(patch as K8sManifestOptions)).toThrow(expect.objectContaining({ code: 'invalid_option', message: expect.stringContaining(`"${option}"`) }));
  });
});

describe('resolveK8sManifestOptions: replicas and the store', () => {
  test('several replicas without a store: the message names both flags and what to do', () => {
    expect(() => resolveK8sManifestOptions({ replicas: 3 })).toThrow(/option "replicas" is 3, but several replicas need --store \(option "store"\).*add --store redis:\/\/HOST:PORT\[\/DB\], or leave --replicas at 1/);
  });

  test('a password in the store URL is refused without being repeated', () => {
    let message = '';
    try {
      resolveK8sManifestOptions({ replicas: 2, store: 'redis://devtunnel:hunter2@redis.devtunnel.svc:6379/0' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('must not hold a password');
    expect(message).toContain('devtunnel-store');
    expect(message).not.toContain('hunter2');
  });

  test('a store switches the mode, with one replica or several; without one nothing changes', () => {
    expect(resolveK8sManifestOptions({})).toMatchObject({ replicas: 1, store: undefined, replicated: false });
    expect(resolveK8sManifestOptions({ replicas: 1 })).toMatchObject({ replicas: 1, store: undefined, replicated: false });
    expect(resolveK8sManifestOptions({ store: ' redis://redis.devtunnel.svc:6379/0 ' })).toMatchObject({ replicas: 1, store: 'redis://redis.devtunnel.svc:6379/0', replicated: true });
    // TLS, a user name (Redis ACL) and a database number are fine.
    expect(resolveK8sManifestOptions({ replicas: 4, store: 'rediss://devtunnel@redis.example.com:6380/2' })).toMatchObject({ replicas: 4, replicated: true });
    // The server's own rules apply with a store too: a route on the control port is refused.
    expect(() => resolveK8sManifestOptions({ store: 'redis://r:6379', routes: ['cart:8080=http://cart.shop.svc'] })).toThrow(expect.objectContaining({ code: 'invalid_option' }));
  });
});

describe('k8sFlags', () => {
  // One meaning per flag name across the server's commands: --host is the bind address, so the
  // Ingress's host name is --ingress-host.
  test('a flag devtunnel-server also has sets the option of the same name there', () => {
    const server = new Map(serverFlags.map((f) => [f.flag, f.option]));
    const shared = k8sFlags.filter((f) => server.has(f.flag));
    expect(shared.map((f) => f.flag)).toEqual(['tunnel-ports', 'port', 'store', 'state-file', 'route']);
    for (const f of shared) expect(server.get(f.flag)).toBe(f.option);
    expect(k8sFlags.map((f) => f.flag)).not.toContain('host');
    expect(k8sFlags.find((f) => f.option === 'ingressHost')?.flag).toBe('ingress-host');
  });

  test('--route is repeatable, as the server\'s, with no default to show', () => {
    const route = k8sFlags.find((f) => f.flag === 'route');
    expect(route).toMatchObject({ option: 'routes', kind: 'repeat' });
    expect(route?.default).toBeUndefined();
    expect(serverFlags.find((f) => f.flag === 'route')?.kind).toBe('repeat');
  });

  test('routes pass as given (trimmed), with the server\'s reading beside them', () => {
    const o = resolveK8sManifestOptions({ routes: [' cart:8101=http://cart.shop.svc.cluster.local:80;offline=error'] });
    expect(o.routes).toEqual(['cart:8101=http://cart.shop.svc.cluster.local:80;offline=error']);
    expect(o.resolvedRoutes).toMatchObject([{ name: 'cart', port: 8101, upstream: 'http://cart.shop.svc.cluster.local', offline: 'error' }]);
    expect(resolveK8sManifestOptions({}).resolvedRoutes).toEqual([]);
  });

  test('no environment variables: DEVTUNNEL_* configure the server, never the generator', () => {
    for (const f of k8sFlags) expect(f.env).toBeUndefined();
  });
});
