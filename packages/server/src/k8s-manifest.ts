import { posix } from 'node:path';
import { parseArgs } from 'node:util';
import { InvalidOptionError } from './errors';
import { k8sFlags, k8sManifestDefaults, k8sNames, resolveK8sManifestOptions, type K8sManifestOptions } from './k8s/options';
import { serverDefaults } from './options';

/**
 * `devtunnel-server k8s-manifest`: the Kubernetes manifests of one tunnel server, printed as
 * multi-document YAML from the same options the server takes. A Kubernetes Service cannot take a
 * port range, so the tunnel Service (and the NetworkPolicy) list every port of the range; generating
 * them is what keeps the manifests and the server's `DEVTUNNEL_TUNNEL_PORTS` from drifting apart.
 * Pure: `renderManifests()` returns text, `k8sManifestCommand()` takes argv and two writers.
 * The options are in k8s/options.ts.
 */

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

const usage = `Usage: devtunnel-server k8s-manifest [options] > devtunnel.yaml

Prints the Kubernetes manifests of one devtunnel server as multi-document YAML: Namespace,
Secret (a placeholder token), PersistentVolumeClaim, Deployment, a Service and an Ingress for the
control API, a Service listing every tunnel port, and a NetworkPolicy. Walkthrough: docs/deploy.md.

Options:
${k8sFlags.map((f) => `  --${(f.flag + ' <value>').padEnd(24)} ${f.help} (default ${k8sManifestDefaults[f.option]})`).join('\n')}
  ${'--help'.padEnd(26)} show this help
`;

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
      if (f.option === 'port' && !/^\d{1,5}$/.test(raw)) throw new InvalidOptionError(`devtunnel-server k8s-manifest: option "port" must be a port number from 1 to 65535 (got ${JSON.stringify(raw)}).`);
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
