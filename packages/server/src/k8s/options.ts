import { posix } from 'node:path';
import type { FlagKind, OptionFlag } from '@devtunnel/core/protocol';
import { InvalidOptionError } from '../errors';
import { parsePortRange, resolveServerOptions, serverDefaults } from '../options';
import type { ResolvedRoute } from '../routes/config';

/**
 * The options of `devtunnel-server k8s-manifest`: the same ones the server takes where the
 * manifests configure the server (ports, state file, store), plus where and how it runs in the
 * cluster. Merged with the defaults and validated in {@link resolveK8sManifestOptions}, the one
 * place.
 */
export interface K8sManifestOptions {
  /**
   * Range of tunnel ports (`DEVTUNNEL_TUNNEL_PORTS`); the tunnel Service lists each one.
   * @default '9000-9099'
   */
  tunnelPorts?: string;
  /**
   * Port of the control API (`DEVTUNNEL_PORT`), its Service and the probes.
   * @default 8080
   */
  port?: number;
  /**
   * Namespace of every object: one of devtunnel's own, since the manifests create it.
   * @default 'devtunnel'
   */
  namespace?: string;
  /**
   * Container image, built from `packages/server/Dockerfile`.
   * @default 'devtunnel-server:0.1.0'
   */
  image?: string;
  /**
   * Host name of the control API's Ingress: what developers put in `DEVTUNNEL_SERVER`. Not `host`,
   * which is the server's bind address (`--host`, `DEVTUNNEL_HOST`).
   * @default 'devtunnel.test.example.com'
   */
  ingressHost?: string;
  /**
   * Pods of the Deployment. Above 1 they share their state in `store`, which is then required.
   * @default 1
   */
  replicas?: number;
  /**
   * The replicas' shared store, a `redis://` or `rediss://` URL (Redis or Valkey), as the server's
   * `--store`. Given, the manifests run the replicas mode (even with `replicas` 1): no state file
   * and no volume, the URL read from the Secret `devtunnel-store` (key `url`), which the operator
   * creates (the URL may hold a password; this one may not, the output repeats it).
   * @default none (one replica with a state file)
   */
  store?: string;
  /**
   * State file (`DEVTUNNEL_STATE_FILE`); its directory is the mount of the PersistentVolumeClaim.
   * Not with `store`, which keeps the port reservations instead.
   * @default '/data/state.json'
   */
  stateFile?: string;
  /**
   * `ingressClassName` of the control API's Ingress.
   * @default 'nginx'
   */
  ingressClass?: string;
  /**
   * Labels (`key=value`, comma list) of the namespace the company's web proxy runs in: only pods
   * there may reach the tunnel ports.
   * @default 'kubernetes.io/metadata.name=ingress-nginx'
   */
  allowFrom?: string;
  /**
   * Routes (`DEVTUNNEL_ROUTES`), each in the server's `--route` form
   * `NAME:PORT=URL[;offline=error][;public-url=URL]`: apps of the cluster the server stands in for,
   * each on a port of its own, which the routes Service lists as `route-<name>` and the
   * NetworkPolicy opens to the web proxy's namespace. Checked by the server's own rules.
   * @default []
   */
  routes?: string[];
}

export interface ResolvedK8sManifestOptions extends Required<Omit<K8sManifestOptions, 'store'>> {
  store: string | undefined;
  /** Several replicas sharing `store` (it is given): a Deployment rolled one pod at a time, no volume. */
  replicated: boolean;
  portRange: { from: number; to: number };
  /** `allowFrom` as `matchLabels`. */
  allowFromLabels: Record<string, string>;
  /** `routes` as the server reads them, in the same order. */
  resolvedRoutes: ResolvedRoute[];
}

export const k8sManifestDefaults = Object.freeze({
  tunnelPorts: serverDefaults.tunnelPorts,
  port: serverDefaults.port,
  namespace: 'devtunnel',
  image: 'devtunnel-server:0.1.0',
  ingressHost: 'devtunnel.test.example.com',
  replicas: 1,
  stateFile: '/data/state.json',
  ingressClass: 'nginx',
  allowFrom: 'kubernetes.io/metadata.name=ingress-nginx',
  routes: [] as string[],
} satisfies Required<Omit<K8sManifestOptions, 'store'>>);

