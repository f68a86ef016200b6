import { posix } from 'node:path';
import { parseArgs } from 'node:util';
import { InvalidOptionError } from './errors';
import { parsePortRange, resolveServerOptions, serverDefaults } from './options';

/**
 * `devtunnel-server k8s-manifest`: the Kubernetes manifests of one tunnel server, printed as
 * multi-document YAML from the same options the server takes. A Kubernetes Service cannot take a
 * port range, so the tunnel Service (and the NetworkPolicy) list every port of the range; generating
 * them is what keeps the manifests and the server's `DEVTUNNEL_TUNNEL_PORTS` from drifting apart.
 * Pure: `renderManifests()` returns text, `k8sManifestCommand()` takes argv and two writers.
 */
export interface K8sManifestOptions {
  /** Range of tunnel ports (`DEVTUNNEL_TUNNEL_PORTS`); the tunnel Service lists each one. @default '9000-9099' */
  tunnelPorts?: string;
  /** Port of the control API (`DEVTUNNEL_PORT`), its Service and the probes. @default 8080 */
  port?: number;
  /** Namespace of every object. @default 'devtunnel' */
  namespace?: string;
  /** Container image, built from `packages/server/Dockerfile`. @default 'devtunnel-server:0.1.0' */
  image?: string;
  /** Host name of the control API's Ingress: what developers put in `DEVTUNNEL_SERVER`. @default 'devtunnel.test.example.com' */
  host?: string;
  /** State file (`DEVTUNNEL_STATE_FILE`); its directory is the mount of the PersistentVolumeClaim. @default '/data/state.json' */
  stateFile?: string;
  /** `ingressClassName` of the control API's Ingress. @default 'nginx' */
  ingressClass?: string;
  /**
   * Labels (`key=value`, comma list) of the namespace the company's web proxy runs in: only pods
   * there may reach the tunnel ports. @default 'kubernetes.io/metadata.name=ingress-nginx'
   */
  allowFrom?: string;
}

export interface ResolvedK8sManifestOptions extends Required<K8sManifestOptions> {
  portRange: { from: number; to: number };
  /** `allowFrom` as `matchLabels`. */
  allowFromLabels: Record<string, string>;
}

export const k8sManifestDefaults = Object.freeze({
  tunnelPorts: serverDefaults.tunnelPorts,
  port: serverDefaults.port,
  namespace: 'devtunnel',
  image: 'devtunnel-server:0.1.0',
  host: 'devtunnel.test.example.com',
  stateFile: '/data/state.json',
  ingressClass: 'nginx',
  allowFrom: 'kubernetes.io/metadata.name=ingress-nginx',
} satisfies K8sManifestOptions);

/** Object names; the docs and the web proxy's configuration refer to them. */
export const k8sNames = Object.freeze({
  deployment: 'devtunnel-server',
  controlService: 'devtunnel-server',
  tunnelService: 'devtunnel-tunnels',
  ingress: 'devtunnel-server',
  networkPolicy: 'devtunnel-server',
  secret: 'devtunnel-token',
  stateClaim: 'devtunnel-state',
});

/**
 * The Secret's placeholder. The server refuses it (a token has no spaces), so an unedited Secret
 * stops the pod with a message naming the fix instead of running with a token everyone can read.
 */
export const TOKEN_PLACEHOLDER = 'REPLACE ME with the output of: openssl rand -hex 24';

/**
 * What the Ingress exposes of the control port: the client API, the health checks and the
 * dashboard. Not `/metrics`: Prometheus scrapes the Service from inside the cluster.
 */
const ingressPaths: ReadonlyArray<readonly [path: string, pathType: 'Prefix' | 'Exact']> = [
  ['/api/', 'Prefix'],
  ['/healthz', 'Exact'],
  ['/readyz', 'Exact'],
  ['/dashboard', 'Prefix'],
];

/** What the server's image (packages/server/Dockerfile on node:*-slim) runs from: no volume may cover it. */
const IMAGE_DIRS = ['/app/node_modules', '/usr/local/bin', '/usr/local/lib', '/usr/lib', '/usr/bin', '/lib', '/bin', '/etc'];

/** Kubernetes keeps EndpointSlice ports to at most 20,000 (kubernetes/kubernetes#99795). */
const MAX_TUNNEL_PORTS = 20_000;

