import { createPortAllocator } from '../src/ports';

/** Pure allocator: no sockets; the clock is injected. */
describe('port allocator', () => {
  let t = 1_000;
  const now = () => t;
  const nobodyActive = () => false;
  beforeEach(() => {
    t = 1_000;
  });

  test('preferred port when free; the lowest free port otherwise', () => {
    const a = createPortAllocator({ from: 9000, to: 9009 }, now);
    expect(a.assign('alice', 'alice', 9005, nobodyActive)).toEqual({ port: 9005 });
    expect(a.assign('bob', 'bob', undefined, nobodyActive)).toEqual({ port: 9000 });
    expect(a.assign('carol', 'carol', 12345, nobodyActive)).toEqual({ port: 9001 }); // out of range: ignored
  });

  test('the same client keeps its port; another client never gets it', () => {
    const a = createPortAllocator({ from: 9000, to: 9009 }, now);
    a.assign('alice', 'alice', undefined, nobodyActive);
    expect(a.assign('alice', 'alice', undefined, nobodyActive).port).toBe(9000);
    expect(a.assign('bob', 'bob', 9000, nobodyActive).port).toBe(9001);
    expect(a.holderOf(9000)?.clientId).toBe('alice');
  });

  test('a client moving to a free preferred port gives its old one up', () => {
    const a = createPortAllocator({ from: 9000, to: 9009 }, now);
    a.assign('alice', 'alice', undefined, nobodyActive);
    a.assign('alice', 'alice', 9007, nobodyActive);
    expect(a.holderOf(9000)).toBeUndefined();
    expect(a.portOf('alice')).toBe(9007);
  });

  test('full range: the holder inactive the longest loses its port; if all are active, port_range_full', () => {
    const a = createPortAllocator({ from: 9000, to: 9001 }, now);
    a.assign('alice', 'alice', undefined, nobodyActive);
    t = 2_000;
    a.assign('bob', 'bob', undefined, nobodyActive);
    t = 3_000;
    a.touch('alice'); // alice was active more recently than bob
    expect(a.assign('carol', 'carol', undefined, nobodyActive)).toEqual({ port: 9001, evicted: 'bob' });
    expect(a.portOf('bob')).toBeUndefined();
    const active = new Set(['alice', 'carol']);
    expect(() => a.assign('dave', 'dave', undefined, (id) => active.has(id))).toThrow(expect.objectContaining({ code: 'port_range_full', status: 503 }));
  });

  test('unusable ports are skipped until their time is up', () => {
    const a = createPortAllocator({ from: 9000, to: 9001 }, now);
    a.markUnusable(9000, 1_000);
    expect(a.unusable()).toEqual([9000]);
    expect(a.assign('alice', 'alice', 9000, nobodyActive).port).toBe(9001);
    t += 1_000;
    expect(a.unusable()).toEqual([]);
    expect(a.assign('bob', 'bob', 9000, nobodyActive).port).toBe(9000);
  });

  test('load restores assignments, dropping duplicates and ports outside the range', () => {
    const a = createPortAllocator({ from: 9000, to: 9009 }, now);
    a.load([
      { clientId: 'alice', port: 9003, name: 'alice', lastActive: 5 },
      { clientId: 'bob', port: 9003, name: 'bob', lastActive: 5 },
      { clientId: 'carol', port: 80, name: 'carol', lastActive: 5 },
    ]);
    expect(a.list().map((e) => [e.clientId, e.port])).toEqual([['alice', 9003]]);
    expect(a.assign('alice', 'alice', undefined, nobodyActive).port).toBe(9003);
  });

  test('put sets one reservation from the store: the port\'s old holder and the client\'s old port go', () => {
    const a = createPortAllocator({ from: 9000, to: 9009 }, now);
    a.assign('alice', 'alice', 9001, nobodyActive);
    a.assign('bob', 'bob', 9002, nobodyActive);
    // Another replica gave bob's port to carol (bob expired), then moved alice to 9005.
    expect(a.put({ clientId: 'carol', name: 'carol', port: 9002, lastActive: 7 })).toBe(true);
    expect(a.put({ clientId: 'alice', name: 'alice', port: 9005, lastActive: 8 })).toBe(true);
    expect(a.list().map((e) => [e.clientId, e.port, e.lastActive]).sort()).toEqual([['alice', 9005, 8], ['carol', 9002, 7]]);
    expect(a.portOf('bob')).toBeUndefined();
    expect(a.holderOf(9001)).toBeUndefined();
    // Outside the range, or not a reservation: nothing changes.
    expect(a.put({ clientId: 'dave', name: 'dave', port: 80, lastActive: 1 })).toBe(false);
    expect(a.put({ clientId: 7 as unknown as string, name: 'x', port: 9003, lastActive: 1 })).toBe(false);
    expect(a.list()).toHaveLength(2);
  });
});
