/**
 * The one shape of a command-line flag table, shared by `devtunnel`, `devtunnel-server` and its
 * `k8s-manifest` subcommand: each table drives argument parsing (node:util `parseArgs`), the
 * environment variables, `--help` and the docs' option tables. An option keeps one name from flag
 * (`--max-in-flight`) to API (`maxInFlight`). Pure: the CLIs pass in what they parsed and read.
 */

/**
 * How a flag's value is read: `port` 0-65535, `count` and `ms` whole numbers, `list` a comma list,
 * `repeat` a flag given once per entry (`--route a --route b`), its variable a comma list;
 * `optional` a switch that may take a value (`--inspect`, `--inspect 127.0.0.1:4040`,
 * `--no-inspect`; its variable `true`, `false` or the value): see {@link expandOptional}.
 */
export type FlagKind = 'string' | 'boolean' | 'list' | 'repeat' | 'port' | 'count' | 'ms' | 'optional';

export interface Flag<O extends string = string> {
  /** `--flag`, kebab-case. */
  readonly flag: string;
  /** The option it sets (the API's camelCase name); none for the command's own (`--json`, `--help`). */
  readonly option?: O;
  readonly kind: FlagKind;
  /** The environment variable that sets it when the flag is absent. */
  readonly env?: string;
  /** What `--help` and the docs say it defaults to. */
  readonly default?: string;
  readonly help: string;
}

/** A flag that sets an option (every flag of a table of options only). */
export type OptionFlag<O extends string = string> = Flag<O> & { readonly option: O };

/** A flag or variable whose value cannot be read; the message names it and says what it takes. */
export class FlagError extends Error {
  readonly code = 'invalid_flag';
}

/** `DEVTUNNEL_` and the flag in upper snake case: `--tunnel-ports` → `DEVTUNNEL_TUNNEL_PORTS`. */
export const envName = (flag: string): string => `DEVTUNNEL_${flag.toUpperCase().replace(/-/g, '_')}`;

/**
 * The `options` argument of node:util `parseArgs` for a table. A `boolean` flag that sets an option
 * has its negation too (`--no-compress`), for options on by default.
 */
export function parseArgsOptions(flags: readonly Flag[]): Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> {
  const out: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {};
  for (const f of flags) {
    out[f.flag] = f.kind === 'repeat' ? { type: 'string', multiple: true } : { type: f.kind === 'boolean' ? 'boolean' : 'string' };
    if (f.kind === 'boolean' && f.option) out[`no-${f.flag}`] = { type: 'boolean' };
  }
  return out;
}

/**
 * The arguments with every `optional` flag spelled so that `parseArgs` (which has no optional
 * values) reads it as a string: `--no-inspect` becomes `--inspect=false`, and `--inspect` with no
 * value after it (the end, or another flag next) `--inspect=true`. Anything after `--` is left.
 */
export function expandOptional(flags: readonly Flag[], argv: readonly string[]): string[] {
  const optional = new Set(flags.filter((f) => f.kind === 'optional').map((f) => f.flag));
  if (optional.size === 0) return [...argv];
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const name = arg.startsWith('--') ? arg.slice(2) : '';
    if (name.startsWith('no-') && optional.has(name.slice(3))) out.push(`--${name.slice(3)}=false`);
    else if (optional.has(name) && (i + 1 === argv.length || argv[i + 1]!.startsWith('-'))) out.push(`${arg}=true`);
    else out.push(arg);
  }
  return out;
}

/** An `optional` flag's value: `true`/`1` and `false`/`0` switch it, anything else is the value. */
export function optionalValue(raw: string): boolean | string {
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  return raw;
}

function convert(f: Flag, raw: string | boolean | Array<string | boolean>, source: string): unknown {
  if (typeof raw === 'boolean') return raw;
  if (Array.isArray(raw)) return raw.map((s) => String(s).trim()).filter(Boolean);
  switch (f.kind) {
    case 'string':
      return raw;
    case 'optional':
      return optionalValue(raw);
    case 'list':
    case 'repeat':
      return raw.split(',').map((s) => s.trim()).filter(Boolean);
    case 'boolean':
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      throw new FlagError(`${source} must be true or false (got "${raw}").`);
    default: {
      const n = Number(raw);
      if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n)) throw new FlagError(`${source} must be a whole number (got "${raw}").`);
      if (f.kind === 'port' && n > 65535) throw new FlagError(`${source} must be a port number from 0 to 65535 (got "${raw}").`);
      return n;
    }
  }
}

export interface ReadFlags {
  /** Values by option name (or by flag name for the command's own flags), converted. */
  values: Record<string, unknown>;
  /** Where each value came from, by the same key: `--flag` or the variable's name. */
  from: Record<string, string>;
}

/**
 * Values from `parsed` (what `parseArgs` gave), else from `env` for flags that have a variable;
 * an empty variable counts as unset. Throws {@link FlagError} naming the flag or the variable.
 */
export function readFlags(flags: readonly Flag[], parsed: Record<string, string | boolean | Array<string | boolean> | undefined>, env: Record<string, string | undefined>): ReadFlags {
  const values: Record<string, unknown> = {};
  const from: Record<string, string> = {};
  for (const f of flags) {
    const key = f.option ?? f.flag;
    let given = parsed[f.flag];
    const negated = f.kind === 'boolean' && f.option !== undefined && parsed[`no-${f.flag}`] === true;
    if (negated) {
      if (given !== undefined) throw new FlagError(`--${f.flag} and --no-${f.flag} contradict each other: give one of them.`);
      given = false;
    }
    const fromEnv = given === undefined && f.env !== undefined && env[f.env] !== undefined && env[f.env] !== '';
    const raw = given ?? (fromEnv ? env[f.env!] : undefined);
    if (raw === undefined) continue;
    const source = fromEnv ? f.env! : `--${negated ? 'no-' : ''}${f.flag}`;
    values[key] = convert(f, raw, source);
    from[key] = source;
  }
  return { values, from };
}

/**
 * A bad option's message in the words the user typed: the flag or variable its value came from
 * (`from`, see {@link ReadFlags}), with the option behind it; undefined when the value came from
 * neither (a default, the API), and the error's own message is the right one.
 */
export function faultMessage(program: string, from: Record<string, string>, fault: { option: string; problem: string } | undefined): string | undefined {
  const source = fault && from[fault.option];
  return source ? `${program}: ${source} (option "${fault.option}") ${fault.problem}` : undefined;
}

/** The option lines of `--help`: flag, what it does, its default and its variable. */
export function flagHelp(flags: readonly Flag[], width = 30): string {
  return flags
    .map((f) => {
      const value = f.kind === 'boolean' ? '' : f.kind === 'optional' ? ' [<value>]' : ' <value>';
      const name = `--${f.flag}${value}${f.kind === 'repeat' ? '…' : ''}`;
      return `  ${name.padEnd(width)} ${f.help}${f.default !== undefined ? ` (default: ${f.default})` : ''}${f.env ? ` [${f.env}]` : ''}`;
    })
    .join('\n');
}