const k8sFlags: ReadonlyArray<{ flag: string; option: keyof K8sManifestOptions; help: string }> = [
  { flag: 'tunnel-ports', option: 'tunnelPorts', help: 'range of tunnel ports; the tunnel Service lists each one' },
  { flag: 'port', option: 'port', help: 'control API port (Service, Ingress backend, probes)' },
  { flag: 'namespace', option: 'namespace', help: 'namespace of every object' },
  { flag: 'image', option: 'image', help: 'container image built from packages/server/Dockerfile' },
  { flag: 'host', option: 'host', help: "the Ingress's host name: what developers use as DEVTUNNEL_SERVER" },
  { flag: 'state-file', option: 'stateFile', help: 'state file; its directory is the volume mount' },
  { flag: 'ingress-class', option: 'ingressClass', help: 'ingressClassName of the Ingress' },
  { flag: 'allow-from', option: 'allowFrom', help: "labels of the web proxy's namespace (key=value,...): only it reaches the tunnel ports" },
];

const usage = `Usage: devtunnel-server k8s-manifest [options] > devtunnel.yaml

Prints the Kubernetes manifests of one devtunnel server as multi-document YAML: Namespace,
Secret (a placeholder token), PersistentVolumeClaim, Deployment, a Service and an Ingress for the
control API, a Service listing every tunnel port, and a NetworkPolicy. Walkthrough: docs/deploy.md.

Options:
${k8sFlags.map((f) => `  --${(f.flag + ' <value>').padEnd(24)} ${f.help} (default ${k8sManifestDefaults[f.option]})`).join('\n')}
  ${'--help'.padEnd(26)} show this help
`;

function invalid(option: string, message: string): InvalidOptionError {
  return new InvalidOptionError(`devtunnel-server k8s-manifest: option "${option}" ${message}`);
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

function parseLabels(option: string, value: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of value.split(',')) {
    const m = /^([^=]+)=([^=]*)$/.exec(pair.trim());
    const key = m?.[1] ?? '';
    const slash = key.lastIndexOf('/');
    const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
    const name = key.slice(slash + 1);
    if (!m || (prefix !== undefined && !DNS_SUBDOMAIN.test(prefix)) || !LABEL_NAME.test(name) || !LABEL_VALUE.test(m[2]!)) {
      throw invalid(option, `must be namespace labels such as kubernetes.io/metadata.name=ingress-nginx (key=value, comma-separated; got ${JSON.stringify(value)}).`);
    }
    labels[key] = m[2]!;
  }
  return labels;
}

