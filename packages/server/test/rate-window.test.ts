import { createRateWindow } from '../src/rate-window';

describe('rate window', () => {
  test('counts per key within a window that starts at the first event, then starts over', () => {
    let t = 1_000;
    const w = createRateWindow(60_000, () => t);
    expect(w.hit('a')).toBe(1);
    t += 10_000;
    expect(w.hit('a')).toBe(2);
    expect(w.hit('b')).toBe(1);
    expect(w.count('a')).toBe(2);
    expect(w.remainingMs('a')).toBe(50_000);
    t += 50_001;
    expect(w.count('a')).toBe(0);
    expect(w.remainingMs('a')).toBe(0);
    expect(w.hit('a')).toBe(1);
    expect(w.count('b')).toBe(1);
  });

  test('a spray of keys cannot grow it past its bound', () => {
    let t = 0;
    const w = createRateWindow(60_000, () => t, 100);
    for (let i = 0; i < 1_000; i++) w.hit(`k${i}`);
    // The last key's window survives each prune; older ones went with the bound.
    expect(w.count('k999')).toBe(1);
    expect(w.count('k0')).toBe(0);
    t += 61_000;
    expect(w.count('k999')).toBe(0);
  });
});