/** Object names; the docs and the web proxy's configuration refer to them. */
export const k8sNames = Object.freeze({
  deployment: 'devtunnel-server',
  controlService: 'devtunnel-server',
  tunnelService: 'devtunnel-tunnels',
  routeService: 'devtunnel-routes',
  ingress: 'devtunnel-server',
  networkPolicy: 'devtunnel-server',
  secret: 'devtunnel-token',
  stateClaim: 'devtunnel-state',
  /** With `store`: created by the operator (`url`, optional `password`), never by the manifests. */
  storeSecret: 'devtunnel-store',
  disruptionBudget: 'devtunnel-server',
});

type K8sOption = keyof K8sManifestOptions;

/** One flag of the subcommand: no environment variable (DEVTUNNEL_* configure the server, never the generator), its default the option's. */
function flag(name: string, option: K8sOption, kind: FlagKind, help: string): OptionFlag<K8sOption> {
  const value = (k8sManifestDefaults as Partial<Record<K8sOption, unknown>>)[option];
  // A list empty by default (--route) or no default at all (--store): no default to show.
  return value === undefined || (Array.isArray(value) && value.length === 0) ? { flag: name, option, kind, help } : { flag: name, option, kind, default: String(value), help };
}

/** The subcommand's flags, each named like its option: parsing, `--help` and the manifests' first lines come from this table. */
export const k8sFlags: ReadonlyArray<OptionFlag<K8sOption>> = [
  flag('tunnel-ports', 'tunnelPorts', 'string', 'range of tunnel ports; the tunnel Service lists each one'),
  flag('port', 'port', 'port', 'control API port (Service, Ingress backend, probes)'),
  flag('namespace', 'namespace', 'string', 'namespace of every object'),
  flag('image', 'image', 'string', 'container image built from packages/server/Dockerfile'),
  flag('ingress-host', 'ingressHost', 'string', "the Ingress's host name: what developers use as DEVTUNNEL_SERVER"),
  flag('replicas', 'replicas', 'count', 'pods of the Deployment; above 1 they need --store'),
  flag('store', 'store', 'string', "the replicas' shared Redis or Valkey, redis://HOST:PORT[/DB] or rediss://…, no password (the pods read it from the Secret devtunnel-store)"),
  flag('state-file', 'stateFile', 'string', 'state file; its directory is the volume mount (not with --store)'),
  flag('ingress-class', 'ingressClass', 'string', 'ingressClassName of the Ingress'),
  flag('allow-from', 'allowFrom', 'string', "labels of the web proxy's namespace (key=value,...): only it reaches the tunnel and route ports"),
  flag('route', 'routes', 'repeat', 'an app the server stands in for: NAME:PORT=URL[;offline=error][;public-url=URL], as devtunnel-server --route (repeat the flag)'),
];

/** What the server's image (packages/server/Dockerfile on node:*-slim) runs from: no volume may cover it. */
const IMAGE_DIRS = ['/app/node_modules', '/usr/local/bin', '/usr/local/lib', '/usr/lib', '/usr/bin', '/lib', '/bin', '/etc'];

/** Kubernetes keeps EndpointSlice ports to at most 20,000 (kubernetes/kubernetes#99795). */
const MAX_TUNNEL_PORTS = 20_000;

/** A bound that catches a typo (`--replicas 300`): every replica listens on every reserved port and beats on the store. */
const MAX_REPLICAS = 100;

/** A store URL as it may be shown: without its credentials. */
const redacted = (url: string) => JSON.stringify(url.replace(/\/\/[^@/]*@/, '//…@'));

