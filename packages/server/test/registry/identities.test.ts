import { HttpError } from '../../src/errors';
import { silentLogger } from '../../src/logger';
import { createIdentityGate } from '../../src/registry/identities';

describe('identity gate', () => {
  const clientId = 'ann@laptop:5173#k3j';
  const a = { clientId, instance: 'a'.repeat(32), localPort: 5173 };
  const b = { clientId, instance: 'b'.repeat(32), localPort: 5174 };

  test('another process of the identity takes over once; the replaced one is refused until it expires', () => {
    let t = 0;
    const gate = createIdentityGate({ now: () => t, expireMs: 600_000, logger: silentLogger });
    expect(gate.takesOver(b, a)).toBe(true);
    expect(() => gate.admit(a, b)).toThrow(expect.objectContaining({ code: 'tunnel_replaced', message: expect.stringContaining('local port 5174') }));
    expect(() => gate.admit(b, b)).not.toThrow();
    // The same process registering again renews; an older client without instance never takes over.
    expect(gate.takesOver(b, b)).toBe(false);
    expect(gate.takesOver({ clientId }, b)).toBe(false);
    t = 600_001;
    gate.sweep(t);
    expect(() => gate.admit(a, b)).not.toThrow();
  });

  test('at most 12 registrations of one identity a minute, then 429 until the minute ends', () => {
    let t = 0;
    const gate = createIdentityGate({ now: () => t, expireMs: 600_000, logger: silentLogger });
    for (let i = 0; i < 12; i++) gate.admit({ clientId }, undefined);
    t = 20_000;
    let refused: HttpError | undefined;
    try {
      gate.admit({ clientId }, undefined);
    } catch (error) {
      refused = error as HttpError;
    }
    expect([refused?.code, refused?.retryAfter]).toEqual(['rate_limited', 40]);
    expect(() => gate.admit({ clientId: 'other@laptop:1#x' }, undefined)).not.toThrow();
    t = 60_001;
    expect(() => gate.admit({ clientId }, undefined)).not.toThrow();
  });
});