/** Merges defaults and validates, naming the option and the fix. */
export function resolveK8sManifestOptions(options: K8sManifestOptions = {}): ResolvedK8sManifestOptions {
  const o = { ...k8sManifestDefaults, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as Required<K8sManifestOptions>;
  const portRange = parsePortRange('tunnelPorts', String(o.tunnelPorts));
  if (portRange.to - portRange.from + 1 > MAX_TUNNEL_PORTS) {
    throw invalid('tunnelPorts', `spans ${portRange.to - portRange.from + 1} ports; a Kubernetes Service can expose at most ${MAX_TUNNEL_PORTS} (its EndpointSlice's limit).`);
  }
  if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535) throw invalid('port', `must be a port number from 1 to 65535 (got ${JSON.stringify(o.port)}).`);
  if (!DNS_LABEL.test(o.namespace)) throw invalid('namespace', `must be a DNS label: lower-case letters, digits and '-', at most 63 (got ${JSON.stringify(o.namespace)}).`);
  // The manifests create the namespace and label it Pod Security "restricted": applied to a shared
  // one, that label would refuse every other pod there that is not restricted.
  if (o.namespace === 'default' || o.namespace.startsWith('kube-')) {
    throw invalid('namespace', `must be a namespace of devtunnel's own, not ${JSON.stringify(o.namespace)}: the manifests create it and enforce Pod Security "restricted" on everything in it.`);
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,511}$/.test(o.image)) throw invalid('image', `must be an image reference such as registry.example.com/devtunnel-server:0.1.0 (got ${JSON.stringify(o.image)}).`);
  if (!DNS_SUBDOMAIN.test(o.host)) throw invalid('host', `must be a lower-case host name such as devtunnel.test.example.com (got ${JSON.stringify(o.host)}).`);
  if (!DNS_SUBDOMAIN.test(o.ingressClass)) throw invalid('ingressClass', `must be the name of an IngressClass such as nginx (got ${JSON.stringify(o.ingressClass)}).`);
  const dir = posix.dirname(o.stateFile);
  if (!/^\/[A-Za-z0-9._/-]+$/.test(o.stateFile) || posix.normalize(o.stateFile) !== o.stateFile || dir === '/' || o.stateFile.endsWith('/')) {
    throw invalid('stateFile', `must be an absolute file path inside a directory of its own, such as /data/state.json: that directory is the volume (got ${JSON.stringify(o.stateFile)}).`);
  }
  // The volume is mounted over its directory: over (or above) the image's own files, the server
  // is gone; under /proc, /sys or /dev the runtime refuses the mount.
  const hidden = IMAGE_DIRS.find((d) => dir === d || d.startsWith(`${dir}/`)) ?? ['/proc', '/sys', '/dev'].find((d) => dir === d || dir.startsWith(`${d}/`));
  if (hidden) {
    throw invalid('stateFile', `would mount the state volume over ${dir}, hiding the image's ${hidden} (the server itself lives in /app): use a directory of its own such as /data (got ${JSON.stringify(o.stateFile)}).`);
  }
  const allowFromLabels = parseLabels('allowFrom', o.allowFrom);
  // The server's own validation, so the manifests never configure a server that refuses to start
  // (a control port inside the range, say). The token here only stands in for the Secret's.
  try {
    resolveServerOptions({ port: o.port, tunnelPorts: o.tunnelPorts, stateFile: o.stateFile, token: 'x'.repeat(16) });
  } catch (error) {
    throw new InvalidOptionError((error as Error).message.replace(/^devtunnel-server:/, 'devtunnel-server k8s-manifest:'));
  }
  return { ...o, portRange, allowFromLabels };
}

// ---------------------------------------------------------------------------------------------
// A small YAML emitter: block maps and sequences, comments, and scalars quoted whenever a YAML 1.1
// or 1.2 reader (Kubernetes reads 1.1: `on`, `yes`, `0x1F` are not strings there) could take them
// for anything but the string they are.

/** A value with comment lines printed above it (above its key, or its `-`). */
class Commented {
  constructor(
    readonly lines: readonly string[],
    readonly value: YamlValue,
  ) {}
}
type YamlValue = string | number | boolean | null | Commented | YamlValue[] | { [key: string]: YamlValue };

const note = (lines: string | readonly string[], value: YamlValue) => new Commented(typeof lines === 'string' ? [lines] : lines, value);

const RESERVED = new Set(['y', 'n', 'yes', 'no', 'true', 'false', 'on', 'off', 'null', '~']);

/** A string as a YAML scalar: plain when nothing could misread it, else double-quoted with escapes. */
export function yamlString(text: string): string {
  if (/^[A-Za-z/][A-Za-z0-9_./-]*$/.test(text) && !RESERVED.has(text.toLowerCase())) return text;
  let out = '"';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (cp >= 0x20 && cp <= 0x7e) out += ch;
    else if (cp >= 0xd800 && cp <= 0xdfff) throw new InvalidOptionError(`devtunnel-server k8s-manifest: ${JSON.stringify(text)} is not valid Unicode.`);
    else if (cp <= 0xffff) out += `\\u${cp.toString(16).padStart(4, '0')}`;
    else out += `\\U${cp.toString(16).padStart(8, '0')}`;
  }
  return `${out}"`;
}

function scalar(value: YamlValue): string | undefined {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`YAML emitter: ${value} is not a finite number`);
    return String(value);
  }
  if (typeof value === 'string') return yamlString(value);
  if (Array.isArray(value)) return value.length === 0 ? '[]' : undefined;
  if (value instanceof Commented) return undefined;
  return Object.keys(value).length === 0 ? '{}' : undefined;
}

function comments(lines: readonly string[], pad: string): string[] {
  return lines.map((line) => (line ? `${pad}# ${line}` : `${pad}#`));
}

