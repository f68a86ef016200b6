import { PassThrough } from 'node:stream';
import { framesOf, pollAnswer, release } from '../../src/control/poll';
import { encodeFrames, FrameError, MAX_BATCH, type RequestMessage } from '../../src/protocol';

const id = (n: number) => n.toString(16).padStart(32, '0');
const get = (n: number): RequestMessage => ({ type: 'request', id: id(n), method: 'GET', url: `/${n}`, headers: [], bodyLength: 0 });
const answer = (bytes: Uint8Array | undefined, body?: PassThrough, statusCode = 200) => ({ statusCode, headers: {}, bytes: bytes && Buffer.from(bytes), body });

describe('framesOf (a whole poll answer)', () => {
  test('splits a batch into its messages; the last one keeps its body', () => {
    const post: RequestMessage = { ...get(3), method: 'POST', bodyLength: 4 };
    const got = framesOf(Buffer.from(encodeFrames([get(1), { type: 'cancel', id: id(2) }, post, Buffer.from('body')])));
    expect(got.messages.map((m) => m.id)).toEqual([id(1), id(2), id(3)]);
    expect(Buffer.from(got.body).toString()).toBe('body');
  });

  test('stops at MAX_BATCH messages', () => {
    const all = Array.from({ length: MAX_BATCH + 1 }, (_, i) => get(i));
    expect(framesOf(Buffer.from(encodeFrames(all))).messages).toHaveLength(MAX_BATCH);
  });

  test('refuses a body of another length than its head says, and a cut head', () => {
    const post: RequestMessage = { ...get(1), method: 'POST', bodyLength: 10 };
    expect(() => framesOf(Buffer.from(encodeFrames([post, Buffer.from('short')])))).toThrow(FrameError);
    const bytes = Buffer.from(encodeFrames([get(1)]));
    expect(() => framesOf(bytes.subarray(0, bytes.length - 2))).toThrow(FrameError);
  });
});

describe('pollAnswer', () => {
  test('204 is an empty poll; its stream, if any, is let go', () => {
    const body = new PassThrough();
    expect(pollAnswer(answer(undefined, body, 204), 'poll')).toBeNull();
    expect(body.destroyed).toBe(true);
  });

  test('a non-200 answer is a ServerAnswerError with its code', async () => {
    const text = new TextEncoder().encode(JSON.stringify({ error: { code: 'too_many_polls', message: 'enough' } }));
    await expect(pollAnswer(answer(text, undefined, 429), 'poll')).rejects.toMatchObject({ status: 429, serverCode: 'too_many_polls' });
  });

  test('a streamed answer: the heads are read, the rest is the body', async () => {
    const body = new PassThrough();
    const post: RequestMessage = { ...get(2), method: 'POST', bodyLength: null };
    body.write(encodeFrames([get(1), post]));
    body.write('chunk');
    const got = await pollAnswer(answer(undefined, body), 'poll');
    expect(got!.messages.map((m) => m.id)).toEqual([id(1), id(2)]);
    expect(got!.body).toBe(body);
    release(got);
    body.end();
  });
});
