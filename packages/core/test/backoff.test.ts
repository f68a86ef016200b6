import { createBackoff } from '../src/backoff';

describe('full-jitter backoff', () => {
  test('the ceiling doubles up to the cap; the delay is uniform below it', () => {
    const top = createBackoff(100, 1_000, () => 0.999999);
    expect([1, 2, 3, 4, 5, 6].map(() => top.next())).toEqual([99, 199, 399, 799, 999, 999]);
    const bottom = createBackoff(100, 1_000, () => 0);
    expect(bottom.next()).toBe(0);
    expect(bottom.attempt).toBe(1);
  });

  test('reset starts over', () => {
    const b = createBackoff(100, 1_000, () => 0.5);
    b.next();
    b.next();
    b.reset();
    expect(b.attempt).toBe(0);
    expect(b.next()).toBe(50);
  });
});

describe('equal-jitter backoff', () => {
  test('never below half the ceiling, whatever the dice say', () => {
    const low = createBackoff(1_000, 8_000, () => 0, 'equal');
    expect([1, 2, 3, 4, 5].map(() => low.next())).toEqual([500, 1_000, 2_000, 4_000, 4_000]);
    const high = createBackoff(1_000, 8_000, () => 0.999999, 'equal');
    expect(high.next()).toBe(999);
  });
});
