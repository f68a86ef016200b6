/**
 * The Kubernetes manifests of one tunnel server, as multi-document YAML from the same options the
 * server takes. A Kubernetes Service cannot take a port range, so the tunnel Service (and the
 * NetworkPolicy) list every port of the range; generating them is what keeps the manifests and the
 * server's `DEVTUNNEL_TUNNEL_PORTS` from drifting apart. Pure: returns text.
 */
import { posix } from 'node:path';
import { Document, isNode, isScalar, visit, type CreateNodeOptions, type DocumentOptions, type Node, type SchemaOptions, type ToStringOptions } from 'yaml';
import { serverDefaults } from '../options';
import { k8sFlags, k8sNames, resolveK8sManifestOptions, type K8sManifestOptions } from './options';

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

/**
 * Kubernetes reads YAML 1.1 (go-yaml: `on`, `yes`, `0x1F`, `1:20` are not strings there), the yaml
 * library and most tools 1.2: `compat` quotes every string that either version would take for
 * anything else. No anchors where a JS object is used twice: each manifest reads on its own.
 */
const documentOptions = { compat: 'yaml-1.1', aliasDuplicateObjects: false } satisfies DocumentOptions & SchemaOptions & CreateNodeOptions;

/** Every scalar on its own line: no folding of long values (an image digest), no block scalars. */
const textOptions = { lineWidth: 0, blockQuote: false } satisfies ToStringOptions;

/** One string as the manifests write it: a scalar YAML 1.1 and 1.2 readers both read back as that string. */
export function yamlString(text: string): string {
  return new Document(text, documentOptions).toString(textOptions).replace(/\n$/, '');
}

/** Comment lines as the yaml library takes them: it puts the `#` before each. */
const commentText = (lines: string | readonly string[]) => (typeof lines === 'string' ? [lines] : lines).map((line) => ` ${line}`).join('\n');

/** `value` with comment lines above it: above its key in a map, above its `-` in a list. */
function note(lines: string | readonly string[], value: unknown): Node {
  const node = new Document(value, documentOptions).contents as Node;
  node.commentBefore = commentText(lines);
  return node;
}

/** One manifest with its comment lines above it. */
function manifest(comment: readonly string[], body: Record<string, unknown>): Document {
  const doc = new Document(body, documentOptions);
  (doc.contents as Node).commentBefore = commentText(comment);
  // The library writes a map value's comment between its key and the value; a reader looks for it
  // above the key, where the comment of a list item is (above its `-`).
  visit(doc, {
    Pair(_, pair) {
      if (isNode(pair.value) && pair.value.commentBefore && isScalar(pair.key)) {
        pair.key.commentBefore = pair.value.commentBefore;
        pair.value.commentBefore = undefined;
      }
    },
  });
  return doc;
}

