import { mergeAllowedHosts, withTunnel } from '../src/index';

const env = { ...process.env };
afterEach(() => {
  process.env = { ...env };
});

describe('withTunnel (option translation, no dev server)', () => {
  beforeEach(() => {
    process.env.DEVTUNNEL_SERVER = 'https://devtunnel.test.example.com';
    process.env.DEVTUNNEL_TOKEN = 'a-token-0123456789';
    process.env.DEVTUNNEL = '1';
    delete process.env.CI;
  });

  test('allowedHosts is merged, never widened', () => {
    expect(mergeAllowedHosts('all', ['.x.com'])).toBe('all');
    expect(mergeAllowedHosts('auto', ['.x.com'])).toEqual(['.x.com']);
    expect(mergeAllowedHosts(undefined, ['.x.com'])).toEqual(['.x.com']);
    expect(mergeAllowedHosts('mine.com', ['.x.com'])).toEqual(['mine.com', '.x.com']);
    expect(mergeAllowedHosts(['a.com', '.x.com'], ['.x.com'])).toEqual(['a.com', '.x.com']);
    expect(withTunnel({ allowedHosts: 'all' }).allowedHosts).toBe('all');
    expect(withTunnel({}).allowedHosts).toEqual(['.test.example.com']);
  });

  test('the HMR client URL follows the page, only when the user left it unset; a prefix moves the socket', () => {
    expect(withTunnel({}).client).toEqual({ webSocketURL: 'auto://0.0.0.0:0/ws' });
    expect(withTunnel({ client: { webSocketURL: 'ws://mine:1/ws', overlay: false } }).client).toEqual({ webSocketURL: 'ws://mine:1/ws', overlay: false });
    expect(withTunnel({ client: false }).client).toBe(false);
    const prefixed = withTunnel({ devMiddleware: { publicPath: '/cart/' } });
    expect(prefixed.client).toEqual({ webSocketURL: 'auto://0.0.0.0:0/cart/ws' });
    expect(prefixed.webSocketServer).toEqual({ type: 'ws', options: { path: '/cart/ws' } });
    expect(withTunnel({ webSocketServer: 'sockjs' }, { publicPath: '/cart' }).webSocketServer).toBe('sockjs');
  });

  test("the user's options and onListening survive", () => {
    const calls: string[] = [];
    const extended = withTunnel({ port: 'auto', hot: true, onListening: () => calls.push('user') });
    expect(extended).toMatchObject({ port: 'auto', hot: true });
    extended.onListening!({ server: null });
    expect(calls).toEqual(['user']);
  });

  test('off in CI and with DEVTUNNEL=0: options untouched but for onListening', () => {
    // The same switches turned on leave their mark, so the two cases below can fail.
    expect(withTunnel({ allowedHosts: 'auto' }).allowedHosts).toEqual(['.test.example.com']);
    for (const [name, value] of [['CI', 'true'], ['DEVTUNNEL', '0']] as const) {
      process.env = { ...env, DEVTUNNEL_SERVER: 'https://devtunnel.test.example.com', DEVTUNNEL_TOKEN: 'a-token-0123456789', [name]: value };
      if (name === 'DEVTUNNEL') delete process.env.CI;
      const off = withTunnel({ allowedHosts: 'auto' });
      expect([name, off.allowedHosts, off.client]).toEqual([name, 'auto', undefined]);
    }
  });
});
