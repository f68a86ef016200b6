/**
 * `devtunnel-server k8s-manifest [options]`: prints the manifests of k8s/manifests.ts for the flags
 * of k8s/options.ts. Pure: takes argv and two writers; cli/main.ts passes the process's.
 */
import { parseArgs } from 'node:util';
import { faultMessage, FlagError, flagHelp, parseArgsOptions, readFlags, type Flag } from '@devtunnel/core/protocol';
import { InvalidOptionError } from '../errors';
import { renderManifests } from './manifests';
import { k8sFlags, type K8sManifestOptions } from './options';

/** The flags of the command itself, beside the options. */
const commandFlags: readonly Flag[] = [{ flag: 'help', kind: 'boolean', help: 'show this help' }];

const flags: readonly Flag[] = [...k8sFlags, ...commandFlags];

const usage = `Usage: devtunnel-server k8s-manifest [options] > devtunnel.yaml

Prints the Kubernetes manifests of one devtunnel server as multi-document YAML: Namespace,
Secret (a placeholder token), PersistentVolumeClaim, Deployment, a Service and an Ingress for the
control API, a Service listing every tunnel port, with --route a Service listing the routes' ports
(route-<name>), and a NetworkPolicy. Walkthrough: docs/deploy.md.

With --store (and --replicas N): N replicas sharing a Redis or Valkey, rolled one at a time, with a
PodDisruptionBudget and no volume; the pods read the store's URL from the Secret devtunnel-store
(key url), which you create: docs/deploy.md, "Several replicas".

Example: devtunnel-server k8s-manifest --route 'cart:8101=http://cart.shop.svc.cluster.local:80'
(quote a route that has options: ";" ends a shell command). The gateway's one change for a route:
docs/deploy.md, "Routes: one static change in the gateway".

Options:
${flagHelp(flags)}
`;

export interface CommandIO {
  stdout(text: string): void;
  stderr(text: string): void;
}

/**
 * `--host` is the bind address of `devtunnel-server`; this command used to take it for the
 * Ingress's host name. Refused by name, so an old command line says what to write instead of
 * "Unknown option" (and one flag name keeps one meaning across the server's commands).
 */
function refuseHost(argv: readonly string[]): void {
  if (argv.some((arg) => arg === '--host' || arg.startsWith('--host='))) {
    throw new FlagError("--host is devtunnel-server's bind address, not an option of k8s-manifest: for the Ingress's host name use --ingress-host.");
  }
}

/** Bad options: ours, the flags' (a port that is no number) or parseArgs' (unknown flag, missing value). */
function isBadOption(error: unknown): error is Error {
  const code = (error as { code?: unknown }).code;
  return error instanceof InvalidOptionError || error instanceof FlagError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'));
}

/** Prints the manifests for `argv`; exit code 0, or 2 for bad options (the usage on stderr). */
export function k8sManifestCommand(argv: readonly string[], io: CommandIO): number {
  /** Where each value came from (`--port`): bad values are named by their flag. */
  let from: Record<string, string> = {};
  try {
    refuseHost(argv);
    const { values: parsed } = parseArgs({ args: [...argv], options: parseArgsOptions(flags), strict: true, allowPositionals: false });
    // Before reading the values: --help answers even beside a bad one.
    if (parsed.help) {
      io.stdout(usage);
      return 0;
    }
    // No environment: DEVTUNNEL_* variables configure the server, never the generator.
    const read = readFlags(k8sFlags, parsed, {});
    from = read.from;
    io.stdout(renderManifests(read.values as K8sManifestOptions));
    return 0;
  } catch (error) {
    if (!isBadOption(error)) throw error; // anything else is a bug
    // A bad value is named by the flag it came from, with the option behind it.
    const fault = error instanceof InvalidOptionError ? error.fault : undefined;
    const message = error instanceof FlagError ? `devtunnel-server k8s-manifest: ${error.message}` : (faultMessage('devtunnel-server k8s-manifest', from, fault) ?? error.message);
    io.stderr(`${message}\n\n${usage}`);
    return 2;
  }
}
