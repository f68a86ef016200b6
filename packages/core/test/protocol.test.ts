import { PassThrough } from 'node:stream';
import {
  clientPollDeadlineMs,
  createHeadReader,
  encodeHead,
  ERROR_CODES,
  FrameError,
  parseResponseHead,
  parseServerMessage,
  readFrameHead,
  stripHopByHop,
  type RequestMessage,
} from '../src/protocol';

const message: RequestMessage = { type: 'request', id: 'a'.repeat(32), method: 'POST', url: '/x?y=1', headers: [['Host', 'h'], ['Set-Cookie', 'a'], ['Set-Cookie', 'b']], bodyLength: 3 };

describe('frame head', () => {
  test('round-trips through the incremental reader, fed one byte at a time', () => {
    const bytes = Buffer.concat([encodeHead(message), Buffer.from('abc')]);
    const reader = createHeadReader();
    let got: ReturnType<typeof reader.push>;
    let i = 0;
    for (; i < bytes.length && !got; i++) got = reader.push(bytes.subarray(i, i + 1));
    expect(got!.head).toEqual(message);
    expect(Buffer.concat([Buffer.from(got!.rest), bytes.subarray(i)]).toString()).toBe('abc');
  });

  test('returns what followed the head in the same chunk', () => {
    const got = createHeadReader().push(Buffer.concat([encodeHead(message), Buffer.from('body')]));
    expect(Buffer.from(got!.rest).toString()).toBe('body');
  });

  test('refuses a head larger than the limit before buffering it', () => {
    const big = Buffer.alloc(4);
    big.writeUInt32BE(10_000_000);
    expect(() => createHeadReader(1024).push(big)).toThrow(FrameError);
  });

  test('refuses a head that is not JSON', () => {
    const bad = Buffer.concat([Buffer.from([0, 0, 0, 3]), Buffer.from('{x}')]);
    expect(() => createHeadReader().push(bad)).toThrow(FrameError);
  });

  test('readFrameHead leaves exactly the body on the stream, whatever the slicing', async () => {
    const stream = new PassThrough();
    const bytes = Buffer.concat([encodeHead(message), Buffer.from('the body')]);
    const head = readFrameHead(stream);
    for (let i = 0; i < bytes.length; i += 5) stream.write(bytes.subarray(i, i + 5));
    stream.end();
    expect(await head).toEqual(message);
    const rest: Buffer[] = [];
    for await (const chunk of stream) rest.push(chunk as Buffer);
    expect(Buffer.concat(rest).toString()).toBe('the body');
  });

  test('readFrameHead rejects a stream that ends inside the head', async () => {
    const stream = new PassThrough();
    const head = readFrameHead(stream);
    stream.end(encodeHead(message).subarray(0, 10));
    await expect(head).rejects.toThrow(FrameError);
  });
});

describe('stripHopByHop', () => {
  test('drops RFC 9110 §7.6.1 hop-by-hop and framing headers, and every header Connection names', () => {
    const out = stripHopByHop([
      ['Connection', 'keep-alive, X-Secret'],
      ['X-Secret', '1'],
      ['Keep-Alive', 'timeout=5'],
      ['Transfer-Encoding', 'chunked'],
      ['Content-Length', '5'],
      ['TE', 'trailers'],
      ['Trailer', 'X'],
      ['Upgrade', 'websocket'],
      ['Proxy-Authorization', 'Basic x'],
      ['Proxy-Authenticate', 'Basic'],
      ['Proxy-Connection', 'keep-alive'],
      ['Expect', '100-continue'],
      ['Cookie', 'a=b'],
      ['traceparent', '00-abc'],
      ['Set-Cookie', 'x'],
      ['Set-Cookie', 'y'],
    ]);
    expect(out).toEqual([['Cookie', 'a=b'], ['traceparent', '00-abc'], ['Set-Cookie', 'x'], ['Set-Cookie', 'y']]);
  });

  test('is case-insensitive and handles several Connection headers', () => {
    expect(stripHopByHop([['CONNECTION', 'x-a'], ['connection', 'X-B'], ['x-A', '1'], ['X-b', '2'], ['x-c', '3']])).toEqual([['x-c', '3']]);
  });
});

describe('message validation', () => {
  test('response heads: final statuses (and 101), well-formed headers and length', () => {
    expect(parseResponseHead({ status: 200, headers: [['a', 'b']], bodyLength: null })).toEqual({ status: 200, headers: [['a', 'b']], bodyLength: null });
    for (const bad of [null, 'x', { status: 100, headers: [], bodyLength: 0 }, { status: 99, headers: [], bodyLength: 0 }, { status: 600, headers: [], bodyLength: 0 }, { status: 200, headers: [['a']], bodyLength: 0 }, { status: 200, headers: [], bodyLength: -1 }, { status: 200, headers: [], bodyLength: 1.5 }, { status: 200, headers: 'x', bodyLength: 0 }]) {
      expect(() => parseResponseHead(bad)).toThrow(FrameError);
    }
  });

  test('101 passes (the server accepts it only in answer to an upgrade)', () => {
    expect(parseResponseHead({ status: 101, headers: [['Upgrade', 'websocket']], bodyLength: null }).status).toBe(101);
  });

  test('an error head takes its status from the code table', () => {
    expect(parseResponseHead({ error: { code: 'local_app_refused', message: 'm' } })).toMatchObject({ status: 502, error: { code: 'local_app_refused' } });
    expect(() => parseResponseHead({ error: { code: 'not_a_code', message: 'm' } })).toThrow(FrameError);
  });

  test('server messages: request and cancel', () => {
    expect(parseServerMessage(message)).toEqual(message);
    expect(parseServerMessage({ type: 'cancel', id: 'x' })).toEqual({ type: 'cancel', id: 'x' });
    expect(() => parseServerMessage({ type: 'other', id: 'x' })).toThrow(FrameError);
    expect(() => parseServerMessage({ ...message, headers: [[1, 2]] })).toThrow(FrameError);
  });

  test('every error code has an HTTP status', () => {
    for (const status of Object.values(ERROR_CODES)) expect(status).toBeGreaterThanOrEqual(400);
  });

  test('the client poll deadline sits above the server poll timeout', () => {
    expect(clientPollDeadlineMs(25_000)).toBe(35_000);
    expect(clientPollDeadlineMs(500)).toBe(1_500);
  });
});
