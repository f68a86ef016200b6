import { PassThrough, Readable } from 'node:stream';
import { brotliDecompressSync, createBrotliDecompress, gunzipSync } from 'node:zlib';
import { codingFor, encodedHeaders, encodeStream, encodeWhole, isCompressibleType, isEncodable, remarkedHeaders, unmarkTags } from '../src/encode';

/** The client's rules for encoding the local app's answers (feature `encode`). */
describe('which answers are encoded', () => {
  test.each([
    ['text/html; charset=utf-8', true],
    ['text/javascript', true],
    ['TEXT/CSS', true],
    ['text/plain', true],
    ['text/x-component', true],
    ['application/javascript; charset=utf-8', true],
    ['application/json', true],
    ['application/manifest+json', true],
    ['application/vnd.api+json', true],
    ['application/xml', true],
    ['image/svg+xml', true],
    ['application/wasm', true],
    ['font/ttf', true],
    ['image/x-icon', true],
    ['text/event-stream', false],
    ['text/event-stream; charset=utf-8', false],
    ['TEXT/EVENT-STREAM', false],
    ['image/png', false],
    ['image/webp', false],
    ['font/woff2', false],
    ['application/octet-stream', false],
    ['application/zip', false],
    ['video/mp4', false],
    ['multipart/x-mixed-replace; boundary=x', false],
    ['application/jsonx', false],
    ['', false],
    [undefined, false],
  ])('type %j: %s', (type, expected) => {
    expect(isCompressibleType(type)).toBe(expected);
  });

  test('never one the app encoded, a range, or one the app forbids transforming', () => {
    const js: Array<[string, string]> = [['content-type', 'text/javascript']];
    expect(isEncodable(200, js)).toBe(true);
    expect(isEncodable(404, [['Content-Type', 'text/html']])).toBe(true);
    expect(isEncodable(200, [...js, ['Content-Encoding', 'gzip']])).toBe(false);
    expect(isEncodable(200, [...js, ['content-encoding', 'identity']])).toBe(false);
    expect(isEncodable(206, [...js, ['content-range', 'bytes 0-9/100']])).toBe(false);
    expect(isEncodable(200, [...js, ['content-range', 'bytes 0-9/100']])).toBe(false);
    expect(isEncodable(200, [...js, ['Cache-Control', 'public, no-transform']])).toBe(false);
    expect(isEncodable(200, [...js, ['cache-control', 'No-Transform']])).toBe(false);
    expect(isEncodable(200, [...js, ['cache-control', 'no-cache, max-age=0']])).toBe(true);
    expect(isEncodable(200, [['content-type', 'image/png']])).toBe(false);
    expect(isEncodable(200, [])).toBe(false);
  });

  test("the browser's preferred coding, else gzip for the leg only", () => {
    expect(codingFor('gzip, deflate, br, zstd')).toEqual({ coding: 'br', legOnly: false });
    expect(codingFor('gzip')).toEqual({ coding: 'gzip', legOnly: false });
    expect(codingFor('deflate')).toEqual({ coding: 'gzip', legOnly: true });
    expect(codingFor(undefined)).toEqual({ coding: 'gzip', legOnly: true });
  });
});

