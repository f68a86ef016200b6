#!/usr/bin/env node
/**
 * `devtunnel`: the command-line client. The only file of this package that touches `process`
 * (argv, env, signals, exit). Everything else is the library.
 */
import { parseArgs, styleText } from 'node:util';
import { createTunnelClient } from '../client';
import { TunnelError } from '../errors';
import type { Logger } from '../logger';
import type { TunnelOptions } from '../options';
import { expandOptional, FlagError, faultMessage, flagHelp, parseArgsOptions, readFlags } from '../protocol';
import { VERSION } from '../version';
import { doctorCommand } from './doctor';
import { clientFlags } from './flags';
import { attachOutput } from './output';

const usage = `Usage: devtunnel --server <url> --port <local port> [options]

Makes the app on localhost:<port> answer on its own port of the tunnel server.

Options:
${flagHelp(clientFlags, 24)}

Exit codes: 0 closed by SIGTERM, 130 closed by Ctrl+C (as a shell reports SIGINT, also through npx),
1 the tunnel failed (bad token, refused), 2 bad options.

Also: devtunnel doctor [--server …] [--token …] [--port …] [--json]: whether a tunnel would work,
and why not (devtunnel doctor --help).`;

function parse(argv: string[], env: NodeJS.ProcessEnv): { options: TunnelOptions; json: boolean; from: Record<string, string> } | 'help' | 'version' {
  const { values: parsed } = parseArgs({ args: expandOptional(clientFlags, argv), options: parseArgsOptions(clientFlags), strict: true, allowPositionals: false, allowNegative: true });
  const { values, from } = readFlags(clientFlags, parsed, env);
  if (values.help) return 'help';
  if (values.version) return 'version';
  if (values.port === undefined) throw new TunnelError('TUNNEL_INVALID_OPTION', 'devtunnel: --port is required: the port your local app listens on, e.g. --port 5173.');
  if (!values.server) throw new TunnelError('TUNNEL_INVALID_OPTION', 'devtunnel: --server is required (or set DEVTUNNEL_SERVER): the URL of your tunnel server.');
  const { json, help: _help, version: _version, ...options } = values;
  return { options: { token: '', ...options } as unknown as TunnelOptions, json: json === true, from };
}

async function main(): Promise<number> {
  if (process.argv[2] === 'doctor') {
    process.stdout.on('error', () => {});
    const color = process.stdout.isTTY === true && !process.env.NO_COLOR;
    return doctorCommand(process.argv.slice(3), process.env, { stdout: (text) => process.stdout.write(text), stderr: (text) => process.stderr.write(text), color });
  }
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(process.argv.slice(2), process.env);
  } catch (error) {
    const message = error instanceof FlagError ? `devtunnel: ${error.message}` : (error as Error).message;
    process.stderr.write(`${message}\n\n${usage}\n`);
    return 2;
  }
  if (parsed === 'help') {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  if (parsed === 'version') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const { options, json, from } = parsed;
  // A closed stdout (output piped into `head`) must not crash the tunnel.
  process.stdout.on('error', () => {});
  const color = process.stdout.isTTY === true && !process.env.NO_COLOR;
  const logger: Logger = {
    debug: () => {},
    info: () => {},
    warn: (message) => {
      if (!json) process.stderr.write(`${color ? styleText('yellow', message) : message}\n`);
    },
    error: () => {},
  };

  let client;
  try {
    client = createTunnelClient({ ...options, logger });
  } catch (error) {
    // Name the flag or variable the bad value came from, not only the option behind it.
    const fault = error instanceof TunnelError ? error.fault : undefined;
    process.stderr.write(`${faultMessage('devtunnel', from, fault) ?? (error as Error).message}\n`);
    return 2;
  }
  const output = attachOutput(client, json, { stdout: (text) => process.stdout.write(text), stderr: (text) => process.stderr.write(text), color });
  process.on('exit', output.flush);

  let signals = 0;
  /**
   * Ctrl+C ends with 130, as a shell reports a process SIGINT ended (and as npx reports it, which
   * takes the signal too), after the tunnel deregistered; SIGTERM, a service manager's stop, with 0.
   */
  let interrupted = false;
  const stop = (signal: NodeJS.Signals) => {
    if (++signals > 1) process.exit(130); // Second Ctrl+C: leave now.
    interrupted = signal === 'SIGINT';
    void client.close();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);

  const closed = new Promise<void>((resolve) => client.once('closed', resolve));
  let failed = false;
  client.once('error', () => {
    failed = true;
  });
  // A final error at the first attempt is reported by its `error` event (above), a close during it
  // (Ctrl+C) is no failure; either way the client has closed and ends with the same last line.
  await client.start().catch(() => {});
  await closed;
  output.closed(failed);
  return failed ? 1 : interrupted ? 130 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`devtunnel: unexpected failure: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 1;
  },
);
