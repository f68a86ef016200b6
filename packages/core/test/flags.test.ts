import { parseArgs } from 'node:util';
import { envName, expandOptional, faultMessage, FlagError, flagHelp, parseArgsOptions, readFlags, type Flag } from '../src/protocol';

const flags: Flag[] = [
  { flag: 'port', option: 'port', kind: 'port', env: 'DEVTUNNEL_PORT', default: '8080', help: 'a port' },
  { flag: 'max-in-flight', option: 'maxInFlight', kind: 'count', help: 'a count' },
  { flag: 'allowed-hosts', option: 'allowedHosts', kind: 'list', env: 'DEVTUNNEL_ALLOWED_HOSTS', help: 'a list' },
  { flag: 'https', option: 'https', kind: 'boolean', env: 'DEVTUNNEL_HTTPS', help: 'a switch' },
  { flag: 'json', kind: 'boolean', help: 'the command’s own' },
];

describe('flag tables', () => {
  test('flags first, then variables (an empty one is unset), each value converted by its kind, keyed by option', () => {
    const read = readFlags(flags, { 'max-in-flight': '12', json: true }, { DEVTUNNEL_PORT: '9000', DEVTUNNEL_ALLOWED_HOSTS: ' a.example, .b.example ,', DEVTUNNEL_HTTPS: '' });
    expect(read.values).toEqual({ port: 9000, maxInFlight: 12, allowedHosts: ['a.example', '.b.example'], json: true });
    expect(read.from).toEqual({ port: 'DEVTUNNEL_PORT', maxInFlight: '--max-in-flight', allowedHosts: 'DEVTUNNEL_ALLOWED_HOSTS', json: '--json' });
    expect(readFlags(flags, { port: '1' }, { DEVTUNNEL_PORT: '2', DEVTUNNEL_HTTPS: 'true' }).values).toEqual({ port: 1, https: true });
  });

  test('a value that cannot be read names the flag, or the variable it came from', () => {
    expect(() => readFlags(flags, { 'max-in-flight': '1.5' }, {})).toThrow(new FlagError('--max-in-flight must be a whole number (got "1.5").'));
    expect(() => readFlags(flags, {}, { DEVTUNNEL_PORT: '70000' })).toThrow(/^DEVTUNNEL_PORT must be a port number/);
    expect(() => readFlags(flags, {}, { DEVTUNNEL_HTTPS: 'yes' })).toThrow(/^DEVTUNNEL_HTTPS must be true or false/);
  });

  test('parseArgs options, help lines with defaults and variables, variable names', () => {
    expect(parseArgsOptions(flags)).toEqual({ port: { type: 'string' }, 'max-in-flight': { type: 'string' }, 'allowed-hosts': { type: 'string' }, https: { type: 'boolean' }, 'no-https': { type: 'boolean' }, json: { type: 'boolean' } });
    expect(flagHelp(flags, 16).split('\n')[0]).toBe('  --port <value>   a port (default: 8080) [DEVTUNNEL_PORT]');
    expect(envName('tunnel-ports')).toBe('DEVTUNNEL_TUNNEL_PORTS');
  });

  test('an optional value: --flag alone switches it on, --no-flag off, --flag VALUE gives the value', () => {
    const table: Flag[] = [...flags, { flag: 'inspect', option: 'inspect', kind: 'optional', env: 'DEVTUNNEL_INSPECT', help: 'an optional value' }];
    const read = (argv: string[], env: Record<string, string> = {}) => {
      const { values } = parseArgs({ args: expandOptional(table, argv), options: parseArgsOptions(table), strict: true });
      return readFlags(table, values, env).values.inspect;
    };
    expect(read(['--inspect'])).toBe(true);
    expect(read(['--inspect', '--json'])).toBe(true);
    expect(read(['--inspect', '127.0.0.1:4040', '--json'])).toBe('127.0.0.1:4040');
    expect(read(['--inspect=4040'])).toBe('4040');
    expect(read(['--no-inspect'])).toBe(false);
    expect(read([], { DEVTUNNEL_INSPECT: '0' })).toBe(false);
    expect(read([], { DEVTUNNEL_INSPECT: 'localhost:4040' })).toBe('localhost:4040');
    expect(read(['--inspect'], { DEVTUNNEL_INSPECT: 'false' })).toBe(true);
    // After `--`, nothing is a flag.
    expect(expandOptional(table, ['--', '--no-inspect'])).toEqual(['--', '--no-inspect']);
    expect(flagHelp(table, 22).split('\n').at(-1)).toBe('  --inspect [<value>]    an optional value [DEVTUNNEL_INSPECT]');
  });

  test('a switch that sets an option has its negation: --no-flag sets false, said as given; both at once is an error', () => {
    const read = (argv: string[], env: Record<string, string> = {}) => {
      const { values } = parseArgs({ args: argv, options: parseArgsOptions(flags), strict: true });
      return readFlags(flags, values, env);
    };
    expect(read(['--https']).values.https).toBe(true);
    expect(read(['--no-https'])).toEqual({ values: { https: false }, from: { https: '--no-https' } });
    // The flag wins over the variable, whichever way it goes.
    expect(read(['--no-https'], { DEVTUNNEL_HTTPS: 'true' }).values.https).toBe(false);
    expect(read([], { DEVTUNNEL_HTTPS: '0' }).values.https).toBe(false);
    expect(() => read(['--https', '--no-https'])).toThrow(new FlagError('--https and --no-https contradict each other: give one of them.'));
    // The command's own switches have none.
    expect(() => read(['--no-json'])).toThrow(/Unknown option '--no-json'/);
  });

  test('a bad option is said by where its value came from, or not at all when it came from neither', () => {
    const fault = { option: 'token', problem: 'must be at least 16 printable characters.' };
    expect(faultMessage('devtunnel-server', { token: 'DEVTUNNEL_TOKEN' }, fault)).toBe('devtunnel-server: DEVTUNNEL_TOKEN (option "token") must be at least 16 printable characters.');
    expect(faultMessage('devtunnel-server', {}, fault)).toBeUndefined();
    expect(faultMessage('devtunnel', { token: '--token' }, undefined)).toBeUndefined();
  });
});
