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
  ])('rejects a bad %s with TUNNEL_INVALID_OPTION naming it', (option, patch) => {
    expect(() => resolveTunnelOptions({ ...base, ...(patch as object) })).toThrow(expect.objectContaining({ code: 'TUNNEL_INVALID_OPTION', message: expect.stringContaining(`"${option}"`) }));
  });

  test('accepts an IPv6 literal in brackets and strips them', () => {
    expect(resolveTunnelOptions({ ...base, host: '[::1]' }).host).toBe('::1');
  });
});
