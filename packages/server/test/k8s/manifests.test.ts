import { readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { readFlags } from '@devtunnel/core/protocol';
import { parse, parseAllDocuments } from 'yaml';
import { serverFlags } from '../../src/cli/flags';
import { k8sManifestCommand } from '../../src/k8s/command';
import { renderManifests, TOKEN_PLACEHOLDER, yamlString } from '../../src/k8s/manifests';
import { k8sManifestDefaults, k8sNames, type K8sManifestOptions } from '../../src/k8s/options';
import { resolveServerOptions, serverDefaults, type ServerOptions } from '../../src/options';
import { resolveRoute } from '../../src/routes/config';

type Obj = Record<string, any>;

const ROOT = join(__dirname, '..', '..', '..', '..');

/** Parses the multi-document YAML strictly (no errors, no warnings), as Kubernetes' YAML 1.1 reader would read it too. */
function documents(text: string): Obj[] {
  const docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
  if (!Array.isArray(docs)) throw new Error('not a document stream');
  for (const d of docs) {
    expect(d.errors).toEqual([]);
    expect(d.warnings).toEqual([]);
  }
  const asJs = docs.map((d) => d.toJS() as Obj);
  // YAML 1.1 (go-yaml, kubectl) must read the very same values: no `on`/`yes`/`0x…` surprises.
  expect(parseAllDocuments(text, { version: '1.1' }).map((d: any) => d.toJS())).toEqual(asJs);
  return asJs;
}

function manifests(options: K8sManifestOptions = {}) {
  const docs = documents(renderManifests(options));
  const find = (kind: string, name?: string) => {
    const found = docs.filter((d) => d.kind === kind && (name === undefined || d.metadata.name === name));
    expect(found).toHaveLength(1);
    return found[0]!;
  };
  const routed = (options.routes ?? []).length > 0;
  // The routes Service exists only with routes: a Service needs a port.
  expect(docs.some((d) => d.kind === 'Service' && d.metadata.name === k8sNames.routeService)).toBe(routed);
  return {
    routeService: routed ? find('Service', k8sNames.routeService) : undefined,
    docs,
    namespace: find('Namespace'),
    secret: find('Secret'),
    claim: find('PersistentVolumeClaim'),
    deployment: find('Deployment'),
    control: find('Service', k8sNames.controlService),
    tunnels: find('Service', k8sNames.tunnelService),
    ingress: find('Ingress'),
    policy: find('NetworkPolicy'),
  };
}

function portsOf(range: string): number[] {
  const [from, to] = range.split('-').map(Number) as [number, number];
  return Array.from({ length: (to ?? from) - from + 1 }, (_, i) => from + i);
}

const matches = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);

