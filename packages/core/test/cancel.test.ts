import { createCancel } from '../src/cancel';

describe('cancel', () => {
  test('runs each callback once with the reason, at once for late ones; forgotten ones never', () => {
    const cancel = createCancel();
    const seen: string[] = [];
    cancel.onAbort((r) => seen.push(`a:${r.message}`));
    const forget = cancel.onAbort(() => seen.push('forgotten'));
    forget();
    expect(cancel.aborted).toBe(false);
    cancel.abort(new Error('left'));
    cancel.abort(new Error('again'));
    cancel.onAbort((r) => seen.push(`late:${r.message}`));
    expect(seen).toEqual(['a:left', 'late:left']);
    expect(cancel.aborted).toBe(true);
    expect(cancel.reason?.message).toBe('left');
  });

  test('gives an AbortSignal on demand, before or after the cancel', () => {
    const before = createCancel();
    const signal = before.signal;
    expect(signal.aborted).toBe(false);
    before.abort(new Error('x'));
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(before.reason);
    const after = createCancel();
    after.abort();
    expect(after.signal.aborted).toBe(true);
    expect(after.reason?.message).toBe('aborted');
  });
});