function emitMap(map: { [key: string]: YamlValue }, indent: number, out: string[]): void {
  const pad = ' '.repeat(indent);
  for (const [key, entry] of Object.entries(map)) {
    let value = entry;
    if (value instanceof Commented) {
      out.push(...comments(value.lines, pad));
      value = value.value;
    }
    const inline = scalar(value);
    if (inline !== undefined) out.push(`${pad}${yamlString(key)}: ${inline}`);
    else {
      out.push(`${pad}${yamlString(key)}:`);
      emitBlock(value, indent + 2, out);
    }
  }
}

function emitSeq(items: YamlValue[], indent: number, out: string[]): void {
  const pad = ' '.repeat(indent);
  for (const entry of items) {
    let item = entry;
    if (item instanceof Commented) {
      out.push(...comments(item.lines, pad));
      item = item.value;
    }
    const inline = scalar(item);
    if (inline !== undefined) {
      out.push(`${pad}- ${inline}`);
      continue;
    }
    const nested: string[] = [];
    emitBlock(item, indent + 2, nested);
    // A mapping starts on the dash's line; anything else (a comment first) on the next.
    if (!Array.isArray(item) && !nested[0]!.trimStart().startsWith('#')) out.push(`${pad}- ${nested[0]!.slice(indent + 2)}`, ...nested.slice(1));
    else out.push(`${pad}-`, ...nested);
  }
}

function emitBlock(value: YamlValue, indent: number, out: string[]): void {
  if (Array.isArray(value)) emitSeq(value, indent, out);
  else if (value instanceof Commented) throw new Error('YAML emitter: a comment must annotate a map entry or a sequence item');
  else emitMap(value as { [key: string]: YamlValue }, indent, out);
}