/** Every check that ties the manifests to the options: run for the defaults and for other ranges. */
function checkAgainst(options: K8sManifestOptions) {
  const o = { ...k8sManifestDefaults, ...options };
  const m = manifests(options);
  const ports = portsOf(o.tunnelPorts);
  const routes = o.routes.map((r) => resolveRoute(r));
  const pod = m.deployment.spec.template;
  const container = pod.spec.containers[0];

  const services = routes.length > 0 ? ['Service', 'Service', 'Service'] : ['Service', 'Service'];
  expect(m.docs.map((d) => d.kind)).toEqual(['Namespace', 'Secret', 'PersistentVolumeClaim', 'Deployment', ...services, 'Ingress', 'NetworkPolicy']);
  expect(m.namespace.metadata.name).toBe(o.namespace);
  for (const d of m.docs.slice(1)) expect(d.metadata.namespace).toBe(o.namespace);

  // The tunnel Service: every port of the range exactly once, to the same container port.
  const servicePorts = m.tunnels.spec.ports as Obj[];
  expect(servicePorts.map((p) => p.port)).toEqual(ports);
  for (const p of servicePorts) expect(p).toEqual({ name: `t-${p.port}`, port: p.port, targetPort: p.port, protocol: 'TCP' });
  expect(new Set(servicePorts.map((p) => p.name)).size).toBe(ports.length);
  expect(m.control.spec.ports).toEqual([{ name: 'control', port: o.port, targetPort: o.port, protocol: 'TCP' }]);
  for (const service of [m.control, m.tunnels, ...(m.routeService ? [m.routeService] : [])]) expect(matches(service.spec.selector, pod.metadata.labels)).toBe(true);
  // The routes Service: each route's port, named after the route (a DNS label, as Kubernetes wants).
  if (m.routeService) {
    expect(m.routeService.spec.type).toBe('ClusterIP');
    expect(m.routeService.spec.ports).toEqual(routes.map((r) => ({ name: `route-${r.name}`, port: r.port, targetPort: r.port, protocol: 'TCP' })));
    for (const p of m.routeService.spec.ports as Obj[]) expect(p.name).toMatch(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
  }

  // The Deployment: one replica replaced with Recreate, its ports and environment from the options.
  expect(m.deployment.spec.replicas).toBe(1);
  expect(m.deployment.spec.strategy).toEqual({ type: 'Recreate' });
  expect(matches(m.deployment.spec.selector.matchLabels, pod.metadata.labels)).toBe(true);
  expect(container.image).toBe(o.image);
  const containerPorts = (container.ports as Obj[]).map((p) => p.containerPort);
  expect(containerPorts).toEqual([o.port, ...routes.map((r) => r.port), ...ports]);
  expect(new Set((container.ports as Obj[]).map((p) => p.name)).size).toBe(ports.length + routes.length + 1);
  // IANA service names: at most 15 characters, a letter, no '--'.
  for (const p of container.ports as Obj[]) expect(p.name).toMatch(/^(?=.{1,15}$)(?=.*[a-z])(?!.*--)[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  const env = Object.fromEntries((container.env as Obj[]).map((e) => [e.name, e.value ?? e.valueFrom]));
  expect(env).toEqual({
    DEVTUNNEL_HOST: '0.0.0.0',
    DEVTUNNEL_PORT: String(o.port),
    DEVTUNNEL_TUNNEL_PORTS: o.tunnelPorts,
    DEVTUNNEL_STATE_FILE: o.stateFile,
    ...(routes.length > 0 ? { DEVTUNNEL_ROUTES: o.routes.join(',') } : {}),
    DEVTUNNEL_TOKEN: { secretKeyRef: { name: m.secret.metadata.name, key: 'token' } },
    DEVTUNNEL_ADMIN_TOKEN: { secretKeyRef: { name: m.secret.metadata.name, key: 'admin-token', optional: true } },
  });
  // That environment is one the server accepts, read as the server reads its variables, with the
  // same range and the same routes.
  const plain = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => typeof e[1] === 'string'));
  const { values } = readFlags(serverFlags, {}, { ...plain, DEVTUNNEL_TOKEN: 'a-real-token-0123456789' });
  const resolved = resolveServerOptions(values as ServerOptions);
  expect(resolved.portRange).toEqual({ from: ports[0], to: ports.at(-1) });
  expect(resolved.port).toBe(o.port);
  expect(resolved.routes).toEqual(routes);
  expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: o.port });
  expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: o.port });
  expect(container.resources.requests).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
  expect(container.resources.limits).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
  expect(container.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
  expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } });
  expect(pod.spec.terminationGracePeriodSeconds).toBeGreaterThan(serverDefaults.drainTimeoutMs / 1000);
  expect(pod.spec.enableServiceLinks).toBe(false);
  // The state file's directory is the volume, and the volume is the claim.
  expect(container.volumeMounts).toEqual([{ name: 'state', mountPath: posix.dirname(o.stateFile) }]);
  expect(pod.spec.volumes).toEqual([{ name: 'state', persistentVolumeClaim: { claimName: m.claim.metadata.name } }]);
  expect(m.claim.spec.accessModes).toEqual(['ReadWriteOnce']);

  // The Secret holds a placeholder under `token` that the server refuses: never a usable default.
  expect(Object.keys(m.secret.stringData)).toEqual(['token']);
  expect(() => resolveServerOptions({ token: m.secret.stringData.token })).toThrow(expect.objectContaining({ message: expect.stringContaining('"token"') }));
  expect(m.secret.metadata.labels['devtunnel/placeholder']).toBe('true');

  // The Ingress: the host, to the control Service's port.
  expect(m.ingress.spec.ingressClassName).toBe(o.ingressClass);
  expect(m.ingress.spec.rules).toHaveLength(1);
  expect(m.ingress.spec.rules[0].host).toBe(o.ingressHost);
  const paths = m.ingress.spec.rules[0].http.paths as Obj[];
  for (const p of paths) expect(p.backend).toEqual({ service: { name: m.control.metadata.name, port: { number: o.port } } });
  const exposed = (path: string) => paths.some((p) => (p.pathType === 'Exact' ? p.path === path : path.startsWith(p.path)));
  for (const path of ['/api/v1/tunnels', '/api/v1/tunnels/abc/poll', '/healthz', '/readyz', '/dashboard']) expect(exposed(path)).toBe(true);
  expect(exposed('/metrics')).toBe(false);

  // The NetworkPolicy: the control port from every namespace, each tunnel port from the proxy's only.
  expect(matches(m.policy.spec.podSelector.matchLabels, pod.metadata.labels)).toBe(true);
  expect(m.policy.spec.policyTypes).toEqual(['Ingress']);
  const rules = m.policy.spec.ingress as Obj[];
  const allowedFrom = (port: number) => rules.filter((r) => (r.ports as Obj[]).some((p) => p.port === port && p.protocol === 'TCP' && p.endPort === undefined)).map((r) => r.from);
  expect(allowedFrom(o.port)).toEqual([[{ namespaceSelector: {} }]]);
  const proxyLabels = Object.fromEntries(o.allowFrom.split(',').map((pair) => pair.split('=') as [string, string]));
  for (const port of ports) expect(allowedFrom(port)).toEqual([[{ namespaceSelector: { matchLabels: proxyLabels } }]]);
  // The route ports lead to laptops too: the web proxy's namespace only.
  for (const r of routes) expect(allowedFrom(r.port)).toEqual([[{ namespaceSelector: { matchLabels: proxyLabels } }]]);
  // Nothing else is open.
  const open = new Set(rules.flatMap((r) => (r.ports as Obj[]).map((p) => p.port)));
  expect(open).toEqual(new Set([o.port, ...routes.map((r) => r.port), ...ports]));
  return m;
}