/** A bad option, named as the API spells it; the message says what it takes. The command names the flag. */
function invalid(option: K8sOption, message: string): InvalidOptionError {
  return new InvalidOptionError(`devtunnel-server k8s-manifest: option "${option}" ${message}`, { option, problem: message });
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

function parseLabels(option: K8sOption, value: string): Record<string, string> {
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
  const o = { ...k8sManifestDefaults, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as Required<Omit<K8sManifestOptions, 'store'>> & { store?: string };
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
  if (!DNS_SUBDOMAIN.test(o.ingressHost)) throw invalid('ingressHost', `must be a lower-case host name such as devtunnel.test.example.com (got ${JSON.stringify(o.ingressHost)}).`);
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
  if (!Number.isInteger(o.replicas) || o.replicas < 1 || o.replicas > MAX_REPLICAS) throw invalid('replicas', `must be a whole number from 1 to ${MAX_REPLICAS} (got ${JSON.stringify(o.replicas)}).`);
  const store = typeof o.store === 'string' ? o.store.trim() : o.store;
  if (store !== undefined) {
    if (typeof store !== 'string') throw invalid('store', `must be a Redis URL such as redis://redis.devtunnel.svc.cluster.local:6379/0 (got ${JSON.stringify(store)}).`);
    let url: URL | undefined;
    try {
      url = new URL(store);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'redis:' && url.protocol !== 'rediss:') || url.hostname === '') {
      throw invalid('store', `must be a redis:// or rediss:// URL (Redis or Valkey) such as redis://redis.devtunnel.svc.cluster.local:6379/0 (got ${redacted(store)}).`);
    }
    // The URL is repeated in the output's first lines, which go into a configuration repository.
    if (url.password !== '') {
      throw invalid('store', `must not hold a password: the manifests repeat it in their first lines. Give the URL without it here, and put the password in the Secret ${k8sNames.storeSecret} (key password, or in the URL under key url) (got ${redacted(store)}).`);
    }
    // Printable ASCII on one line, for the same header comment.
    if (!/^[\x21-\x7e]+$/.test(store)) throw invalid('store', `must be printable ASCII without spaces (an international host name in its xn-- form) (got ${redacted(store)}).`);
  }
  if (o.replicas > 1 && store === undefined) {
    throw invalid('replicas', `is ${o.replicas}, but several replicas need --store (option "store"), the Redis they share tunnels and port reservations in: add --store redis://HOST:PORT[/DB], or leave --replicas at 1 for one pod with a state file.`);
  }
  if (store !== undefined && options.stateFile !== undefined) {
    throw invalid('stateFile', 'cannot be used with --store (option "store"): the store keeps the port reservations, and the replicas have no volume. Leave --state-file out.');
  }
  const allowFromLabels = parseLabels('allowFrom', o.allowFrom);
  // Routes reach the server as DEVTUNNEL_ROUTES, in the text given here: a comma list, in a YAML
  // string, repeated in the header comment.
  if (!Array.isArray(o.routes) || o.routes.some((r) => typeof r !== 'string')) {
    throw invalid('routes', `must be a list of routes in the --route form, such as ["cart:8101=http://cart.shop.svc.cluster.local:80"].`);
  }
  const routes = o.routes.map((r) => r.trim());
  // The server's own validation, so the manifests never configure a server that refuses to start
  // (a control port inside the range, a route on a tunnel port, say). The token here only stands
  // in for the Secret's. Routes are read by the server's resolveRoute, nothing of our own.
  let resolvedRoutes: ResolvedRoute[];
  try {
    // With a store, the address stands in for the pod's (DEVTUNNEL_ADVERTISE_URL).
    const state = store === undefined ? { stateFile: o.stateFile } : { store, advertiseUrl: `http://10.0.0.1:${o.port}` };
    resolvedRoutes = resolveServerOptions({ port: o.port, tunnelPorts: o.tunnelPorts, ...state, routes, token: 'x'.repeat(16) }).routes;
  } catch (error) {
    const fault = error instanceof InvalidOptionError ? error.fault : undefined;
    throw new InvalidOptionError((error as Error).message.replace(/^devtunnel-server:/, 'devtunnel-server k8s-manifest:'), fault);
  }
  routes.forEach((text, i) => {
    const { name } = resolvedRoutes[i]!;
    // Printable ASCII only: the text is repeated in the YAML comment on top, where a line break
    // (which a URL parser would silently drop) would end the comment.
    if (!/^[\x20-\x7e]+$/.test(text)) throw invalid('routes', `${JSON.stringify(text)} must be printable ASCII on one line (an international host name in its xn-- form).`);
    if (text.includes(',')) throw invalid('routes', `${JSON.stringify(text)} contains a comma, but DEVTUNNEL_ROUTES separates routes with commas: write the URLs without one.`);
    if (!DNS_LABEL.test(`route-${name}`)) {
      throw invalid('routes', `"${name}": the routes Service names its port route-${name}, which must be a DNS label (at most 63 characters, ending in a letter or digit): use a route name of at most 57 characters that ends in a letter or digit.`);
    }
  });
  return { ...o, store, replicated: store !== undefined, routes, portRange, allowFromLabels, resolvedRoutes };
}
