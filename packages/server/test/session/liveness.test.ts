import { createLiveness } from '../../src/session/liveness';
import { manualClock } from './manual-clock';

describe('liveness', () => {
  test('connected while the client holds a poll or owes answers; else until its lease lapses', () => {
    const clock = manualClock();
    const live = createLiveness(clock, { leaseMs: 30_000, graceMs: 1_000 });
    expect(live.state(false, false)).toBe('connected');
    clock.advance(30_001);
    expect(live.state(false, false)).toBe('offline');
    expect(live.state(false, true)).toBe('connected');
    expect(live.state(true, false)).toBe('connected');
    live.seen();
    expect(live.state(false, false)).toBe('connected');
    expect(live.lapsed(clock.now() + 30_000)).toBe(false);
    expect(live.lapsed(clock.now() + 30_001)).toBe(true);
  });

  test('declared offline stays offline, even busy, until the client is seen again', () => {
    const clock = manualClock();
    const live = createLiveness(clock, { leaseMs: 30_000, graceMs: 1_000 });
    live.markOffline();
    expect([live.offline, live.state(false, true), live.state(true, false)]).toEqual([true, 'offline', 'connected']);
    live.seen();
    expect(live.state(false, false)).toBe('connected');
  });

  test('lost: after the grace, unless the client came back or was seen; one grace at a time', () => {
    const clock = manualClock();
    const live = createLiveness(clock, { leaseMs: 30_000, graceMs: 1_000 });
    let lost = 0;
    let back = false;
    live.lost(() => back, () => lost++);
    live.lost(() => back, () => lost++);
    clock.advance(1_000);
    expect(lost).toBe(1);
    live.lost(() => back, () => lost++);
    clock.advance(500);
    live.seen();
    clock.advance(500);
    expect(lost).toBe(1);
    live.lost(() => back, () => lost++);
    back = true;
    clock.advance(1_000);
    expect(lost).toBe(1);
    live.lost(() => false, () => lost++);
    live.stop();
    clock.advance(5_000);
    expect(lost).toBe(1);
  });
});
