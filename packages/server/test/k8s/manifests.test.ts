import { readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { readFlags } from '@devtunnel/core/protocol';
import { parse, parseAllDocuments } from 'yaml';
import { serverFlags } from '../../src/cli/flags';
import { k8sManifestCommand } from '../../src/k8s/command';
import { renderManifests, TOKEN_PLACEHOLDER } from '../../src/k8s/manifests';
import { yamlString } from '../../src/k8s/yaml';
import { k8sManifestDefaults, k8sNames, type K8sManifestOptions } from '../../src/k8s/options';
import { resolveServerOptions, serverDefaults, type ServerOptions } from '../../src/options';
import { resolveRoute } from '../../src/routes/config';

type Obj = Record<string, any>;

const ROOT = join(__dirname, '..', '..', '..', '..');

/** A store as the operator's Secret would hold it, and the URL the examples use. */
const STORE = 'redis://devtunnel-redis.devtunnel.svc.cluster.local:6379/0';
const TOKEN = 'a-real-token-0123456789';
const POD_IP = '10.1.2.3';

/** The `DEVTUNNEL_*` variables the image sets (packages/server/Dockerfile's ENV): the container's own override them. */
const IMAGE_ENV = Object.fromEntries(
  [...readFileSync(join(ROOT, 'packages/server/Dockerfile'), 'utf8').matchAll(/^\s*(?:ENV\s+)?(DEVTUNNEL_[A-Z_]+)=(\S+?)\s*\\?$/gm)].map((m) => [m[1]!, m[2]!]),
);

/**
 * The container's environment as the kubelet builds it: the image's, then each entry in order,
 * `$(VAR)` expanded from the entries before it; Secrets and pod fields from the arguments. A
 * missing Secret key fails unless the reference is optional, as the pod would not start.
 */
function kubeletEnv(entries: Obj[], secrets: Record<string, Record<string, string>>, fields: Record<string, string> = { 'status.podIP': POD_IP }): Record<string, string> {
  const defined: Record<string, string> = {};
  for (const e of entries) {
    let value: string | undefined;
    if (e.value !== undefined) value = String(e.value).replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (ref: string, name: string) => defined[name] ?? ref);
    else if (e.valueFrom.fieldRef) value = fields[e.valueFrom.fieldRef.fieldPath];
    else {
      const { name, key, optional } = e.valueFrom.secretKeyRef;
      value = secrets[name]?.[key];
      if (value === undefined && !optional) throw new Error(`the pod waits: Secret ${name} has no key ${key}`);
    }
    if (value !== undefined) defined[e.name] = value;
  }
  return { ...IMAGE_ENV, ...defined };
}

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
  // With a store: no volume, a disruption budget.
  const replicated = options.store !== undefined;
  expect(docs.some((d) => d.kind === 'PersistentVolumeClaim')).toBe(!replicated);
  expect(docs.some((d) => d.kind === 'PodDisruptionBudget')).toBe(replicated);
  return {
    routeService: routed ? find('Service', k8sNames.routeService) : undefined,
    claim: replicated ? undefined : find('PersistentVolumeClaim'),
    budget: replicated ? find('PodDisruptionBudget') : undefined,
    docs,
    namespace: find('Namespace'),
    secret: find('Secret'),
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

  const replicated = options.store !== undefined;
  const services = routes.length > 0 ? ['Service', 'Service', 'Service'] : ['Service', 'Service'];
  const pods = replicated ? ['Deployment', 'PodDisruptionBudget'] : ['PersistentVolumeClaim', 'Deployment'];
  expect(m.docs.map((d) => d.kind)).toEqual(['Namespace', 'Secret', ...pods, ...services, 'Ingress', 'NetworkPolicy']);
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

  // The Deployment: one replica replaced with Recreate, or the replicas rolled one at a time (a new
  // pod ready before an old one goes); its ports and environment from the options.
  expect(m.deployment.spec.replicas).toBe(o.replicas);
  expect(m.deployment.spec.strategy).toEqual(replicated ? { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } } : { type: 'Recreate' });
  expect(matches(m.deployment.spec.selector.matchLabels, pod.metadata.labels)).toBe(true);
  expect(container.image).toBe(o.image);
  const containerPorts = (container.ports as Obj[]).map((p) => p.containerPort);
  expect(containerPorts).toEqual([o.port, ...routes.map((r) => r.port), ...ports]);
  expect(new Set((container.ports as Obj[]).map((p) => p.name)).size).toBe(ports.length + routes.length + 1);
  // IANA service names: at most 15 characters, a letter, no '--'.
  for (const p of container.ports as Obj[]) expect(p.name).toMatch(/^(?=.{1,15}$)(?=.*[a-z])(?!.*--)[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  // In order: Kubernetes expands $(POD_IP) only from the entries before.
  const env = (container.env as Obj[]).map((e) => [e.name, e.value ?? e.valueFrom]);
  expect(env).toEqual([
    ['DEVTUNNEL_HOST', '0.0.0.0'],
    ['DEVTUNNEL_PORT', String(o.port)],
    ['DEVTUNNEL_TUNNEL_PORTS', o.tunnelPorts],
    // With a store, empty: the image's state file would stop the server.
    ['DEVTUNNEL_STATE_FILE', replicated ? '' : o.stateFile],
    ...(routes.length > 0 ? [['DEVTUNNEL_ROUTES', o.routes.join(',')]] : []),
    ...(replicated
      ? [
          ['POD_IP', { fieldRef: { fieldPath: 'status.podIP' } }],
          ['DEVTUNNEL_ADVERTISE_URL', `http://$(POD_IP):${o.port}`],
          ['DEVTUNNEL_STORE', { secretKeyRef: { name: k8sNames.storeSecret, key: 'url' } }],
          ['DEVTUNNEL_STORE_PASSWORD', { secretKeyRef: { name: k8sNames.storeSecret, key: 'password', optional: true } }],
        ]
      : []),
    ['DEVTUNNEL_TOKEN', { secretKeyRef: { name: m.secret.metadata.name, key: 'token' } }],
    ['DEVTUNNEL_ADMIN_TOKEN', { secretKeyRef: { name: m.secret.metadata.name, key: 'admin-token', optional: true } }],
  ]);
  // That environment, over the image's, is one the server accepts, read as the server reads its
  // variables, with the same range, the same routes, and the store or the state file.
  const secrets = { [m.secret.metadata.name]: { token: TOKEN }, [k8sNames.storeSecret]: { url: o.store ?? 'unused' } };
  const { values } = readFlags(serverFlags, {}, kubeletEnv(container.env, secrets));
  const resolved = resolveServerOptions(values as ServerOptions);
  expect(resolved.portRange).toEqual({ from: ports[0], to: ports.at(-1) });
  expect(resolved.port).toBe(o.port);
  expect(resolved.routes).toEqual(routes);
  expect(resolved.token).toBe(TOKEN);
  expect([resolved.store, resolved.advertiseUrl, resolved.stateFile]).toEqual(replicated ? [o.store, `http://${POD_IP}:${o.port}`, undefined] : [undefined, undefined, o.stateFile]);
  expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: o.port });
  expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: o.port });
  expect(container.resources.requests).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
  expect(container.resources.limits).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
  expect(container.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
  expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } });
  expect(pod.spec.terminationGracePeriodSeconds).toBeGreaterThan(serverDefaults.drainTimeoutMs / 1000);
  expect(pod.spec.enableServiceLinks).toBe(false);
  if (m.claim) {
    // The state file's directory is the volume, and the volume is the claim.
    expect(container.volumeMounts).toEqual([{ name: 'state', mountPath: posix.dirname(o.stateFile) }]);
    expect(pod.spec.volumes).toEqual([{ name: 'state', persistentVolumeClaim: { claimName: m.claim.metadata.name } }]);
    expect(m.claim.spec.accessModes).toEqual(['ReadWriteOnce']);
    expect(pod.spec.securityContext.fsGroup).toBe(1000);
    expect(pod.spec.topologySpreadConstraints).toBeUndefined();
  } else {
    // The store keeps the reservations: no volume, nothing to own one.
    expect(container.volumeMounts).toBeUndefined();
    expect(pod.spec.volumes).toBeUndefined();
    expect(pod.spec.securityContext.fsGroup).toBeUndefined();
    // Spread over nodes, softly: a small cluster still schedules every replica.
    expect(pod.spec.topologySpreadConstraints).toEqual([{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: m.deployment.spec.selector.matchLabels } }]);
    expect(matches(pod.spec.topologySpreadConstraints[0].labelSelector.matchLabels, pod.metadata.labels)).toBe(true);
  }
  // The disruption budget: one replica away at a time (a node drain), and it selects the pods.
  if (m.budget) {
    expect(m.budget.apiVersion).toBe('policy/v1');
    expect(m.budget.spec).toEqual({ maxUnavailable: 1, selector: { matchLabels: m.deployment.spec.selector.matchLabels } });
    expect(matches(m.budget.spec.selector.matchLabels, pod.metadata.labels)).toBe(true);
  }

  // The Secret holds a placeholder under `token` that the server refuses: never a usable default.
  // The store's Secret is the operator's (its URL may hold a password): never in the output.
  expect(m.docs.filter((d) => d.kind === 'Secret').map((d) => d.metadata.name)).toEqual([k8sNames.secret]);
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

  // The NetworkPolicy: the control port from every namespace (and, with a store, from the replicas
  // themselves, in a rule of its own: the hop), each tunnel port from the proxy's only. Egress
  // stays open: the store, the other replicas, the routes' upstreams.
  expect(matches(m.policy.spec.podSelector.matchLabels, pod.metadata.labels)).toBe(true);
  expect(m.policy.spec.policyTypes).toEqual(['Ingress']);
  const rules = m.policy.spec.ingress as Obj[];
  const allowedFrom = (port: number) => rules.filter((r) => (r.ports as Obj[]).some((p) => p.port === port && p.protocol === 'TCP' && p.endPort === undefined)).map((r) => r.from);
  expect(allowedFrom(o.port)).toEqual([[{ namespaceSelector: {} }], ...(replicated ? [[{ podSelector: { matchLabels: m.deployment.spec.selector.matchLabels } }]] : [])]);
  if (replicated) expect(matches(rules[1]!.from[0].podSelector.matchLabels, pod.metadata.labels)).toBe(true);
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

  test('several replicas with a store: every object, tied to the options', () => {
    // What the store mode must override: the image sets a state file, which the server refuses beside a store.
    expect(IMAGE_ENV).toMatchObject({ DEVTUNNEL_STATE_FILE: '/data/state.json', DEVTUNNEL_PORT: '8080' });
    const m = checkAgainst({ replicas: 3, store: STORE });
    expect(m.deployment.spec.replicas).toBe(3);
    // With routes and every other option (a state file excepted: the store keeps the reservations).
    checkAgainst({
      replicas: 5,
      store: 'rediss://devtunnel@redis.example.com:6380/2',
      tunnelPorts: '20000-20009',
      port: 7000,
      namespace: 'tunnels',
      image: 'registry.example.com/devtunnel-server:1.2.3',
      ingressHost: 'tunnels.dev.example.org',
      ingressClass: 'traefik',
      allowFrom: 'team=platform',
      routes: ['cart:8101=http://cart.shop.svc.cluster.local:80;offline=error'],
    });
    // A store alone: one replica, but rolled like the others (a new pod ready before the old drains).
    expect(checkAgainst({ store: STORE }).deployment.spec.replicas).toBe(1);
  });

  test("with a store: the server gets the Secret's URL and password, and the pod waits for the Secret", () => {
    const container = manifests({ replicas: 2, store: STORE }).deployment.spec.template.spec.containers[0];
    const read = (secrets: Record<string, Record<string, string>>) => resolveServerOptions(readFlags(serverFlags, {}, kubeletEnv(container.env, secrets)).values as ServerOptions);
    // The Secret's URL wins over the one given to the generator: it is what the pods read.
    const withPassword = read({ [k8sNames.secret]: { token: TOKEN }, [k8sNames.storeSecret]: { url: 'rediss://redis.example.com:6380/1', password: 'p4ss' } });
    expect([withPassword.store, withPassword.storePassword, withPassword.advertiseUrl]).toEqual(['rediss://redis.example.com:6380/1', 'p4ss', `http://${POD_IP}:8080`]);
    expect(read({ [k8sNames.secret]: { token: TOKEN }, [k8sNames.storeSecret]: { url: STORE } }).storePassword).toBeUndefined();
    expect(() => read({ [k8sNames.secret]: { token: TOKEN } })).toThrow(`Secret ${k8sNames.storeSecret} has no key url`);
  });

  test('with a store: the header gives --replicas and --store (not --state-file) and the Secret to create', () => {
    const text = renderManifests({ replicas: 3, store: STORE });
    expect(text).toContain(`#   devtunnel-server k8s-manifest --tunnel-ports 9000-9099 --port 8080 --namespace devtunnel --image devtunnel-server:0.1.0 --ingress-host devtunnel.test.example.com --replicas 3 --store ${STORE} --ingress-class nginx `);
    expect(text).not.toContain('--state-file');
    expect(text).toContain(`\n#   kubectl -n devtunnel create secret generic ${k8sNames.storeSecret} --from-literal=url=${STORE}\n`);
    // Regenerating from the header gives the same file.
    let stdout = '';
    expect(k8sManifestCommand(headerCommand(text), { stdout: (t) => (stdout += t), stderr: () => {} })).toBe(0);
    expect(stdout).toBe(text);
    // The egress note names the store's address, the port defaulting to Redis'.
    expect(renderManifests({ store: 'redis://redis.example.com' })).toContain('dial the store (redis.example.com:6379),');
  });

  test('without routes nothing about them: no variable, no Service, no rule', () => {
    const text = renderManifests();
    for (const word of ['DEVTUNNEL_ROUTES', k8sNames.routeService, '--route', 'route ports']) expect(text).not.toContain(word);
  });

  test('without a store nothing about replicas: no variable, no budget, no flag in the header', () => {
    const text = renderManifests({ replicas: 1, routes: ['cart:8101=http://cart.shop.svc:80'] });
    expect(text).toBe(renderManifests({ routes: ['cart:8101=http://cart.shop.svc:80'] }));
    for (const word of ['--replicas', '--store', 'DEVTUNNEL_STORE', 'DEVTUNNEL_ADVERTISE_URL', 'POD_IP', k8sNames.storeSecret, 'PodDisruptionBudget', 'RollingUpdate', 'topologySpread']) expect(text).not.toContain(word);
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
      renderManifests({ replicas: 3, store: 'rediss://user@redis.example.com:6380/2' }),
      renderManifests({ replicas: 3, store: STORE, routes: ['on:8101=http://cart.shop.svc:80'] }),
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
    const replicated = renderManifests({ replicas: 3, store: STORE, routes: ['cart:8101=http://cart.shop.svc:80'] }).split('\n');
    const afterR = (comment: string) => {
      const at = replicated.findIndex((l) => l.trimStart().startsWith(`# ${comment}`));
      expect(at).toBeGreaterThanOrEqual(0);
      return replicated.slice(at + 1).find((l) => !l.trimStart().startsWith('#'))!.trim();
    };
    expect(replicated.filter((l) => l === '---')).toHaveLength(9);
    expect(afterR('The replicas also need the Secret')).toBe('---');
    expect(afterR('3 replicas sharing the store')).toBe('apiVersion: apps/v1');
    expect(afterR('Replicas on different nodes')).toBe('topologySpreadConstraints:');
    expect(afterR('Empty, so unset')).toBe('- name: DEVTUNNEL_STATE_FILE');
    expect(afterR("The pod's address")).toBe('- name: POD_IP');
    expect(afterR('Where the other replicas reach this one')).toBe('- name: DEVTUNNEL_ADVERTISE_URL');
    expect(afterR("The store's URL and its password")).toBe('- name: DEVTUNNEL_STORE');
    expect(afterR('Voluntary disruptions')).toBe('apiVersion: policy/v1');
    expect(afterR('The replicas, one another')).toBe('- from:');
    expect(afterR('Who may connect')).toBe('apiVersion: networking.k8s.io/v1');
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

describe('examples/k8s', () => {
  test.each(['devtunnel.yaml', 'devtunnel-replicas.yaml'])('%s is exactly what the command in its own first lines prints (regenerate with that command, see examples/k8s/README.md)', (file) => {
    const example = readFileSync(join(ROOT, 'examples/k8s', file), 'utf8');
    const argv = headerCommand(example);
    // The examples show a route; the second, replicas on the example Redis.
    expect(argv).toContain('--route');
    if (file === 'devtunnel-replicas.yaml') expect(argv.join(' ')).toContain(`--replicas 3 --store ${STORE}`);
    else expect(argv).not.toContain('--store');
    let stdout = '';
    let stderr = '';
    expect(k8sManifestCommand(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) })).toBe(0);
    expect(stderr).toBe('');
    expect(example).toBe(stdout);
  });

  test('redis.yaml: the Redis of the replicas example, one pod under Pod Security "restricted", reachable by the replicas only', () => {
    const docs = documents(readFileSync(join(ROOT, 'examples/k8s/redis.yaml'), 'utf8'));
    const m = manifests({ replicas: 3, store: STORE });
    const find = (kind: string) => {
      const found = docs.filter((d) => d.kind === kind);
      expect(found).toHaveLength(1);
      return found[0]!;
    };
    expect(docs.map((d) => d.kind).sort()).toEqual(['Deployment', 'NetworkPolicy', 'PersistentVolumeClaim', 'Service']);
    for (const d of docs) expect(d.metadata.namespace).toBe(m.namespace.metadata.name);
    const [service, deployment, claim, policy] = ['Service', 'Deployment', 'PersistentVolumeClaim', 'NetworkPolicy'].map(find) as [Obj, Obj, Obj, Obj];
    // The example store URL is this Service's address.
    const url = new URL(STORE);
    expect(url.hostname).toBe(`${service.metadata.name}.${service.metadata.namespace}.svc.cluster.local`);
    expect(service.spec.ports).toEqual([expect.objectContaining({ port: Number(url.port), protocol: 'TCP' })]);
    const pod = deployment.spec.template;
    expect(matches(service.spec.selector, pod.metadata.labels)).toBe(true);
    // Its own labels: the server's Services and policy must not select it.
    expect(matches(m.control.spec.selector, pod.metadata.labels)).toBe(false);
    // One pod on one ReadWriteOnce volume, every write logged to it.
    expect(deployment.spec.replicas).toBe(1);
    expect(deployment.spec.strategy).toEqual({ type: 'Recreate' });
    expect(claim.spec.accessModes).toEqual(['ReadWriteOnce']);
    expect(pod.spec.volumes).toEqual([{ name: 'data', persistentVolumeClaim: { claimName: claim.metadata.name } }]);
    const container = pod.spec.containers[0];
    expect(container.args.join(' ')).toContain('--appendonly yes');
    expect(container.volumeMounts).toEqual([{ name: 'data', mountPath: '/data' }]);
    // What Pod Security "restricted" asks of every pod of the namespace.
    expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: expect.any(Number), seccompProfile: { type: 'RuntimeDefault' } });
    expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    // Only the tunnel server's pods reach it.
    expect(matches(policy.spec.podSelector.matchLabels, pod.metadata.labels)).toBe(true);
    expect(policy.spec.policyTypes).toEqual(['Ingress']);
    expect(policy.spec.ingress).toEqual([{ from: [{ podSelector: { matchLabels: m.deployment.spec.selector.matchLabels } }], ports: [{ protocol: 'TCP', port: Number(url.port) }] }]);
  });
});