describe('renderManifests', () => {
  test('the defaults: every object, tied to the options', () => {
    const m = checkAgainst({});
    expect(m.tunnels.spec.ports).toHaveLength(100);
    expect(m.secret.stringData.token).toBe(TOKEN_PLACEHOLDER);
  });

  test('a range of one port', () => {
    const m = checkAgainst({ tunnelPorts: '9000' });
    expect(m.tunnels.spec.ports).toEqual([{ name: 't-9000', port: 9000, targetPort: 9000, protocol: 'TCP' }]);
  });

  test('a range of 500 ports, and every other option', () => {
    const m = checkAgainst({
      tunnelPorts: '20000-20499',
      port: 7000,
      namespace: 'tunnels',
      image: 'registry.example.com/platform/devtunnel-server:1.2.3@sha256:' + 'a'.repeat(64),
      ingressHost: 'tunnels.dev.example.org',
      stateFile: '/var/lib/devtunnel/state.json',
      ingressClass: 'traefik',
      allowFrom: 'team=platform,kubernetes.io/metadata.name=gateway',
    });
    expect(m.tunnels.spec.ports).toHaveLength(500);
    expect(m.deployment.spec.template.spec.containers[0].volumeMounts[0].mountPath).toBe('/var/lib/devtunnel');
  });

  test('routes: DEVTUNNEL_ROUTES, a container port each, the routes Service, the NetworkPolicy', () => {
    const cart = 'cart:8101=http://cart.shop.svc.cluster.local:80;public-url=https://shop.test.example.com/cart';
    const search = 'search:8102=https://search.shop.svc.cluster.local:8443;offline=error';
    const m = checkAgainst({ tunnelPorts: '9000-9009', routes: [cart, search] });
    expect(m.routeService!.spec.ports.map((p: Obj) => p.name)).toEqual(['route-cart', 'route-search']);
    expect(m.deployment.spec.template.spec.containers[0].ports.slice(0, 3).map((p: Obj) => p.name)).toEqual(['control', 'r-8101', 'r-8102']);
    // Every other option beside routes, too.
    checkAgainst({ tunnelPorts: '20000-20009', port: 7000, namespace: 'tunnels', allowFrom: 'kubernetes.io/metadata.name=istio-ingress', routes: ['a-very-long-route-name-of-exactly-fifty-seven-characters7:7001=http://a.b.svc:80'] });
  });

  test('routes: the text as given (trimmed) is what the server gets, and the header repeats it quoted for a shell', () => {
    const text = renderManifests({ routes: ['  cart:8101=http://cart.shop.svc.cluster.local:80;offline=error '] });
    expect(text).toContain("--allow-from kubernetes.io/metadata.name=ingress-nginx --route 'cart:8101=http://cart.shop.svc.cluster.local:80;offline=error'\n");
    const m = manifests({ routes: ['cart:8101=http://cart.shop.svc.cluster.local:80;offline=error'] });
    expect(m.deployment.spec.template.spec.containers[0].env.find((e: Obj) => e.name === 'DEVTUNNEL_ROUTES').value).toBe('cart:8101=http://cart.shop.svc.cluster.local:80;offline=error');
    // A route without options needs no quotes.
    expect(renderManifests({ routes: ['cart:8101=http://cart.shop.svc:80'] })).toContain(' --route cart:8101=http://cart.shop.svc:80\n');
  });

  test('without routes nothing about them: no variable, no Service, no rule', () => {
    const text = renderManifests();
    for (const word of ['DEVTUNNEL_ROUTES', k8sNames.routeService, '--route', 'route ports']) expect(text).not.toContain(word);
  });

  test('the output starts with the command that regenerates it', () => {
    const text = renderManifests({ tunnelPorts: '9100-9199', namespace: 'dt' });
    expect(text).toContain('#   devtunnel-server k8s-manifest --tunnel-ports 9100-9199 --port 8080 --namespace dt ');
    expect(text.endsWith('\n')).toBe(true);
  });

  test('the rendered YAML parses with no errors or warnings, read as YAML 1.2 and as 1.1', () => {
    for (const text of [
      renderManifests(),
      renderManifests({ tunnelPorts: '20000-20499', port: 7000, namespace: 'tunnels', allowFrom: 'team=platform' }),
      renderManifests({ routes: ["cart:8101=http://cart.shop.svc:80;public-url=https://shop.example/it's#1", 'yes:8102=http://on.shop.svc:8080'] }),
    ]) {
      for (const version of ['1.2', '1.1'] as const) {
        const docs = parseAllDocuments(text, { version, prettyErrors: true, uniqueKeys: true });
        expect(docs).toHaveLength(text.includes('--route') ? 9 : 8);
        for (const d of docs) {
          expect(d.errors).toEqual([]);
          expect(d.warnings).toEqual([]);
        }
      }
    }
  });

  test('every comment stays with what it explains: the header, each manifest, keys and list items', () => {
    const lines = renderManifests().split('\n');
    /** The first line after the comment that starts with `comment`, skipping the comment's other lines. */
    const after = (comment: string) => {
      const at = lines.findIndex((l) => l.trimStart().startsWith(`# ${comment}`));
      expect(at).toBeGreaterThanOrEqual(0);
      return lines.slice(at + 1).find((l) => !l.trimStart().startsWith('#'))!.trim();
    };
    expect(lines[0]).toBe('# devtunnel server on Kubernetes. Generated by:');
    expect(after('devtunnel server on Kubernetes')).toBe('---');
    expect(lines.filter((l) => l === '---')).toHaveLength(8);
    expect(after("The namespace; Pod Security 'restricted'")).toBe('apiVersion: v1');
    expect(after("Above the server's drain budget")).toMatch(/^terminationGracePeriodSeconds: \d+$/);
    expect(after('No {SERVICE}_PORT variables')).toBe('enableServiceLinks: false');
    expect(after("The image's `node` user")).toBe('runAsUser: 1000');
    expect(after('The state volume is writable')).toBe('fsGroup: 1000');
    expect(after('503 while starting or draining')).toBe('readinessProbe:');
    expect(after('500 idle tunnels')).toBe('resources:');
    expect(after('One entry per port rather than endPort')).toBe('- from:');
    const routed = renderManifests({ routes: ['cart:8101=http://cart.shop.svc:80'] }).split('\n');
    const afterIn = (comment: string) => {
      const at = routed.findIndex((l) => l.trimStart().startsWith(`# ${comment}`));
      expect(at).toBeGreaterThanOrEqual(0);
      return routed.slice(at + 1).find((l) => !l.trimStart().startsWith('#'))!.trim();
    };
    expect(afterIn('The routes (--route)')).toBe('- name: DEVTUNNEL_ROUTES');
    expect(afterIn("The routes' ports (cart 8101)")).toBe('apiVersion: v1');
    expect(afterIn('The route ports (8101) lead to laptops too')).toBe('- from:');
  });
});

