import { resolveTunnelOptions, tunnelDefaults } from '../src/options';

const base = { server: 'https://devtunnel.test.example.com', token: 'secret-token', port: 5173 };

describe('resolveTunnelOptions', () => {
  test('fills defaults', () => {
    const o = resolveTunnelOptions(base);
    expect(o).toMatchObject({ host: tunnelDefaults.host, https: false, polls: 8, maxInFlight: 256, rewriteHost: false, port: 5173 });
    expect(o.server.href).toBe('https://devtunnel.test.example.com/');
  });

  test.each([
    ['server', { server: 'not a url' }],
    ['server', { server: 'ftp://x' }],
    ['server', { server: 'https://user:pw@x' }],
    ['token', { token: '' }],
    ['token', { token: 'has space' }],
    ['port', { port: 0 }],
    ['port', { port: 70000 }],
    ['port', { port: '5173' }],
    ['host', { host: 'a b' }],
    ['name', { name: 'Bad Name' }],
    ['name', { name: '<img src=x>' }],
    ['polls', { polls: 0 }],
    ['polls', { polls: 1000 }],
    ['maxInFlight', { maxInFlight: 1 }],
    ['preferredPort', { preferredPort: -1 }],
    ['proxy', { proxy: 'no url' }],
    ['compress', { compress: 'yes' }],
  ])('rejects a bad %s with TUNNEL_INVALID_OPTION naming it', (option, patch) => {
    expect(() => resolveTunnelOptions({ ...base, ...(patch as object) })).toThrow(expect.objectContaining({ code: 'TUNNEL_INVALID_OPTION', message: expect.stringContaining(`"${option}"`) }));
  });

  test('the inspector: on by default on a free loopback port; an address must be loopback', () => {
    expect(resolveTunnelOptions(base).inspect).toEqual({ host: '127.0.0.1', port: 0 });
    expect(resolveTunnelOptions({ ...base, inspect: false }).inspect).toBe(false);
    expect(resolveTunnelOptions({ ...base, inspect: '4040' }).inspect).toEqual({ host: '127.0.0.1', port: 4040 });
    expect(resolveTunnelOptions({ ...base, inspect: 'localhost:4040' }).inspect).toEqual({ host: '127.0.0.1', port: 4040 });
    expect(resolveTunnelOptions({ ...base, inspect: '[::1]:4041' }).inspect).toEqual({ host: '::1', port: 4041 });
    expect(resolveTunnelOptions({ ...base, inspect: '127.0.0.2:0' }).inspect).toEqual({ host: '127.0.0.2', port: 0 });
    for (const bad of ['0.0.0.0:4040', '192.168.1.2:4040', 'example.com:4040', '[::]:4040', '127.0.0.1:70000', 'on', 4040]) {
      expect(() => resolveTunnelOptions({ ...base, inspect: bad as string })).toThrow(expect.objectContaining({ code: 'TUNNEL_INVALID_OPTION', message: expect.stringContaining('"inspect" must be true, false, or a loopback address') }));
    }
  });

  test('compress: on by default, a boolean', () => {
    expect(resolveTunnelOptions(base).compress).toBe(true);
    expect(resolveTunnelOptions({ ...base, compress: false }).compress).toBe(false);
    expect(() => resolveTunnelOptions({ ...base, compress: 'false' as unknown as boolean })).toThrow(/option "compress" must be true or false \(got "false"\)/);
  });

  test('accepts an IPv6 literal in brackets and strips them', () => {
    expect(resolveTunnelOptions({ ...base, host: '[::1]' }).host).toBe('::1');
  });
});
