import { parseArgs } from 'node:util';
import { InvalidOptionError } from './errors';
import { renderManifests } from './k8s/manifests';
import { k8sFlags, k8sManifestDefaults, type K8sManifestOptions } from './k8s/options';

/**
 * `devtunnel-server k8s-manifest`: prints the manifests of k8s/manifests.ts for the options of
 * k8s/options.ts. Pure: `k8sManifestCommand()` takes argv and two writers.
 */

const usage = `Usage: devtunnel-server k8s-manifest [options] > devtunnel.yaml

Prints the Kubernetes manifests of one devtunnel server as multi-document YAML: Namespace,
Secret (a placeholder token), PersistentVolumeClaim, Deployment, a Service and an Ingress for the
control API, a Service listing every tunnel port, and a NetworkPolicy. Walkthrough: docs/deploy.md.

Options:
${k8sFlags.map((f) => `  --${(f.flag + ' <value>').padEnd(24)} ${f.help} (default ${k8sManifestDefaults[f.option]})`).join('\n')}
  ${'--help'.padEnd(26)} show this help
`;

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