describe('yamlString', () => {
  test.each([
    'plain', 'yes', 'No', 'on', 'OFF', 'y', 'null', '~', 'true', '', ' ', '8080', '0x1F', '1e3', '1_000', '1:20', '.inf', '.NaN',
    '2001-12-14', 'a: b', 'a #b', '#x', '- x', '-', '?', ':x', '"q"', "it's", 'back\\slash', 'tab\there', 'line\nbreak', 'é', '日本', '😀',
    '\u0085', '\u2028', '\u007f', '@x', '*x', '&x', '!x', '%x', '`x', '{x}', '[x]', 'x ', '|', '>', '=', '<<',
  ])('a string reads back unchanged: %j', (text) => {
    const emitted = `key: ${yamlString(text)}\n`;
    expect(parse(emitted)).toEqual({ key: text });
    expect(parse(emitted, { version: '1.1' })).toEqual({ key: text });
  });
});

/** The command line in a generated file's header, as a shell splits it (plain words and '…'). */
function headerCommand(text: string): string[] {
  const line = /^# {3}devtunnel-server k8s-manifest (.*)$/m.exec(text)?.[1];
  expect(line).toBeDefined();
  return [...line!.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

describe('examples/k8s/devtunnel.yaml', () => {
  test('is exactly what the command in its own first lines prints (regenerate with that command, see examples/k8s/README.md)', () => {
    const example = readFileSync(join(ROOT, 'examples/k8s/devtunnel.yaml'), 'utf8');
    const argv = headerCommand(example);
    // The example shows a route.
    expect(argv).toContain('--route');
    let stdout = '';
    let stderr = '';
    expect(k8sManifestCommand(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) })).toBe(0);
    expect(stderr).toBe('');
    expect(example).toBe(stdout);
  });
});