/** Documents, each with its comment lines, as one multi-document YAML text. */
function yamlDocuments(header: readonly string[], documents: ReadonlyArray<{ comment: readonly string[]; body: { [key: string]: YamlValue } }>): string {
  const out: string[] = comments(header, '');
  for (const doc of documents) {
    out.push('---', ...comments(doc.comment, ''));
    emitMap(doc.body, 0, out);
  }
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// The manifests.

/** Renders every manifest for `options`; throws `InvalidOptionError` naming a bad option. */
export function renderManifests(options: K8sManifestOptions = {}): string {
  const o = resolveK8sManifestOptions(options);
  const { from, to } = o.portRange;
  const tunnelPorts = Array.from({ length: to - from + 1 }, (_, i) => from + i);
  const ns = o.namespace;
  const podLabels = { 'app.kubernetes.io/name': k8sNames.deployment, 'app.kubernetes.io/part-of': 'devtunnel' };
  const selector = { 'app.kubernetes.io/name': k8sNames.deployment };
  const meta = (name: string, extra: { [key: string]: YamlValue } = {}) => ({ name, namespace: ns, labels: { ...podLabels }, ...extra });
  // Above the drain budget, so Kubernetes never kills the process while in-flight requests finish.
  const gracePeriod = Math.ceil(serverDefaults.drainTimeoutMs / 1000) + 10;
  const stateDir = posix.dirname(o.stateFile);
  const flagsLine = k8sFlags.map((f) => `--${f.flag} ${o[f.option]}`).join(' ');

  return yamlDocuments(
    [
      'devtunnel server on Kubernetes. Generated by:',
      `  devtunnel-server k8s-manifest ${flagsLine}`,
      'Regenerate it rather than edit it: the tunnel Service and the NetworkPolicy list every port of',
      'the range. The Secret below is a placeholder the server refuses; docs/deploy.md shows how to',
      'create the real one and apply the rest.',
    ],
    [
      {
        comment: ["The namespace; Pod Security 'restricted' holds, the pod below satisfies it."],
        body: {
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: { name: ns, labels: { 'pod-security.kubernetes.io/enforce': 'restricted', 'app.kubernetes.io/part-of': 'devtunnel' } },
        },
      },
      {
        comment: [
          'The registration token developers put in DEVTUNNEL_TOKEN. REPLACE the placeholder: the server',
          'refuses it and stops. Create the real Secret once and leave this document out of later applies',
          "(kubectl apply -l 'devtunnel/placeholder!=true'), or applying it again overwrites your token:",
          `  kubectl -n ${ns} create secret generic ${k8sNames.secret} --from-literal=token="$(openssl rand -hex 24)" --from-literal=admin-token="$(openssl rand -hex 24)"`,
        ],
        body: {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: meta(k8sNames.secret, { labels: { ...podLabels, 'devtunnel/placeholder': 'true' } }),
          type: 'Opaque',
          stringData: { token: TOKEN_PLACEHOLDER },
        },
      },
      {
        comment: ['Port assignments (DEVTUNNEL_STATE_FILE): a developer gets the same port back after a restart.'],
        body: {
          apiVersion: 'v1',
          kind: 'PersistentVolumeClaim',
          metadata: meta(k8sNames.stateClaim),
          spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
        },
      },
      {
        comment: [
          'One replica, replaced with Recreate: tunnels, ports and the state file belong to one process.',
          'Clients reconnect by themselves after a restart and get their ports back from the state file.',
        ],
        body: {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: meta(k8sNames.deployment),
          spec: {
            replicas: 1,
            strategy: { type: 'Recreate' },
            selector: { matchLabels: selector },
            template: {
              metadata: { labels: podLabels },
              spec: {
                terminationGracePeriodSeconds: note(`Above the server's drain budget (${serverDefaults.drainTimeoutMs / 1000} s): raise it with DEVTUNNEL_DRAIN_TIMEOUT_MS, or Kubernetes kills the server mid-drain.`, gracePeriod),
                automountServiceAccountToken: false,
                enableServiceLinks: note(
                  'No {SERVICE}_PORT variables: one set per port of the tunnel Service, and names like DEVTUNNEL_PORT would collide.',
                  false,
                ),
                securityContext: {
                  runAsNonRoot: true,
                  runAsUser: note("The image's `node` user (uid 1000): Kubernetes can only check runAsNonRoot on a numeric uid.", 1000),
                  runAsGroup: 1000,
                  fsGroup: note('The state volume is writable by that user.', 1000),
                  fsGroupChangePolicy: 'OnRootMismatch',
                  seccompProfile: { type: 'RuntimeDefault' },
                },
                containers: [
                  {
                    name: 'server',
                    image: o.image,
                    imagePullPolicy: 'IfNotPresent',
                    env: [
                      { name: 'DEVTUNNEL_HOST', value: '0.0.0.0' },
                      { name: 'DEVTUNNEL_PORT', value: String(o.port) },
                      { name: 'DEVTUNNEL_TUNNEL_PORTS', value: o.tunnelPorts },
                      { name: 'DEVTUNNEL_STATE_FILE', value: o.stateFile },
                      { name: 'DEVTUNNEL_TOKEN', valueFrom: { secretKeyRef: { name: k8sNames.secret, key: 'token' } } },
                      // The dashboard's admin token (can close tunnels); without the key the dashboard is read-only.
                      { name: 'DEVTUNNEL_ADMIN_TOKEN', valueFrom: { secretKeyRef: { name: k8sNames.secret, key: 'admin-token', optional: true } } },
                    ],
                    ports: [{ name: 'control', containerPort: o.port, protocol: 'TCP' }, ...tunnelPorts.map((p) => ({ name: `t-${p}`, containerPort: p, protocol: 'TCP' }))],
                    livenessProbe: { httpGet: { path: '/healthz', port: o.port }, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 3 },
                    readinessProbe: note('503 while starting or draining.', { httpGet: { path: '/readyz', port: o.port }, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 2 }),
                    resources: note(
                      ['500 idle tunnels take about 1-2 % of a core and ~120 MiB (npm run bench); bodies stream with', 'bounded memory. Raise the limits for heavy transfers or a wider range (docs/deploy.md).'],
                      { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '512Mi' } },
                    ),
                    securityContext: {
                      runAsNonRoot: true,
                      readOnlyRootFilesystem: true,
                      allowPrivilegeEscalation: false,
                      capabilities: { drop: ['ALL'] },
                    },
                    volumeMounts: [{ name: 'state', mountPath: stateDir }],
                  },
                ],
                volumes: [{ name: 'state', persistentVolumeClaim: { claimName: k8sNames.stateClaim } }],
              },
            },
          },
        },
      },
      {
        comment: ['The control API: registration, polls, responses, /healthz, /readyz.'],
        body: {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: meta(k8sNames.controlService),
          spec: { type: 'ClusterIP', selector, ports: [{ name: 'control', port: o.port, targetPort: o.port, protocol: 'TCP' }] },
        },
      },
      {
        comment: [
          `Every tunnel port (${from}-${to}), one entry each: a Service cannot take a range. The company's web`,
          `proxy sends a developer's traffic to ${k8sNames.tunnelService}.${ns}.svc:<port>.`,
        ],
        body: {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: meta(k8sNames.tunnelService),
          spec: { type: 'ClusterIP', selector, ports: tunnelPorts.map((p) => ({ name: `t-${p}`, port: p, targetPort: p, protocol: 'TCP' })) },
        },
      },
      {
        comment: [
          `The control API for developers' laptops: DEVTUNNEL_SERVER=https://${o.host}`,
          'Serve it over TLS: the token travels in every request. /metrics stays inside the cluster.',
          "The annotations are ingress-nginx's (others ignore them): bodies stream both ways without a",
          'size cap, and an idle WebSocket may last an hour.',
        ],
        body: {
          apiVersion: 'networking.k8s.io/v1',
          kind: 'Ingress',
          metadata: meta(k8sNames.ingress, {
            annotations: {
              'nginx.ingress.kubernetes.io/proxy-body-size': '0',
              'nginx.ingress.kubernetes.io/proxy-request-buffering': 'off',
              'nginx.ingress.kubernetes.io/proxy-buffering': 'off',
              'nginx.ingress.kubernetes.io/proxy-read-timeout': '3600',
              'nginx.ingress.kubernetes.io/proxy-send-timeout': '3600',
            },
          }),
          spec: {
            ingressClassName: o.ingressClass,
            rules: [
              {
                host: o.host,
                http: {
                  paths: ingressPaths.map(([path, pathType]) => ({ path, pathType, backend: { service: { name: k8sNames.controlService, port: { number: o.port } } } })),
                },
              },
            ],
          },
        },
      },
      {
        comment: ['Who may connect: the control port from the whole cluster (the Ingress brings the laptops),', "the tunnel ports only from the web proxy's namespace."],
        body: {
          apiVersion: 'networking.k8s.io/v1',
          kind: 'NetworkPolicy',
          metadata: meta(k8sNames.networkPolicy),
          spec: {
            podSelector: { matchLabels: selector },
            policyTypes: ['Ingress'],
            ingress: [
              { from: [{ namespaceSelector: {} }], ports: [{ protocol: 'TCP', port: o.port }] },
              note(
                'One entry per port rather than endPort, which some network plugins ignore.',
                { from: [{ namespaceSelector: { matchLabels: o.allowFromLabels } }], ports: tunnelPorts.map((p) => ({ protocol: 'TCP', port: p })) },
              ),
            ],
          },
        },
      },
    ],
  );
}

