import { brotliCompressSync, gzipSync } from 'node:zlib';
import type { ResponseHead } from '@devtunnel/core/protocol';
import { answerForBrowser, MAX_WHOLE_DECODED } from '../src/content-coding';
import { HttpError } from '../src/errors';

/** What a browser gets for an answer the client encoded for the laptop leg (feature `encode`). */
describe('answerForBrowser', () => {
  const text = Buffer.from('export const answer = 42;\n'.repeat(200));
  const br = brotliCompressSync(text);
  const gz = gzipSync(text);
  const head = (coding: 'br' | 'gzip' | undefined, bodyLength: number | null): ResponseHead => ({
    status: 200,
    headers: [['content-type', 'text/javascript'], ['etag', 'W/"a-dtz"'], ['vary', 'Accept-Encoding'], ...(coding ? [['Content-Encoding', coding] as [string, string]] : [])],
    bodyLength,
    ...(coding ? { coding } : {}),
  });
  const accept = (value: string): Array<[string, string]> => [['accept-encoding', value]];

  test('an answer without a coding goes as it is, whatever the browser accepts', () => {
    const h = head(undefined, text.length);
    const answer = answerForBrowser([], h, text);
    expect(answer.head).toBe(h);
    expect(answer.bytes).toBe(text);
    expect(answer.decoder).toBeUndefined();
  });

  test('a browser that accepts the coding gets the encoded bytes as they came', () => {
    const answer = answerForBrowser(accept('gzip, deflate, br'), head('br', br.length), br);
    expect(answer.bytes).toBe(br);
    expect(answer.decoder).toBeUndefined();
    expect(answer.head.headers.filter(([n]) => n.toLowerCase() === 'content-encoding')).toEqual([['content-encoding', 'br']]);
    expect(answerForBrowser(accept('*'), head('gzip', gz.length), gz).bytes).toBe(gz);
  });

  test('the coding the head names is the one the browser is told, whatever headers came with it', () => {
    const h: ResponseHead = { status: 200, headers: [['content-type', 'text/css'], ['content-encoding', 'deflate']], bodyLength: gz.length, coding: 'gzip' };
    expect(answerForBrowser(accept('gzip'), h, gz).head.headers).toEqual([['content-type', 'text/css'], ['content-encoding', 'gzip']]);
  });

  test.each([
    ['gzip, deflate', 'br'],
    ['br;q=0, gzip', 'br'],
    ['', 'gzip'],
    ['identity;q=0', 'gzip'],
    [undefined, 'gzip'],
  ] as const)('a browser with Accept-Encoding %j gets a %s answer decoded, with its length', (value, coding) => {
    const bytes = coding === 'br' ? br : gz;
    const answer = answerForBrowser(value === undefined ? [] : accept(value), head(coding, bytes.length), bytes);
    expect(Buffer.from(answer.bytes!).equals(text)).toBe(true);
    expect(answer.head.bodyLength).toBe(text.length);
    expect(answer.head.coding).toBeUndefined();
    expect(answer.head.headers).toEqual([['content-type', 'text/javascript'], ['etag', 'W/"a-dtz"'], ['vary', 'Accept-Encoding']]);
  });

  test('a streamed answer to decode comes with a decoder and no length', async () => {
    const answer = answerForBrowser(accept('gzip'), head('br', null), null);
    expect(answer.head.bodyLength).toBeNull();
    expect(answer.bytes).toBeNull();
    const decoder = answer.decoder!;
    const out: Buffer[] = [];
    decoder.on('data', (c: Buffer) => out.push(c));
    const ended = new Promise((resolve) => decoder.once('end', resolve));
    decoder.end(br);
    await ended;
    expect(Buffer.concat(out).equals(text)).toBe(true);
    // One the browser takes needs none.
    expect(answerForBrowser(accept('br'), head('br', null), null).decoder).toBeUndefined();
  });

  test('a whole body that does not decode is a bad response (502), never garbage', () => {
    for (const [coding, bytes] of [['br', Buffer.from('not brotli at all')], ['gzip', gz.subarray(0, gz.length - 10)], ['gzip', Buffer.from('not gzip')]] as const) {
      let error: unknown;
      try {
        answerForBrowser([], head(coding, bytes.length), bytes);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(HttpError);
      expect((error as HttpError).code).toBe('bad_response');
    }
  });

  test('a whole body that decodes to more than the bound is refused', () => {
    const bomb = gzipSync(Buffer.alloc(MAX_WHOLE_DECODED + 1));
    expect(() => answerForBrowser([], head('gzip', bomb.length), bomb)).toThrow(expect.objectContaining({ code: 'bad_response' }));
  });

  test('a streamed body that does not decode fails its decoder', async () => {
    const decoder = answerForBrowser([], head('gzip', null), null).decoder!;
    decoder.resume();
    const failed = new Promise<Error>((resolve) => decoder.once('error', resolve));
    decoder.end(gz.subarray(0, gz.length - 10));
    expect((await failed).message).toMatch(/unexpected end of file/);
  });
});
