import { createWorkQueue } from '../../src/session/queue';

interface Item {
  state: string;
  name: string;
  message: { bodyLength: number | null };
  gone?: boolean;
}
const item = (name: string, bodyLength: number | null = 0): Item => ({ state: 'queued', name, message: { bodyLength } });
const names = (items: Item[]) => items.map((i) => i.name);

describe('work queue', () => {
  const queue = (limit = 100) => createWorkQueue<Item>(limit, (i) => i.gone === true);

  test('cancels first, then requests in order; a request with a body only last, and alone after others', () => {
    const q = queue();
    for (const i of [item('a'), item('b'), item('c', 5), item('d')]) q.push(i);
    q.pushCancel({ type: 'cancel', id: 'x' });
    const first = q.takeWork(32, Infinity)!;
    expect(first.cancels).toEqual([{ type: 'cancel', id: 'x' }]);
    expect(names(first.batch)).toEqual(['a', 'b']);
    expect(names(q.takeWork(32, Infinity)!.batch)).toEqual(['c']);
    expect(names(q.takeWork(32, Infinity)!.batch)).toEqual(['d']);
    expect(q.takeWork(32, Infinity)).toBeUndefined();
  });

  test('a chunked body (unknown length) also comes last', () => {
    const q = queue();
    for (const i of [item('a'), item('b', null), item('c')]) q.push(i);
    expect(names(q.takeWork(32, Infinity)!.batch)).toEqual(['a']);
    expect(names(q.takeWork(32, Infinity)!.batch)).toEqual(['b']);
  });

  test('at most `limit` messages and `room` requests a poll', () => {
    const q = queue();
    for (let i = 0; i < 10; i++) q.push(item(`r${i}`));
    q.pushCancel({ type: 'cancel', id: 'x' });
    expect(q.takeWork(4, Infinity)).toMatchObject({ cancels: [{ id: 'x' }], batch: [{ name: 'r0' }, { name: 'r1' }, { name: 'r2' }] });
    expect(names(q.takeWork(32, 2)!.batch)).toEqual(['r3', 'r4']);
    // No room: cancels still leave, requests wait.
    q.pushCancel({ type: 'cancel', id: 'y' });
    expect(q.takeWork(32, 0)).toEqual({ cancels: [{ type: 'cancel', id: 'y' }], batch: [] });
    expect(q.length).toBe(5);
  });

  test('requests that no longer wait, or whose browser left, are dropped on the way', () => {
    const q = queue();
    const done = item('done');
    const left = { ...item('left'), gone: true };
    for (const i of [done, left, item('kept')]) q.push(i);
    done.state = 'done';
    expect(names(q.takeWork(32, Infinity)!.batch)).toEqual(['kept']);
    expect(q.length).toBe(0);
  });

  test('full: push refuses; cancels keep a bounded backlog, oldest dropped', () => {
    const q = queue(2);
    expect([q.push(item('a')), q.push(item('b')), q.push(item('c'))]).toEqual([true, true, false]);
    for (const id of ['1', '2', '3']) q.pushCancel({ type: 'cancel', id });
    expect(q.takeCancels().map((c) => c.id)).toEqual(['2', '3']);
    expect(q.cancels).toBe(0);
  });

  test('bodyless requests for a downstream: in order, within room, the others keep their places', () => {
    const q = queue();
    for (const i of [item('a'), item('b', 9), item('c'), item('d'), item('e', null), item('f')]) q.push(i);
    expect(names(q.takeBodyless(2))).toEqual(['a', 'c']);
    expect(names([...q.requests()])).toEqual(['b', 'd', 'e', 'f']);
    expect(names(q.takeBodyless(10))).toEqual(['d', 'f']);
    expect(names([...q.requests()])).toEqual(['b', 'e']);
  });

  test('work put back goes first, in its order; remove and clear', () => {
    const q = queue();
    const [a, b, c] = [item('a'), item('b'), item('c')];
    q.push(c);
    q.unshift([a, b]);
    q.unshiftCancels([{ type: 'cancel', id: 'back' }]);
    q.remove(b);
    expect(q.takeWork(32, Infinity)).toMatchObject({ cancels: [{ id: 'back' }], batch: [{ name: 'a' }, { name: 'c' }] });
    q.push(item('d'));
    q.pushCancel({ type: 'cancel', id: 'z' });
    q.clear();
    expect([q.length, q.cancels]).toEqual([0, 0]);
  });
});
