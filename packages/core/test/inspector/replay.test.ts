import { captureWhole, emptyCapture, keep } from '../../src/inspector/body';
import { createTap } from '../../src/inspector/capture';
import { inspectorLimits } from '../../src/inspector';
import { replayRequest } from '../../src/inspector/replay';
import { createStore, type Captured } from '../../src/inspector/store';

function kept(over: Partial<Captured> = {}): Captured {
  const tap = createTap(createStore(inspectorLimits));
  const record = tap.start({ type: 'request', id: 'x', method: 'POST', url: '/cart?id=1', headers: [['Host', 'shop.test'], ['Content-Type', 'text/plain'], ['Connection', 'keep-alive'], ['Content-Length', '5']], bodyLength: 5 }, Buffer.from('hello'))!;
  return Object.assign(record, over);
}

describe('what a replay sends', () => {
  test('as it was: method, path, headers (hop-by-hop and framing left to the forwarder), body', () => {
    expect(replayRequest(kept(), {})).toEqual({ method: 'POST', url: '/cart?id=1', headers: [['Host', 'shop.test'], ['Content-Type', 'text/plain']], body: Buffer.from('hello') });
  });

  test('edited: each part given replaces the kept one', () => {
    const edited = replayRequest(kept(), { method: 'PUT', url: '/cart?id=2', headers: [['X-Try', 'again']], body: '{"qty":3}' });
    expect(edited).toEqual({ method: 'PUT', url: '/cart?id=2', headers: [['X-Try', 'again']], body: Buffer.from('{"qty":3}') });
    expect(replayRequest(kept(), { bodyBase64: Buffer.from([0, 1, 2]).toString('base64') })).toMatchObject({ body: Buffer.from([0, 1, 2]) });
    expect(replayRequest(kept(), { body: '' })).toMatchObject({ body: null });
  });

  test.each([
    [{ method: 'GE T' }, 'invalid_replay'],
    [{ url: 'http://elsewhere.example/' }, 'invalid_replay'],
    [{ url: '//elsewhere.example/' }, 'invalid_replay'],
    [{ url: '/a b' }, 'invalid_replay'],
    [{ headers: [['X-Bad', 'line\r\nInjected: 1']] }, 'invalid_replay'],
    [{ headers: [['Bad Name', 'x']] }, 'invalid_replay'],
    [{ headers: 'x' }, 'invalid_replay'],
    [{ body: 3 }, 'invalid_replay'],
    [[1], 'invalid_replay'],
  ])('refuses %j (%s): a replay goes to the local app only, with a well-formed request', (edit, code) => {
    expect(replayRequest(kept(), edit)).toMatchObject({ code });
  });

  test('a body that was cut, or never arrived, is not sent as it was; an upgrade is not replayed', () => {
    const cut = emptyCapture();
    keep(cut, Buffer.alloc(100), 10);
    expect(replayRequest(kept({ requestBody: cut }), {})).toMatchObject({ code: 'body_cut' });
    expect(replayRequest(kept({ requestBody: cut }), { body: 'replaced' })).toMatchObject({ body: Buffer.from('replaced') });
    expect(replayRequest(kept({ requestBody: undefined, requestLength: null }), {})).toMatchObject({ code: 'body_cut' });
    expect(replayRequest(kept({ requestBody: captureWhole(Buffer.alloc(0)), requestLength: null }), {})).toMatchObject({ body: null });
    expect(replayRequest(kept({ upgrade: true }), {})).toMatchObject({ code: 'not_replayable' });
  });
});
