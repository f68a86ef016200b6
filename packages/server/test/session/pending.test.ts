import { createPending, type Pendable } from '../../src/session/pending';
import { manualClock } from './manual-clock';

const request = (id: string, arrivedAt: number): Pendable => ({ id, state: 'queued', arrivedAt, dispatchedAt: undefined, timer: undefined });

describe('pending requests', () => {
  test('a dispatched request must be answered within the deadline from its arrival', () => {
    const clock = manualClock(10_000);
    const late: string[] = [];
    const pending = createPending<Pendable>(clock, 55_000, (r) => late.push(r.id));
    const r = request('r', 5_000);
    pending.dispatch(r);
    expect([r.state, r.dispatchedAt, pending.get('r')]).toEqual(['dispatched', 10_000, r]);
    clock.advance(49_999);
    expect(late).toEqual([]);
    clock.advance(1);
    expect(late).toEqual(['r']);
  });

  test('re-armed from the end of an upload; disarmed while the answer streams; forgotten with its timer', () => {
    const clock = manualClock(0);
    const late: string[] = [];
    const pending = createPending<Pendable>(clock, 1_000, (r) => late.push(r.id));
    const r = request('r', 0);
    pending.dispatch(r);
    pending.disarm(r);
    clock.advance(5_000);
    pending.arm(r, clock.now());
    clock.advance(999);
    expect(late).toEqual([]);
    pending.forget(r);
    clock.advance(10_000);
    expect([late, pending.size, clock.pending]).toEqual([[], 0, 0]);
  });

  test('upgraded connections count apart: they hold no deadline and owe no answer', () => {
    const clock = manualClock(0);
    const pending = createPending<Pendable>(clock, 1_000, () => {
      throw new Error('no deadline for an upgraded connection');
    });
    const [ws, get] = [request('ws', 0), request('get', 0)];
    pending.dispatch(ws);
    pending.dispatch(get);
    pending.markUpgraded(ws);
    expect([pending.size, pending.awaiting()]).toEqual([2, 1]);
    pending.forget(get);
    clock.advance(60_000);
    expect([pending.size, pending.awaiting()]).toEqual([1, 0]);
    pending.forget(ws);
    expect([pending.size, pending.awaiting()]).toEqual([0, 0]);
  });

  test('suspects are taken once; forgetting a request clears its suspicion', () => {
    const pending = createPending<Pendable>(manualClock(), 1_000, () => {});
    const [a, b] = [request('a', 0), request('b', 0)];
    pending.dispatch(a);
    pending.dispatch(b);
    pending.suspect(a);
    pending.suspect(b);
    pending.forget(b);
    expect(pending.takeSuspects().map((r) => r.id)).toEqual(['a']);
    expect(pending.suspects).toBe(0);
  });
});
