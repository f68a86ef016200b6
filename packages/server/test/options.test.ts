import { offeredFeatures, resolveServerOptions, serverDefaults } from '../src/options';

describe('resolveServerOptions', () => {
  test('defaults form the documented ladder, and a token is generated when none is given', () => {
    const o = resolveServerOptions();
    expect(o).toMatchObject(serverDefaults);
    expect(o.generatedToken).toBe(true);
    expect(o.token).toMatch(/^[0-9a-f]{48}$/);
    expect(o.portRange).toEqual({ from: 9000, to: 9099 });
    expect(resolveServerOptions({ token: 'x'.repeat(16) }).generatedToken).toBe(false);
  });

  test.each([
    ['tunnelPorts', { tunnelPorts: '9100-9000' }],
    ['tunnelPorts', { tunnelPorts: 'all' }],
    ['port', { port: 9050 }],
    ['token', { token: 'short' }],
    ['token', { token: 'has a space in it!!' }],
    ['publicUrl', { publicUrl: 'http://x' }],
    ['waitForPollMs', { pollTimeoutMs: 30_000 }],
    ['deadlineMs', { localTimeoutMs: 56_000 }],
    ['expireMs', { leaseMs: 700_000 }],
    ['queueLimit', { queueLimit: 0 }],
    ['pollTimeoutMs', { pollTimeoutMs: -5 }],
  ])('rejects %s with a message naming it', (option, patch) => {
    expect(() => resolveServerOptions(patch as object)).toThrow(expect.objectContaining({ code: 'invalid_option', message: expect.stringContaining(`"${option}"`) }));
  });

  test('undefined values fall back to defaults', () => {
    expect(resolveServerOptions({ port: undefined }).port).toBe(8080);
  });
});

describe('pushLifetimeMs', () => {
  test('offers push while pushes are kept, not with 0; refuses anything else', () => {
    expect(offeredFeatures(resolveServerOptions({}))).toContain('push');
    expect(offeredFeatures(resolveServerOptions({ pushLifetimeMs: 0 }))).not.toContain('push');
    expect(() => resolveServerOptions({ pushLifetimeMs: -1 })).toThrow(/pushLifetimeMs/);
    expect(() => resolveServerOptions({ pushLifetimeMs: 1.5 })).toThrow(/pushLifetimeMs/);
  });
});