describe('the headers of an encoded answer', () => {
  test('Content-Encoding added, Content-Length dropped, Vary merged, a strong ETag made weak and marked', () => {
    expect(
      encodedHeaders(
        [['Content-Type', 'text/javascript'], ['Content-Length', '5000'], ['ETag', '"abc"'], ['Vary', 'Origin'], ['Set-Cookie', 'a=1'], ['Set-Cookie', 'b=2']],
        'br',
      ),
    ).toEqual([['Content-Type', 'text/javascript'], ['ETag', 'W/"abc-dtz"'], ['Vary', 'Origin, Accept-Encoding'], ['Set-Cookie', 'a=1'], ['Set-Cookie', 'b=2'], ['content-encoding', 'br']]);
  });

  test('a weak ETag (as Vite makes them) stays as it is; Vary added once', () => {
    expect(encodedHeaders([['etag', 'W/"5-abc"']], 'gzip')).toEqual([['etag', 'W/"5-abc"'], ['vary', 'Accept-Encoding'], ['content-encoding', 'gzip']]);
    expect(encodedHeaders([['vary', 'accept-encoding']], 'gzip')).toEqual([['vary', 'accept-encoding'], ['content-encoding', 'gzip']]);
    expect(encodedHeaders([['vary', 'Origin'], ['Vary', 'Accept-Encoding, Cookie']], 'gzip')).toEqual([['vary', 'Origin'], ['Vary', 'Accept-Encoding, Cookie'], ['content-encoding', 'gzip']]);
    expect(encodedHeaders([['Vary', '*']], 'br')).toEqual([['Vary', '*'], ['content-encoding', 'br']]);
    // A malformed tag is left alone.
    expect(encodedHeaders([['etag', 'abc']], 'br')[0]).toEqual(['etag', 'abc']);
  });

  test("conditional requests get the local app's own tags back", () => {
    expect(unmarkTags('W/"abc-dtz"')).toBe('"abc"');
    expect(unmarkTags('W/"a-dtz", W/"b", "c",W/"d-dtz"')).toBe('"a", W/"b", "c", "d"');
    // Nothing of ours: left as it is (undefined), Vite's weak tags included.
    expect(unmarkTags('W/"5-abc"')).toBeUndefined();
    expect(unmarkTags('*')).toBeUndefined();
    // Strong tags are never ours; a list that does not parse is left as it is.
    expect(unmarkTags('"abc-dtz"')).toBeUndefined();
    expect(unmarkTags('W/"a-dtz" junk')).toBeUndefined();
    // The round trip.
    const etag = encodedHeaders([['ETag', '"x1"']], 'br')[0]![1];
    expect(unmarkTags(etag)).toBe('"x1"');
  });

  test("a 304's strong ETag is given the weak form the browser stored", () => {
    expect(remarkedHeaders([['ETag', '"abc"'], ['date', 'x']])).toEqual([['ETag', 'W/"abc-dtz"'], ['date', 'x']]);
    expect(remarkedHeaders([['etag', 'W/"abc"']])).toEqual([['etag', 'W/"abc"']]);
  });
});

describe('encoding the bytes', () => {
  const text = Buffer.from(Array.from({ length: 2000 }, (_, i) => `export const v${i} = ${i * 31};\n`).join(''));

  test('a whole body, br or gzip, decodes to the original', () => {
    const br = encodeWhole(text, 'br');
    const gz = encodeWhole(text, 'gzip');
    expect(br.length).toBeLessThan(text.length / 3);
    expect(gz.length).toBeLessThan(text.length / 3);
    expect(brotliDecompressSync(br).equals(text)).toBe(true);
    expect(gunzipSync(gz).equals(text)).toBe(true);
  });

  test.each(['br', 'gzip'] as const)('a %s stream decodes to the original', async (coding) => {
    const parts = Array.from({ length: 40 }, (_, i) => text.subarray(i * 1000, (i + 1) * 1000));
    const encoded = encodeStream(Readable.from(parts), coding, null);
    const chunks: Buffer[] = [];
    for await (const chunk of encoded) chunks.push(chunk as Buffer);
    const all = Buffer.concat(chunks);
    expect((coding === 'br' ? brotliDecompressSync(all) : gunzipSync(all)).equals(text.subarray(0, 40_000))).toBe(true);
  });

  test('each chunk is flushed: what the app sent so far decodes before it ends', async () => {
    const app = new PassThrough();
    const encoded = encodeStream(app, 'br', null);
    const decoder = createBrotliDecompress();
    encoded.pipe(decoder);
    const first = new Promise<Buffer>((resolve) => decoder.once('data', resolve));
    app.write('data: the first part of a page rendered in parts\n');
    expect((await first).toString()).toBe('data: the first part of a page rendered in parts\n');
    app.end();
  });

  test("a failure of the app's body fails the encoded one; destroying the encoded one destroys the app's", async () => {
    const app = new PassThrough();
    const encoded = encodeStream(app, 'gzip', null);
    const failed = new Promise<Error>((resolve) => encoded.once('error', resolve));
    app.write(text.subarray(0, 100));
    app.destroy(new Error('the local app cut its answer'));
    expect((await failed).message).toBe('the local app cut its answer');

    const other = new PassThrough();
    const encodedOther = encodeStream(other, 'br', 10_000_000);
    encodedOther.on('error', () => {});
    const closed = new Promise((resolve) => other.once('close', resolve));
    encodedOther.destroy();
    await closed;
    expect(other.destroyed).toBe(true);
  });
});
