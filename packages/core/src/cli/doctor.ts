/**
 * `devtunnel doctor [options]`: runs the doctor (doctor/index.ts) and prints each check as it
 * finishes. Its flags are the client's own (cli/flags.ts: same names, variables and help), the
 * ones that decide whether a tunnel works, plus `--json` and `--help`. Pure: takes argv, the
 * environment and writers; cli/main.ts passes the process's.
 */
import { parseArgs } from 'node:util';
import { runDoctor, type DoctorOptions } from '../doctor';
import { createPrinter, exitCode } from '../doctor/report';
import { FlagError, flagHelp, parseArgsOptions, readFlags, type Flag } from '../protocol';
import { VERSION } from '../version';
import { clientFlags } from './flags';

/** The client's flags the doctor takes, by name. */
const TAKEN = ['server', 'token', 'port', 'host', 'https', 'rewrite-host', 'allowed-hosts', 'proxy'];

export const doctorFlags: readonly Flag[] = [
  ...clientFlags
    .filter((f) => TAKEN.includes(f.flag))
    .map((f): Flag => (f.flag === 'port' ? { ...f, help: "port of the local app: also check that it answers and accepts the cluster's host" } : f)),
  { flag: 'json', kind: 'boolean', help: 'print one JSON object per line: one per check, then the verdict' },
  { flag: 'help', kind: 'boolean', help: 'show this help' },
];

const usage = `Usage: devtunnel doctor [--server <url>] [--token <token>] [--port <local port>] [options]

Tells whether a tunnel to the server would work, and if not why, without registering one: the
server URL, which proxy applies, DNS, TCP and TLS (an inspecting proxy's certificate named), the
control API and its protocol, the token, whether streams pass or a proxy buffers them, round trip
and throughput; with --port, the local app and whether its host check accepts the cluster's host.

Options:
${flagHelp(doctorFlags, 24)}

Exit codes: 0 a tunnel would work (warnings allowed), 1 it would not, 2 bad options.`;

export interface DoctorIO {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Whether colours are wanted (a terminal, and no NO_COLOR). */
  color: boolean;
}

/** Bad options: ours or parseArgs' (unknown flag, missing value). */
const isBadOption = (error: unknown): error is Error => error instanceof FlagError || String((error as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS');

export async function doctorCommand(argv: readonly string[], env: Record<string, string | undefined>, io: DoctorIO): Promise<number> {
  let values: Record<string, unknown>;
  try {
    const { values: parsed } = parseArgs({ args: [...argv], options: parseArgsOptions(doctorFlags), strict: true, allowPositionals: false });
    if (parsed.help) {
      io.stdout(`${usage}\n`);
      return 0;
    }
    values = readFlags(doctorFlags, parsed, env).values;
  } catch (error) {
    if (!isBadOption(error)) throw error;
    io.stderr(`devtunnel doctor: ${error.message}\n\n${usage}\n`);
    return 2;
  }
  const { json, help: _help, ...options } = values as DoctorOptions & { json?: boolean; help?: boolean };
  if (!json) io.stdout(`devtunnel doctor ${VERSION}: ${options.server ?? '(no server URL)'}\n\n`);
  const printer = createPrinter(json === true, io.color, io.stdout);
  const report = await runDoctor({ ...options, env, onCheck: printer.check });
  printer.done(report);
  return exitCode(report);
}
