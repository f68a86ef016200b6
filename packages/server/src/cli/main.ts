#!/usr/bin/env node
/**
 * `devtunnel-server`: the container and command-line entry. The only file of this package that
 * touches `process` (argv, env, signals, exit). Every flag has a `DEVTUNNEL_*` twin.
 */
import { parseArgs } from 'node:util';
import { createBatchedWriter, faultMessage, FlagError, flagHelp, parseArgsOptions, readFlags } from '@devtunnel/core/protocol';
import { InvalidOptionError } from '../errors';
import { k8sManifestCommand } from '../k8s/command';
import { createJsonLogger, type LogLevel } from '../logger';
import type { ServerOptions } from '../options';
import { createTunnelServer } from '../server';
import { commandFlags, serverFlags } from './flags';


const usage = `Usage: devtunnel-server [options]

Runs the devtunnel server: a control API for tunnel clients and one port per tunnel.
Every option can also be set as an environment variable (shown in brackets).

Options:
${flagHelp([...serverFlags, ...commandFlags], 32)}

Also: devtunnel-server k8s-manifest [--tunnel-ports …] [--namespace …] [--image …] [--ingress-host …]
prints the Kubernetes manifests for a range (every tunnel port listed for you); see docs/deploy.md.
`;

const flags = [...serverFlags, ...commandFlags];

function parse(argv: string[], env: NodeJS.ProcessEnv): { options: ServerOptions; level: LogLevel; from: Record<string, string> } | 'help' {
  const { values: parsed } = parseArgs({ args: argv, options: parseArgsOptions(flags), strict: true, allowPositionals: false });
  const { values, from } = readFlags(flags, parsed, env);
  if (values.help) return 'help';
  const { 'log-level': level = 'info', help: _help, ...options } = values;
  if (!['debug', 'info', 'warn', 'error'].includes(level as string)) throw new InvalidOptionError(`devtunnel-server: --log-level must be debug, info, warn or error (got "${String(level)}").`);
  return { options: options as ServerOptions, level: level as LogLevel, from };
}

async function main(): Promise<number> {
  if (process.argv[2] === 'k8s-manifest') {
    return k8sManifestCommand(process.argv.slice(3), { stdout: (text) => process.stdout.write(text), stderr: (text) => process.stderr.write(text) });
  }
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(process.argv.slice(2), process.env);
  } catch (error) {
    const message = error instanceof FlagError ? `devtunnel-server: ${error.message}` : (error as Error).message;
    process.stderr.write(`${message}\n\n${usage}`);
    return 2;
  }
  if (parsed === 'help') {
    process.stdout.write(usage);
    return 0;
  }
  // A closed stdout (logs piped into `head`, a collector gone) must not crash the server.
  process.stdout.on('error', () => {});
  const out = createBatchedWriter((text) => process.stdout.write(text));
  process.on('exit', out.flush);
  const logger = createJsonLogger(out.write, parsed.level);
  let server;
  try {
    server = createTunnelServer({ ...parsed.options, logger });
  } catch (error) {
    // Name the flag or variable the bad value came from, not only the option behind it.
    const fault = error instanceof InvalidOptionError ? error.fault : undefined;
    process.stderr.write(`${faultMessage('devtunnel-server', parsed.from, fault) ?? (error as Error).message}\n`);
    return 2;
  }
  if (server.options.generatedToken) {
    // Printed once, on stderr, never in the JSON log: the server is never open by accident.
    process.stderr.write(`devtunnel-server: no --token or DEVTUNNEL_TOKEN given; generated one for this run:\n\n  DEVTUNNEL_TOKEN=${server.options.token}\n\nClients need it to register. Set DEVTUNNEL_TOKEN to keep one across restarts.\n`);
  }
  try {
    await server.listen();
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    process.stderr.write(`devtunnel-server: cannot start: ${e.message}${e.code === 'EADDRINUSE' ? ' (another process holds the port; choose another with --port)' : ''}\n`);
    await server.close();
    return 1;
  }
  let signals = 0;
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      if (++signals > 1) process.exit(1); // A second signal: stop waiting for the drain.
      logger.log('info', 'server.signal', { signal });
      void server.close().then(resolve);
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`devtunnel-server: unexpected failure: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 1;
  },
);
