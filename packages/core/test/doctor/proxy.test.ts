import { EnvHttpProxyAgent, type Dispatcher } from 'undici';
import { checkProxy, chooseProxy, redact } from '../../src/doctor/proxy';

/**
 * The doctor's account of which proxy applies must be the client's: each case is asked of
 * chooseProxy and of undici's EnvHttpProxyAgent itself (what the client uses without --proxy),
 * whose choice shows in the options its agent factory gets (no socket is opened).
 */
const VARIABLES = ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'no_proxy', 'NO_PROXY'];

function undiciChoice(env: Record<string, string>, server: string): string {
  const saved = Object.fromEntries(VARIABLES.map((k) => [k, process.env[k]]));
  for (const k of VARIABLES) delete process.env[k];
  Object.assign(process.env, env);
  let seen = 'none';
  const fake = { dispatch: () => true, close: async () => {}, destroy: async () => {}, on() { return this; } } as unknown as Dispatcher;
  const agent = new EnvHttpProxyAgent({ factory: (_origin: string, opts: object) => ((seen = (opts as { uri?: string }).uri ?? 'direct'), fake) } as object);
  try {
    agent.dispatch({ origin: new URL(server).origin, path: '/', method: 'GET', headers: {} }, { onError() {}, onConnect() {}, onHeaders: () => true, onData: () => true, onComplete() {} } as Dispatcher.DispatchHandler);
  } finally {
    for (const k of VARIABLES) if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
  return seen;
}

const cases: Array<[string, Record<string, string>, string]> = [
  ['https://devtunnel.test.example.com', { HTTPS_PROXY: 'http://p1.corp:3128' }, 'http://p1.corp:3128'],
  ['https://devtunnel.test.example.com', { HTTP_PROXY: 'http://p2.corp:3128' }, 'http://p2.corp:3128'],
  ['http://devtunnel.test.example.com', { HTTPS_PROXY: 'http://p1.corp:3128' }, 'direct'],
  ['http://devtunnel.test.example.com', { HTTPS_PROXY: 'http://p1.corp:3128', HTTP_PROXY: 'http://p2.corp:3128' }, 'http://p2.corp:3128'],
  ['https://devtunnel.test.example.com', { https_proxy: 'http://lower.corp:1', HTTPS_PROXY: 'http://upper.corp:1' }, 'http://lower.corp:1'],
  ['https://devtunnel.test.example.com', { https_proxy: '', HTTPS_PROXY: 'http://upper.corp:1' }, 'direct'],
  ['https://devtunnel.test.example.com', { HTTPS_PROXY: 'http://p1.corp:3128', NO_PROXY: '.example.com' }, 'direct'],
  ['https://devtunnel.test.example.com', { HTTPS_PROXY: 'http://p1.corp:3128', NO_PROXY: '*.test.example.com' }, 'direct'],
  ['https://devtunnel.test.example.com', { HTTPS_PROXY: 'http://p1.corp:3128', NO_PROXY: 'other.com example.com' }, 'direct'],
  ['https://devtunnel.test.example.com', { HTTPS_PROXY: 'http://p1.corp:3128', NO_PROXY: 'devtunnel.test.example.com:8443' }, 'http://p1.corp:3128'],
  ['https://devtunnel.test.example.com:8443', { HTTPS_PROXY: 'http://p1.corp:3128', NO_PROXY: 'devtunnel.test.example.com:8443' }, 'direct'],
  ['https://devtunnel.test.example.com', { HTTPS_PROXY: 'http://p1.corp:3128', NO_PROXY: 'ample.com' }, 'http://p1.corp:3128'],
  ['https://devtunnel.test.example.com', { HTTPS_PROXY: 'http://p1.corp:3128', NO_PROXY: '*' }, 'direct'],
  ['https://devtunnel.test.example.com', { HTTPS_PROXY: 'http://p1.corp:3128', no_proxy: '', NO_PROXY: '*' }, 'http://p1.corp:3128'],
  ['http://[::1]:8080', { HTTP_PROXY: 'http://p2.corp:3128', NO_PROXY: '[::1]' }, 'direct'],
  ['http://127.0.0.1:8080', { HTTP_PROXY: 'http://p2.corp:3128', NO_PROXY: 'localhost' }, 'http://p2.corp:3128'],
];

describe('which proxy applies', () => {
  test.each(cases)('%s with %j: as undici chooses', (server, env, expected) => {
    expect(undiciChoice(env, server)).toBe(expected);
    const { proxy } = chooseProxy(new URL(server), undefined, env);
    expect(proxy ? `${proxy.protocol}//${proxy.host}` : 'direct').toBe(expected);
  });

  test('--proxy wins over the variables and NO_PROXY; --proxy false goes direct', () => {
    const env = { HTTPS_PROXY: 'http://p1.corp:3128', NO_PROXY: '*' };
    const chosen = chooseProxy(new URL('https://devtunnel.test.example.com'), 'http://flag.corp:8080', env);
    expect(chosen.proxy?.host).toBe('flag.corp:8080');
    expect(chosen.source).toBe('--proxy');
    expect(chooseProxy(new URL('https://devtunnel.test.example.com'), false, env).proxy).toBeUndefined();
  });

  test('names the variable that applies and the NO_PROXY entry that sends the server direct', () => {
    const server = new URL('https://devtunnel.test.example.com');
    expect(checkProxy(server, undefined, { https_proxy: 'http://p.corp:3128', HTTP_PROXY: 'http://q.corp:1' }).result.summary).toBe('Through http://p.corp:3128: https_proxy applies to an https server; HTTP_PROXY does not.');
    const bypass = checkProxy(server, undefined, { HTTPS_PROXY: 'http://p.corp:3128', NO_PROXY: 'localhost,.example.com' });
    expect(bypass.choice?.bypass).toEqual({ variable: 'NO_PROXY', entry: '.example.com' });
    expect(bypass.result.status).toBe('pass');
  });

  test('a proxy setting that is no URL fails, and says the scheme is missing', () => {
    const { result, choice } = checkProxy(new URL('https://devtunnel.test.example.com'), undefined, { HTTPS_PROXY: 'proxy.corp:3128' });
    expect(choice).toBeUndefined();
    expect(result.status).toBe('fail');
    expect(result.summary).toContain('write http://proxy.corp:3128');
  });

  test('a lower-case variable that hides its upper-case twin is a warning (an empty https_proxy left in a shell)', () => {
    const { result, choice } = checkProxy(new URL('https://devtunnel.test.example.com'), undefined, { https_proxy: '', HTTPS_PROXY: 'http://p.corp:3128' });
    expect(choice?.proxy).toBeUndefined();
    expect(result.status).toBe('warn');
    expect(result.summary).toContain('https_proxy="" hides HTTPS_PROXY="http://p.corp:3128"');
  });

  test('passwords never show', () => {
    expect(redact('http://ann:s3cret@proxy.corp:3128')).toBe('http://ann:****@proxy.corp:3128');
    const { result } = checkProxy(new URL('https://devtunnel.test.example.com'), undefined, { HTTPS_PROXY: 'http://ann:s3cret@proxy.corp:3128' });
    expect(JSON.stringify(result)).not.toContain('s3cret');
  });
});