export interface CommandIO {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** `devtunnel-server k8s-manifest [options]`: prints the manifests; exit code 0, or 2 for bad options. */
export function k8sManifestCommand(argv: readonly string[], io: CommandIO): number {
  const spec: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' } };
  for (const f of k8sFlags) spec[f.flag] = { type: 'string' };
  try {
    const { values } = parseArgs({ args: [...argv], options: spec, strict: true, allowPositionals: false });
    if (values.help) {
      io.stdout(usage);
      return 0;
    }
    const options: Record<string, string | number> = {};
    for (const f of k8sFlags) {
      const raw = values[f.flag] as string | undefined;
      if (raw === undefined) continue;
      if (f.option === 'port' && !/^\d{1,5}$/.test(raw)) throw invalid('port', `must be a port number from 1 to 65535 (got ${JSON.stringify(raw)}).`);
      options[f.option] = f.option === 'port' ? Number(raw) : raw;
    }
    io.stdout(renderManifests(options as K8sManifestOptions));
    return 0;
  } catch (error) {
    // Bad options (ours, or parseArgs' unknown flag / missing value); anything else is a bug.
    const code = (error as { code?: unknown }).code;
    if (!(error instanceof InvalidOptionError) && !(typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))) throw error;
    io.stderr(`${(error as Error).message}\n\n${usage}`);
    return 2;
  }
}
