import { PassThrough } from 'node:stream';
import {
  clientPollDeadlineMs,
  createFrameReader,
  createHeadReader,
  HEARTBEAT,
  parseDownstreamMessage,
  parseRegisterRequest,
  RegistrationError,
  encodeHead,
  ERROR_CODES,
  FrameError,
  parseResponseHead,
  parseServerMessage,
  readFrameHead,
  endToEndPairs,
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

describe('frame reader (streams)', () => {
  const answer = (id: string, body: string) => Buffer.concat([encodeHead({ status: 200, headers: [['a', 'b']], bodyLength: body.length, id }), Buffer.from(body)]);
  const stream = Buffer.concat([HEARTBEAT, answer('1', 'first'), HEARTBEAT, HEARTBEAT, answer('2', ''), answer('3', 'x'.repeat(70_000)), HEARTBEAT]);

  function read(chunks: Buffer[]): Array<[string, string]> {
    const got: Array<[string, string]> = [];
    const reader = createFrameReader({
      bodyLength: (head) => (head as { bodyLength: number }).bodyLength,
      onFrame: (head, body) => void got.push([(head as { id: string }).id, Buffer.from(body).toString()]),
    });
    for (const chunk of chunks) reader.push(chunk);
    expect(reader.buffered).toBe(0);
    return got;
  }
  const expected = [['1', 'first'], ['2', ''], ['3', 'x'.repeat(70_000)]];

  test('reads frames in one chunk and skips heartbeats', () => {
    expect(read([stream])).toEqual(expected);
  });

  test('reads the same frames whatever the slicing: one byte at a time, or 1-7 bytes', () => {
    expect(read([...stream].map((b) => Buffer.from([b])))).toEqual(expected);
    const sliced: Buffer[] = [];
    for (let at = 0, n = 1; at < stream.length; at += n, n = (n % 7) + 1) sliced.push(stream.subarray(at, at + n));
    expect(read(sliced)).toEqual(expected);
  });

  test('holds a partial frame until the rest arrives, and says how much it holds', () => {
    const got: string[] = [];
    const reader = createFrameReader({ bodyLength: () => 3, onFrame: (_h, body) => void got.push(Buffer.from(body).toString()) });
    const frame = Buffer.concat([encodeHead({ type: 'cancel', id: 'x' }), Buffer.from('abc')]);
    reader.push(frame.subarray(0, frame.length - 1));
    expect(got).toEqual([]);
    expect(reader.buffered).toBe(2);
    reader.push(frame.subarray(frame.length - 1));
    expect(got).toEqual(['abc']);
  });

  test('refuses an oversized head, a head that is not JSON, and what bodyLength refuses', () => {
    const big = Buffer.alloc(4);
    big.writeUInt32BE(1_000_000);
    expect(() => createFrameReader({ bodyLength: () => 0, onFrame: () => {} }).push(big)).toThrow(FrameError);
    const notJson = Buffer.concat([Buffer.from([0, 0, 0, 3]), Buffer.from('{x}')]);
    expect(() => createFrameReader({ bodyLength: () => 0, onFrame: () => {} }).push(notJson)).toThrow(FrameError);
    const refuse = () => {
      throw new FrameError('too long');
    };
    expect(() => createFrameReader({ bodyLength: refuse, onFrame: () => {} }).push(answer('1', 'a'))).toThrow('too long');
  });

  test('downstream messages: bodyless requests, cancels and stream notices; never a body', () => {
    expect(parseDownstreamMessage({ type: 'stream', upstream: true })).toEqual({ type: 'stream', upstream: true });
    expect(parseDownstreamMessage({ type: 'stream' })).toEqual({ type: 'stream', upstream: false });
    expect(parseDownstreamMessage({ type: 'cancel', id: 'a' })).toEqual({ type: 'cancel', id: 'a' });
    expect(parseDownstreamMessage({ ...message, bodyLength: 0 })).toEqual({ ...message, bodyLength: 0 });
    expect(() => parseDownstreamMessage(message)).toThrow(FrameError);
    // A poll answer never carries a stream notice.
    expect(() => parseServerMessage({ type: 'stream', upstream: true })).toThrow(FrameError);
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

  test('never drops Host, whatever Connection names: the request is for that host on every hop', () => {
    expect(stripHopByHop([['Host', 'shop.example'], ['Connection', 'close, host']])).toEqual([['Host', 'shop.example']]);
    expect(endToEndPairs(['Host', 'shop.example', 'Connection', 'Host'])).toEqual([['Host', 'shop.example']]);
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

  test('registration bodies: the fields both sides rely on are checked, unknown ones ignored', () => {
    const ok = { clientId: 'ann@laptop:5173#k3j', name: 'ann-5173', preferredPort: 9003, localPort: 5173, version: '0.1.0', features: ['upgrade'], instance: 'a'.repeat(32), extra: true };
    expect(parseRegisterRequest(ok)).toBe(ok);
    for (const bad of [null, 'x', { clientId: 'a b' }, { clientId: 'a', name: 'Ann' }, { clientId: 'a', preferredPort: 70_000 }, { clientId: 'a', features: 'upgrade' }, { clientId: 'a', version: 'x'.repeat(41) }, { clientId: 'a', instance: 'A'.repeat(32) }]) {
      expect(() => parseRegisterRequest(bad)).toThrow(RegistrationError);
    }
  });
});

describe('push heads (feature push)', () => {
  const info = { url: '/src/a.ts?v=1', identity: 'A'.repeat(22), variant: 'script|', vary: [['origin', null]], gen: 3 };
  test('a push, a validator, a none and a drop are read; promises too', () => {
    expect(parseResponseHead({ status: 200, headers: [['etag', 'W/"1"']], bodyLength: 5, push: info, promise: ['/b.js'] })).toMatchObject({ push: info, promise: ['/b.js'] });
    expect(parseResponseHead({ status: 200, headers: [], bodyLength: 0, push: { ...info, validator: true } }).push?.validator).toBe(true);
    expect(parseResponseHead({ status: 200, headers: [], bodyLength: 0, push: { ...info, validator: true, alike: [['/b.js', 'W/"2"']] } }).push?.alike).toEqual([['/b.js', 'W/"2"']]);
    expect(parseResponseHead({ status: 200, headers: [], bodyLength: 0, push: { ...info, none: true } }).push?.none).toBe(true);
    expect(parseResponseHead({ status: 200, headers: [], bodyLength: 0, push: { gen: 4, drop: true } }).push).toMatchObject({ drop: true, gen: 4 });
    expect(parseResponseHead({ id: 'x', status: 200, headers: [], bodyLength: 0, promise: ['/a'] }).promise).toEqual(['/a']);
  });

  test.each([
    ['an absolute URL', { ...info, url: 'http://evil.test/a' }],
    ['a protocol-relative URL', { ...info, url: '//evil.test/a' }],
    ['a fragment', { ...info, url: '/a#x' }],
    ['a short identity', { ...info, identity: 'abc' }],
    ['no generation', { ...info, gen: -1 }],
    ['a malformed vary', { ...info, vary: [['Origin', 1]] }],
    ['a malformed alike', { ...info, validator: true, alike: [['/b.js', 'not a tag']] }],
  ])('refuses %s', (_what, push) => {
    expect(() => parseResponseHead({ status: 200, headers: [], bodyLength: 1, push })).toThrow(FrameError);
  });

  test('refuses a push that names a request, is not a 200, is too large, or a bodyless one with bytes', () => {
    expect(() => parseResponseHead({ id: 'x', status: 200, headers: [], bodyLength: 1, push: info })).toThrow(FrameError);
    expect(() => parseResponseHead({ status: 404, headers: [], bodyLength: 1, push: info })).toThrow(FrameError);
    expect(() => parseResponseHead({ status: 200, headers: [], bodyLength: 2 * 1024 * 1024, push: info })).toThrow(FrameError);
    expect(() => parseResponseHead({ status: 200, headers: [], bodyLength: 3, push: { ...info, validator: true } })).toThrow(FrameError);
    expect(() => parseResponseHead({ status: 200, headers: [], bodyLength: 0, promise: Array(5000).fill('/a') })).toThrow(FrameError);
  });
});