/** One word of a shell command line: quoted when the shell would read it otherwise (`;` in a route). */
function shellWord(text: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/** The manifests, each after `---`, the first preceded by the `header` comment. */
function yamlStream(header: readonly string[], documents: readonly Document[]): string {
  documents[0]!.commentBefore = commentText(header);
  return documents.map((doc) => doc.toString({ ...textOptions, directives: true })).join('');
}

/** Renders every manifest for `options`; throws `InvalidOptionError` naming a bad option. */
export function renderManifests(options: K8sManifestOptions = {}): string {
  const o = resolveK8sManifestOptions(options);
  const { from, to } = o.portRange;
  const tunnelPorts = Array.from({ length: to - from + 1 }, (_, i) => from + i);
  const ns = o.namespace;
  const podLabels = { 'app.kubernetes.io/name': k8sNames.deployment, 'app.kubernetes.io/part-of': 'devtunnel' };
  const selector = { 'app.kubernetes.io/name': k8sNames.deployment };
  const meta = (name: string, extra: Record<string, unknown> = {}) => ({ name, namespace: ns, labels: { ...podLabels }, ...extra });
  // Above the drain budget, so Kubernetes never kills the process while in-flight requests finish.
  const gracePeriod = Math.ceil(serverDefaults.drainTimeoutMs / 1000) + 10;
  const stateDir = posix.dirname(o.stateFile);
  // Several replicas (--store) or one with a state file: the flags of the other mode stay out of
  // the header, so the one-replica output is what it always was.
  const store = o.store;
  const otherMode: ReadonlySet<string> = new Set(store === undefined ? ['replicas', 'store'] : ['stateFile']);
  // Every flag with its value; a repeated flag (--route) once per value, none when empty.
  const flagsLine = k8sFlags
    .filter((f) => !otherMode.has(f.option))
    .flatMap((f) => [o[f.option]].flat().map((v) => `--${f.flag} ${shellWord(String(v))}`))
    .join(' ');
  const routes = o.resolvedRoutes;
  const routePorts = routes.map((r) => r.port).join(', ');
  const storeUrl = store === undefined ? undefined : new URL(store);
  const storeAt = storeUrl && `${storeUrl.hostname}:${storeUrl.port || '6379'}`;
  const storeSecretCommand = `kubectl -n ${ns} create secret generic ${k8sNames.storeSecret} --from-literal=url=${shellWord(store ?? '')}`;

  return yamlStream(
    [
      'devtunnel server on Kubernetes. Generated by:',
      `  devtunnel-server k8s-manifest ${flagsLine}`,
      'Regenerate it rather than edit it: the tunnel Service and the NetworkPolicy list every port of',
      'the range. The Secret below is a placeholder the server refuses; docs/deploy.md shows how to',
      'create the real one and apply the rest.',
      ...(store === undefined
        ? []
        : [
            `The replicas also need the Secret ${k8sNames.storeSecret}, which this file leaves out (a store's URL may`,
            'hold a password; add --from-literal=password=… if yours takes one apart from the URL):',
            `  ${storeSecretCommand}`,
          ]),
    ],
    [
      manifest(["The namespace; Pod Security 'restricted' holds, the pod below satisfies it."], {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: ns, labels: { 'pod-security.kubernetes.io/enforce': 'restricted', 'app.kubernetes.io/part-of': 'devtunnel' } },
      }),
      manifest(
        [
          'The registration token developers put in DEVTUNNEL_TOKEN. REPLACE the placeholder: the server',
          'refuses it and stops. Create the real Secret once and leave this document out of later applies',
          "(kubectl apply -l 'devtunnel/placeholder!=true'), or applying it again overwrites your token:",
          `  kubectl -n ${ns} create secret generic ${k8sNames.secret} --from-literal=token="$(openssl rand -hex 24)" --from-literal=admin-token="$(openssl rand -hex 24)"`,
        ],
        {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: meta(k8sNames.secret, { labels: { ...podLabels, 'devtunnel/placeholder': 'true' } }),
          type: 'Opaque',
          stringData: { token: TOKEN_PLACEHOLDER },
        },
      ),
      ...(store === undefined
        ? [
            manifest(['Port assignments (DEVTUNNEL_STATE_FILE): a developer gets the same port back after a restart.'], {
              apiVersion: 'v1',
              kind: 'PersistentVolumeClaim',
              metadata: meta(k8sNames.stateClaim),
              spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
            }),
          ]
        : []),
      manifest(
        store === undefined
          ? [
              'One replica, replaced with Recreate: tunnels, ports and the state file belong to one process.',
              'Clients reconnect by themselves after a restart and get their ports back from the state file.',
            ]
          : [
              `${o.replicas === 1 ? 'One replica' : `${o.replicas} replicas`} sharing the store: ports and who holds each tunnel live in Redis, and any`,
              'replica serves any tunnel, one internal hop from the one that holds it. Rolled one pod at a',
              "time: a new pod is ready before an old one drains, and the old one's clients register again",
              'on another replica by themselves, with the same ports.',
            ],
        {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: meta(k8sNames.deployment),
          spec: {
            replicas: o.replicas,
            strategy: store === undefined ? { type: 'Recreate' } : { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
            selector: { matchLabels: selector },
            template: {
              metadata: { labels: podLabels },
              spec: {
                terminationGracePeriodSeconds: note(`Above the server's drain budget (${serverDefaults.drainTimeoutMs / 1000} s): raise it with DEVTUNNEL_DRAIN_TIMEOUT_MS, or Kubernetes kills the server mid-drain.`, gracePeriod),
                automountServiceAccountToken: false,
                enableServiceLinks: note('No {SERVICE}_PORT variables: one set per port of the tunnel Service, and names like DEVTUNNEL_PORT would collide.', false),
                securityContext: {
                  runAsNonRoot: true,
                  runAsUser: note("The image's `node` user (uid 1000): Kubernetes can only check runAsNonRoot on a numeric uid.", 1000),
                  runAsGroup: 1000,
                  ...(store === undefined ? { fsGroup: note('The state volume is writable by that user.', 1000), fsGroupChangePolicy: 'OnRootMismatch' } : {}),
                  seccompProfile: { type: 'RuntimeDefault' },
                },
                ...(store === undefined
                  ? {}
                  : {
                      topologySpreadConstraints: note(
                        'Replicas on different nodes where the cluster allows it: a node going away takes one.',
                        [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: selector } }],
                      ),
                    }),
                containers: [
                  {
                    name: 'server',
                    image: o.image,
                    imagePullPolicy: 'IfNotPresent',
                    env: [
                      { name: 'DEVTUNNEL_HOST', value: '0.0.0.0' },
                      { name: 'DEVTUNNEL_PORT', value: String(o.port) },
                      { name: 'DEVTUNNEL_TUNNEL_PORTS', value: o.tunnelPorts },
                      store === undefined
                        ? { name: 'DEVTUNNEL_STATE_FILE', value: o.stateFile }
                        : note("Empty, so unset: the image's /data/state.json, which the server refuses beside a store.", { name: 'DEVTUNNEL_STATE_FILE', value: '' }),
                      ...(routes.length === 0 ? [] : [note('The routes (--route), comma-separated: regenerate to change them.', { name: 'DEVTUNNEL_ROUTES', value: o.routes.join(',') })]),
                      ...(store === undefined
                        ? []
                        : [
                            note("The pod's address, for the next variable: Kubernetes expands $(POD_IP) there.", { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }),
                            note("Where the other replicas reach this one's control port (the internal hop).", { name: 'DEVTUNNEL_ADVERTISE_URL', value: `http://$(POD_IP):${o.port}` }),
                            note(`The store's URL and its password (optional), from the Secret ${k8sNames.storeSecret}: see the top of this file.`, {
                              name: 'DEVTUNNEL_STORE',
                              valueFrom: { secretKeyRef: { name: k8sNames.storeSecret, key: 'url' } },
                            }),
                            { name: 'DEVTUNNEL_STORE_PASSWORD', valueFrom: { secretKeyRef: { name: k8sNames.storeSecret, key: 'password', optional: true } } },
                          ]),
                      { name: 'DEVTUNNEL_TOKEN', valueFrom: { secretKeyRef: { name: k8sNames.secret, key: 'token' } } },
                      // The dashboard's admin token (can close tunnels); without the key the dashboard is read-only.
                      { name: 'DEVTUNNEL_ADMIN_TOKEN', valueFrom: { secretKeyRef: { name: k8sNames.secret, key: 'admin-token', optional: true } } },
                    ],
                    // A container port's name stops at 15 characters: route ports are r-<port>.
                    ports: [
                      { name: 'control', containerPort: o.port, protocol: 'TCP' },
                      ...routes.map((r) => ({ name: `r-${r.port}`, containerPort: r.port, protocol: 'TCP' })),
                      ...tunnelPorts.map((p) => ({ name: `t-${p}`, containerPort: p, protocol: 'TCP' })),
                    ],
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
                    ...(store === undefined ? { volumeMounts: [{ name: 'state', mountPath: stateDir }] } : {}),
                  },
                ],
                ...(store === undefined ? { volumes: [{ name: 'state', persistentVolumeClaim: { claimName: k8sNames.stateClaim } }] } : {}),
              },
            },
          },
        },
      ),
      ...(store === undefined
        ? []
        : [
            manifest(
              [
                'Voluntary disruptions (a node drain, a cluster upgrade) take one replica at a time: the others',
                "keep serving every tunnel while its clients move. (Rolling updates follow the Deployment's strategy.)",
              ],
              {
                apiVersion: 'policy/v1',
                kind: 'PodDisruptionBudget',
                metadata: meta(k8sNames.disruptionBudget),
                spec: { maxUnavailable: 1, selector: { matchLabels: selector } },
              },
            ),
          ]),
      manifest(['The control API: registration, polls, responses, /healthz, /readyz.'], {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: meta(k8sNames.controlService),
        spec: { type: 'ClusterIP', selector, ports: [{ name: 'control', port: o.port, targetPort: o.port, protocol: 'TCP' }] },
      }),
      manifest(
        [
          `Every tunnel port (${from}-${to}), one entry each: a Service cannot take a range. The company's web`,
          `proxy sends a developer's traffic to ${k8sNames.tunnelService}.${ns}.svc:<port>.`,
        ],
        {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: meta(k8sNames.tunnelService),
          spec: { type: 'ClusterIP', selector, ports: tunnelPorts.map((p) => ({ name: `t-${p}`, port: p, targetPort: p, protocol: 'TCP' })) },
        },
      ),
      ...(routes.length === 0
        ? []
        : [
            manifest(
              [
                `The routes' ports (${routes.map((r) => `${r.name} ${r.port}`).join(', ')}). The gateway's rule for a route's app points`,
                `here once, at ${k8sNames.routeService}.${ns}.svc.cluster.local:<port>: requests naming a developer with a`,
                "live tunnel go to that laptop, all others to the app's real address (docs/deploy.md, Routes).",
              ],
              {
                apiVersion: 'v1',
                kind: 'Service',
                metadata: meta(k8sNames.routeService),
                spec: { type: 'ClusterIP', selector, ports: routes.map((r) => ({ name: `route-${r.name}`, port: r.port, targetPort: r.port, protocol: 'TCP' })) },
              },
            ),
          ]),
      manifest(
        [
          `The control API for developers' laptops: DEVTUNNEL_SERVER=https://${o.ingressHost}`,
          'Serve it over TLS: the token travels in every request. /metrics stays inside the cluster.',
          "The annotations are ingress-nginx's (others ignore them): bodies stream both ways without a",
          'size cap, and an idle WebSocket may last an hour.',
        ],
        {
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
                host: o.ingressHost,
                http: {
                  paths: ingressPaths.map(([path, pathType]) => ({ path, pathType, backend: { service: { name: k8sNames.controlService, port: { number: o.port } } } })),
                },
              },
            ],
          },
        },
      ),
      manifest(
        [
          'Who may connect: the control port from the whole cluster (the Ingress brings the laptops),',
          `the tunnel ports${routes.length === 0 ? '' : ' and the route ports'} only from the web proxy's namespace.`,
          ...(store === undefined
            ? []
            : [
                `Egress is not restricted here. The replicas dial the store (${storeAt}),`,
                `one another's control port (${o.port})${routes.length === 0 ? '' : ", the routes' upstreams"} and DNS: a default-deny egress`,
                'policy of your own must allow those (docs/deploy.md, Several replicas).',
              ]),
        ],
        {
          apiVersion: 'networking.k8s.io/v1',
          kind: 'NetworkPolicy',
          metadata: meta(k8sNames.networkPolicy),
          spec: {
            podSelector: { matchLabels: selector },
            policyTypes: ['Ingress'],
            ingress: [
              { from: [{ namespaceSelector: {} }], ports: [{ protocol: 'TCP', port: o.port }] },
              ...(store === undefined
                ? []
                : [
                    note(
                      [
                        'The replicas, one another: the internal hop goes to the control port (DEVTUNNEL_ADVERTISE_URL).',
                        'A rule of its own, so narrowing the one above never cuts it.',
                      ],
                      { from: [{ podSelector: { matchLabels: selector } }], ports: [{ protocol: 'TCP', port: o.port }] },
                    ),
                  ]),
              note('One entry per port rather than endPort, which some network plugins ignore.', {
                from: [{ namespaceSelector: { matchLabels: o.allowFromLabels } }],
                ports: tunnelPorts.map((p) => ({ protocol: 'TCP', port: p })),
              }),
              ...(routes.length === 0
                ? []
                : [
                    note(
                      [
                        `The route ports (${routePorts}) lead to laptops too. Callers inside the cluster (a Service pointed`,
                        'at the server, a mesh) need a NetworkPolicy of their own: policies add up (docs/deploy.md).',
                      ],
                      { from: [{ namespaceSelector: { matchLabels: o.allowFromLabels } }], ports: routes.map((r) => ({ protocol: 'TCP', port: r.port })) },
                    ),
                  ]),
            ],
          },
        },
      ),
    ],
  );
}
