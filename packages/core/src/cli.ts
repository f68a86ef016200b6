/**
 * `devtunnel`: the command-line client. The only file of this package that touches `process`
 * (argv, env, signals, exit). Everything else is the library.
 */
import { parseArgs, styleText } from 'node:util';
import { createTunnelClient, type RequestEvent } from './client';
import { TunnelError } from './errors';
import { closingFields, createBatchedWriter } from './protocol';
import type { Logger } from './logger';
import type { TunnelOptions } from './options';
import { cliFlags } from './cli-flags';
import { VERSION } from './version';


const usage = `Usage: devtunnel --server <url> --port <local port> [options]

Makes the app on localhost:<port> answer on its own port of the tunnel server.

Options:
${cliFlags.map((f) => `  --${(f.flag + (f.type === 'string' ? ' <value>' : '')).padEnd(24)} ${f.help}${'default' in f ? ` (default: ${f.default})` : ''}${'env' in f ? ` [${f.env}]` : ''}`).join('\n')}

Exit codes: 0 closed by Ctrl+C or SIGTERM, 1 the tunnel failed (bad token, refused), 2 bad options.`;

function intFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new TunnelError('TUNNEL_INVALID_OPTION', `devtunnel: --${name} must be a whole number (got "${value}").`);
  return n;
}

function parse(argv: string[], env: NodeJS.ProcessEnv): { options: TunnelOptions; json: boolean } | 'help' | 'version' {
  const spec = Object.fromEntries(cliFlags.map((f) => [f.flag, { type: f.type }])) as Record<string, { type: 'string' | 'boolean' }>;
  const { values } = parseArgs({ args: argv, options: spec, strict: true, allowPositionals: false });
  const v = values as Record<string, string | boolean | undefined>;
  if (v.help) return 'help';
  if (v.version) return 'version';
  const str = (k: string) => v[k] as string | undefined;
  const port = intFlag('port', str('port'));
  if (port === undefined) throw new TunnelError('TUNNEL_INVALID_OPTION', 'devtunnel: --port is required: the port your local app listens on, e.g. --port 5173.');
  const options: TunnelOptions = {
    server: str('server') ?? env.DEVTUNNEL_SERVER ?? '',
    token: str('token') ?? env.DEVTUNNEL_TOKEN ?? '',
    port,
    host: str('host'),
    https: v.https === true ? true : undefined,
    name: str('name') ?? env.DEVTUNNEL_NAME,
    preferredPort: intFlag('preferred-port', str('preferred-port')),
    identity: str('identity'),
    polls: intFlag('polls', str('polls')),
    maxInFlight: intFlag('max-in-flight', str('max-in-flight')),
    transport: str('transport') as TunnelOptions['transport'],
    rewriteHost: v['rewrite-host'] === true ? true : undefined,
    allowedHosts: str('allowed-hosts')?.split(',').map((h) => h.trim()).filter(Boolean),
    stateDir: str('state-dir'),
    proxy: str('proxy'),
  };
  if (!options.server) throw new TunnelError('TUNNEL_INVALID_OPTION', 'devtunnel: --server is required (or set DEVTUNNEL_SERVER): the URL of your tunnel server.');
  return { options, json: v.json === true };
}

function time(): string {
  return new Date().toTimeString().slice(0, 8);
}

function color(style: Parameters<typeof styleText>[0], text: string): string {
  return process.stdout.isTTY && !process.env.NO_COLOR ? styleText(style, text) : text;
}

function statusColor(status: number): Parameters<typeof styleText>[0] {
  return status >= 500 ? 'red' : status >= 400 ? 'yellow' : status >= 300 ? 'cyan' : 'green';
}

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(process.argv.slice(2), process.env);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${usage}\n`);
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
  const { options, json } = parsed;
  // A closed stdout (output piped into `head`) must not crash the tunnel.
  process.stdout.on('error', () => {});
  // Lines go out together, at most 50 ms after the first one (or at 64 KiB): one write, and one
  // wake-up of the terminal or the program reading us, for many request lines under load.
  const writer = createBatchedWriter((text) => process.stdout.write(text));
  const out = (line: string) => writer.write(line + '\n');
  process.on('exit', writer.flush);
  const event = (name: string, fields: object) => out(`{"event":"${name}","time":"${new Date().toISOString()}"${closingFields(fields)}`);
  const logger: Logger = {
    debug: () => {},
    info: () => {},
    warn: (message) => {
      if (!json) process.stderr.write(`${color('yellow', message)}\n`);
    },
    error: () => {},
  };

  let client;
  try {
    client = createTunnelClient({ ...options, logger });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    return 2;
  }

  client.on('registered', (info) => {
    if (json) event('registered', { ...info });
    else out(`${color('green', '➜')}  ${color('bold', 'Tunnel:')} ${color('cyan', info.url)} → ${info.target}  (${info.name}, port ${info.port}${info.reconnected ? ', back again' : ''})`);
  });
  client.on('request', (r: RequestEvent) => {
    if (json) event('request', r);
    else out(`${color('dim', time())} ${r.method} ${r.path} ${color(statusColor(r.status), String(r.status))}${r.error ? ` ${r.error}` : ''} ${color('dim', `${r.durationMs} ms`)}`);
  });
  client.on('reconnecting', (r) => {
    if (json) event('reconnecting', { attempt: r.attempt, delayMs: r.delayMs, error: r.error.message, code: r.error.code });
  });
  client.on('error', (error) => {
    if (json) event('error', { code: error.code, message: error.message });
    else process.stderr.write(`${color('red', 'devtunnel:')} ${error.message}\n`);
  });

  let signals = 0;
  const stop = () => {
    if (++signals > 1) process.exit(130); // Second Ctrl+C: leave now.
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
  if (json) event('closed', {});
  else if (!failed) out('devtunnel: closed.');
  return failed ? 1 : 0;
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
