import { createPollSet, type PollHandle } from '../../src/session/polls';
import { manualClock } from './manual-clock';

function poll(name: string): PollHandle & { name: string; idled: number; gone: boolean } {
  return { name, idled: 0, gone: false, idle() { this.idled++; } };
}

describe('poll set', () => {
  test('a poll nobody takes is answered idle after the poll timeout, once', () => {
    const clock = manualClock();
    const polls = createPollSet<ReturnType<typeof poll>>(clock, 25_000);
    const p = poll('p');
    polls.add(p);
    clock.advance(24_999);
    expect(p.idled).toBe(0);
    clock.advance(1);
    expect(p.idled).toBe(1);
    expect(polls.size).toBe(0);
    clock.advance(60_000);
    expect(p.idled).toBe(1);
  });

  test('take gives the oldest open poll and stops its timeout; closed ones are skipped', () => {
    const clock = manualClock();
    const polls = createPollSet<ReturnType<typeof poll>>(clock, 1_000);
    const [a, b, c] = [poll('a'), poll('b'), poll('c')];
    polls.add(a);
    polls.add(b);
    polls.add(c);
    a.gone = true;
    expect(polls.take()?.name).toBe('b');
    expect(polls.size).toBe(1);
    clock.advance(5_000);
    expect([a.idled, b.idled, c.idled]).toEqual([0, 0, 1]);
    expect(polls.take()).toBeUndefined();
    expect(clock.pending).toBe(0);
  });

  test('remove forgets a poll that closed (false when it was not held); takeAll empties the set', () => {
    const clock = manualClock();
    const polls = createPollSet<ReturnType<typeof poll>>(clock, 1_000);
    const [a, b] = [poll('a'), poll('b')];
    polls.add(a);
    polls.add(b);
    expect(polls.remove(a)).toBe(true);
    expect(polls.remove(a)).toBe(false);
    expect(polls.takeAll().map((p) => p.name)).toEqual(['b']);
    expect([polls.size, clock.pending]).toEqual([0, 0]);
  });
});
