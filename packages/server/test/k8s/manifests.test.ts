import { readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { renderManifests, TOKEN_PLACEHOLDER, yamlString } from '../../src/k8s/manifests';
import { k8sManifestDefaults, k8sNames, type K8sManifestOptions } from '../../src/k8s/options';
import { resolveServerOptions, serverDefaults } from '../../src/options';

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
  return {
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
  const pod = m.deployment.spec.template;
  const container = pod.spec.containers[0];

  expect(m.docs.map((d) => d.kind)).toEqual(['Namespace', 'Secret', 'PersistentVolumeClaim', 'Deployment', 'Service', 'Service', 'Ingress', 'NetworkPolicy']);
  expect(m.namespace.metadata.name).toBe(o.namespace);
  for (const d of m.docs.slice(1)) expect(d.metadata.namespace).toBe(o.namespace);

  // The tunnel Service: every port of the range exactly once, to the same container port.
  const servicePorts = m.tunnels.spec.ports as Obj[];
  expect(servicePorts.map((p) => p.port)).toEqual(ports);
  for (const p of servicePorts) expect(p).toEqual({ name: `t-${p.port}`, port: p.port, targetPort: p.port, protocol: 'TCP' });
  expect(new Set(servicePorts.map((p) => p.name)).size).toBe(ports.length);
  expect(m.control.spec.ports).toEqual([{ name: 'control', port: o.port, targetPort: o.port, protocol: 'TCP' }]);
  for (const service of [m.control, m.tunnels]) expect(matches(service.spec.selector, pod.metadata.labels)).toBe(true);

  // The Deployment: one replica replaced with Recreate, its ports and environment from the options.
  expect(m.deployment.spec.replicas).toBe(1);
  expect(m.deployment.spec.strategy).toEqual({ type: 'Recreate' });
  expect(matches(m.deployment.spec.selector.matchLabels, pod.metadata.labels)).toBe(true);
  expect(container.image).toBe(o.image);
  const containerPorts = (container.ports as Obj[]).map((p) => p.containerPort);
  expect(containerPorts).toEqual([o.port, ...ports]);
  expect(new Set((container.ports as Obj[]).map((p) => p.name)).size).toBe(ports.length + 1);
  for (const p of container.ports as Obj[]) expect(p.name.length).toBeLessThanOrEqual(15); // IANA service name limit
  const env = Object.fromEntries((container.env as Obj[]).map((e) => [e.name, e.value ?? e.valueFrom]));
  expect(env).toEqual({
    DEVTUNNEL_HOST: '0.0.0.0',
    DEVTUNNEL_PORT: String(o.port),
    DEVTUNNEL_TUNNEL_PORTS: o.tunnelPorts,
    DEVTUNNEL_STATE_FILE: o.stateFile,
    DEVTUNNEL_TOKEN: { secretKeyRef: { name: m.secret.metadata.name, key: 'token' } },
    DEVTUNNEL_ADMIN_TOKEN: { secretKeyRef: { name: m.secret.metadata.name, key: 'admin-token', optional: true } },
  });
  // That environment is one the server accepts, with the same range.
  const resolved = resolveServerOptions({ port: Number(env.DEVTUNNEL_PORT), tunnelPorts: env.DEVTUNNEL_TUNNEL_PORTS, stateFile: env.DEVTUNNEL_STATE_FILE, token: 'a-real-token-0123456789' });
  expect(resolved.portRange).toEqual({ from: ports[0], to: ports.at(-1) });
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

  test('the output starts with the command that regenerates it', () => {
    const text = renderManifests({ tunnelPorts: '9100-9199', namespace: 'dt' });
    expect(text).toContain('#   devtunnel-server k8s-manifest --tunnel-ports 9100-9199 --port 8080 --namespace dt ');
    expect(text.endsWith('\n')).toBe(true);
  });

  test('the rendered YAML parses with no errors or warnings, read as YAML 1.2 and as 1.1', () => {
    for (const text of [renderManifests(), renderManifests({ tunnelPorts: '20000-20499', port: 7000, namespace: 'tunnels', allowFrom: 'team=platform' })]) {
      for (const version of ['1.2', '1.1'] as const) {
        const docs = parseAllDocuments(text, { version, prettyErrors: true, uniqueKeys: true });
        expect(docs).toHaveLength(8);
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

describe('examples/k8s/devtunnel.yaml', () => {
  test('is exactly what the generator prints for the defaults (regenerate: node packages/server/dist/cli.js k8s-manifest > examples/k8s/devtunnel.yaml)', () => {
    expect(readFileSync(join(ROOT, 'examples/k8s/devtunnel.yaml'), 'utf8')).toBe(renderManifests());
  });
});
