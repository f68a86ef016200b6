import { pollsToOpen } from '../../src/client/poll-pool';

// pollsToOpen(waiting, active, full, quiet, streaming, maxInFlight)
describe('pollsToOpen', () => {
  test('opens every poll wanted when nothing waits', () => {
    expect(pollsToOpen(0, 0, 8, false, false, 100)).toBe(8);
    expect(pollsToOpen(3, 0, 8, false, false, 100)).toBe(5);
    expect(pollsToOpen(8, 0, 8, false, false, 100)).toBe(0);
  });

  test('counts a request being handled as a poll to come, but keeps a quarter waiting', () => {
    // Its upload goes back as a poll: 6 requests in hand leave 2 to open.
    expect(pollsToOpen(0, 6, 8, false, false, 100)).toBe(2);
    // Busier than the target: the floor (a quarter, at least one) still waits idle.
    expect(pollsToOpen(0, 20, 8, false, false, 100)).toBe(2);
    expect(pollsToOpen(0, 20, 2, false, false, 100)).toBe(1);
  });

  test('a quiet tunnel renews only its floor', () => {
    expect(pollsToOpen(0, 0, 8, true, false, 100)).toBe(2);
    expect(pollsToOpen(2, 0, 8, true, false, 100)).toBe(0);
  });

  test('never passes maxInFlight, polls and requests together', () => {
    expect(pollsToOpen(0, 0, 8, false, false, 5)).toBe(5);
    expect(pollsToOpen(1, 4, 8, false, false, 5)).toBe(0);
  });

  test('with a downstream, requests in hand do not stand for polls', () => {
    expect(pollsToOpen(0, 6, 2, false, true, 100)).toBe(2);
    expect(pollsToOpen(1, 6, 2, false, true, 100)).toBe(1);
    expect(pollsToOpen(0, 99, 2, false, true, 100)).toBe(1);
  });

  test('a target of no polls opens none', () => {
    expect(pollsToOpen(0, 0, 0, false, false, 100)).toBe(0);
  });
});
