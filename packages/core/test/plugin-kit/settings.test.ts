import { clusterDomain, dialAddress, disabledReason, pluginSettings } from '../../src/plugin-kit/settings';

describe('what dev-server plugins share', () => {
  test('disabledReason: explicit option first, then DEVTUNNEL=0, Vitest, CI', () => {
    expect(disabledReason({ CI: 'true' }, true)).toBeUndefined();
    expect(disabledReason({}, false)).toMatch(/enabled: false/);
    expect(disabledReason({ DEVTUNNEL: '0' }, undefined)).toMatch(/DEVTUNNEL=0/);
    expect(disabledReason({ VITEST: 'true' }, undefined)).toMatch(/Vitest/);
    expect(disabledReason({ CI: 'true' }, undefined)).toMatch(/CI/);
    expect(disabledReason({ CI: 'false' }, undefined)).toBeUndefined();
    expect(disabledReason({}, undefined)).toBeUndefined();
  });

  test('inspect: the option first, then DEVTUNNEL_INSPECT (false, true or an address), else the default', () => {
    const inspect = (option: boolean | string | undefined, env: Record<string, string>) => pluginSettings({ inspect: option }, env, 'x').inspect;
    expect(inspect(undefined, {})).toBeUndefined();
    expect(inspect(undefined, { DEVTUNNEL_INSPECT: '0' })).toBe(false);
    expect(inspect(undefined, { DEVTUNNEL_INSPECT: '127.0.0.1:4040' })).toBe('127.0.0.1:4040');
    expect(inspect(true, { DEVTUNNEL_INSPECT: 'false' })).toBe(true);
  });

  test('compress: the option first, then DEVTUNNEL_COMPRESS, else the default', () => {
    const compress = (option: boolean | undefined, env: Record<string, string>) => pluginSettings({ compress: option }, env, 'x').compress;
    expect(compress(undefined, {})).toBeUndefined();
    expect(compress(undefined, { DEVTUNNEL_COMPRESS: 'false' })).toBe(false);
    expect(compress(undefined, { DEVTUNNEL_COMPRESS: '1' })).toBe(true);
    expect(compress(true, { DEVTUNNEL_COMPRESS: '0' })).toBe(true);
  });

  test('dialAddress: wildcards become the loopback of their family; pipes have no port', () => {
    expect(dialAddress({ address: '0.0.0.0', family: 'IPv4', port: 5173 })).toEqual({ host: '127.0.0.1', port: 5173 });
    expect(dialAddress({ address: '::', family: 'IPv6', port: 5173 })).toEqual({ host: '::1', port: 5173 });
    expect(dialAddress({ address: '::1', family: 'IPv6', port: 5174 })).toEqual({ host: '::1', port: 5174 });
    expect(dialAddress('/tmp/vite.sock')).toBeUndefined();
    expect(dialAddress(null)).toBeUndefined();
  });

  test('clusterDomain: the tunnel server\'s parent domain, never for IPs or short names', () => {
    expect(clusterDomain('https://devtunnel.test.example.com')).toBe('.test.example.com');
    expect(clusterDomain('http://127.0.0.1:8080')).toBeUndefined();
    expect(clusterDomain('http://[::1]:8080')).toBeUndefined();
    expect(clusterDomain('http://tunnels:8080')).toBeUndefined();
    expect(clusterDomain('not a url')).toBeUndefined();
    expect(clusterDomain(undefined)).toBeUndefined();
  });
});
