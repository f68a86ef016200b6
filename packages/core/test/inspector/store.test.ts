import { createStore, type Captured } from '../../src/inspector/store';

/** A bare record costing `bytes`, as the tap makes them. */
function record(bytes: number, url = '/'): Captured {
  return {
    seq: 0, time: 0, t0: 0, method: 'GET', url, requestHeaders: [], requestLength: 0, requestBody: undefined, upgrade: false,
    state: 'pending', status: undefined, error: undefined, responseHeaders: undefined, responseBody: undefined, bytesOut: 0,
    waitedMs: undefined, headersMs: undefined, localMs: undefined, totalMs: undefined, via: undefined, messages: undefined, replays: undefined, bytes, evicted: false,
  };
}

describe('the inspector store', () => {
  test('a ring: numbered in arrival order, the oldest leaves when it is full', () => {
    const store = createStore({ maxRecords: 3, idleRecords: 3, maxBytes: 1_000_000 });
    const records = [1, 2, 3, 4, 5].map((n) => record(10, `/${n}`));
    records.forEach((r) => store.add(r));
    expect(store.list().map((r) => r.url)).toEqual(['/3', '/4', '/5']);
    expect(store.list().map((r) => r.seq)).toEqual([2, 3, 4]);
    expect(store.get(1)).toBeUndefined();
    expect(store.get(4)?.url).toBe('/5');
    expect(store.get(5)).toBeUndefined();
    expect(store.get(1.5)).toBeUndefined();
    expect(records[0]!.evicted).toBe(true);
    expect(store.stats()).toEqual({ kept: 3, bytes: 30, seen: 5, evicted: 2, maxRecords: 3, idleRecords: 3, maxBytes: 1_000_000 });
  });

  test('fewer kept while no page watches; more once one does', () => {
    const store = createStore({ maxRecords: 5, idleRecords: 2, maxBytes: 1_000_000 });
    for (let i = 0; i < 4; i++) store.add(record(1, `/idle-${i}`));
    expect(store.list().map((r) => r.url)).toEqual(['/idle-2', '/idle-3']);
    store.watch(() => {});
    for (let i = 0; i < 4; i++) store.add(record(1, `/watched-${i}`));
    expect(store.list().map((r) => r.url)).toEqual(['/idle-3', '/watched-0', '/watched-1', '/watched-2', '/watched-3']);
    // The page closed: the next request leaves the last two.
    store.watch(undefined);
    store.add(record(1, '/after'));
    expect(store.list().map((r) => r.url)).toEqual(['/watched-3', '/after']);
  });

  test('a budget of bytes: what grows pushes the oldest out, whole; the newest always stays', () => {
    const store = createStore({ maxRecords: 100, idleRecords: 100, maxBytes: 1_000 });
    const a = record(300);
    const b = record(300);
    const c = record(300);
    [a, b, c].forEach((r) => store.add(r));
    store.grew(c, 200);
    expect(store.stats()).toMatchObject({ kept: 2, bytes: 800 });
    expect(a.evicted).toBe(true);
    // An evicted record in flight still grows, but no longer counts.
    store.grew(a, 5_000);
    expect(store.stats().bytes).toBe(800);
    // Alone over budget: kept (its own caps bound it), the others go.
    const big = record(2_000);
    store.add(big);
    expect(store.list()).toEqual([big]);
    expect(store.stats()).toMatchObject({ kept: 1, bytes: 2_000 });
  });

  test('whatever the traffic, the bytes kept stay within the budget once the newest fits', () => {
    const store = createStore({ maxRecords: 50, idleRecords: 50, maxBytes: 64 * 1024 });
    for (let i = 0; i < 10_000; i++) {
      const r = record(512);
      store.add(r);
      store.grew(r, (i * 7919) % 8192);
      expect(store.stats().bytes).toBeLessThanOrEqual(64 * 1024);
      expect(store.stats().kept).toBeLessThanOrEqual(50);
    }
  });

  test('changes are tracked only while watched, told once per batch, and a clear is told', () => {
    const store = createStore({ maxRecords: 10, idleRecords: 10, maxBytes: 1_000_000 });
    const unwatched = record(1);
    store.add(unwatched);
    let told = 0;
    store.watch(() => told++);
    expect(store.takeChanged()).toEqual({ records: [], cleared: false });
    const a = record(1);
    const b = record(1);
    store.add(a);
    store.add(b);
    store.touch(a);
    expect(told).toBe(1);
    expect(store.takeChanged().records).toEqual([a, b]);
    store.touch(unwatched);
    expect(told).toBe(2);
    store.clear();
    expect(told).toBe(2);
    expect(store.takeChanged()).toEqual({ records: [], cleared: true });
    expect(store.stats()).toMatchObject({ kept: 0, bytes: 0, seen: 0 });
    store.clear();
    expect(told).toBe(3);
    store.watch(undefined);
    store.add(record(1));
    expect(told).toBe(3);
    expect(store.takeChanged()).toEqual({ records: [], cleared: false });
  });
});
