import { acceptsCoding, codingWeight, FrameError, headerList, parseResponseHead, preferredCoding } from '../src/protocol';

/** Accept-Encoding as both sides read it (RFC 9110 §12.5.3), and the head's `coding`. */
describe('Accept-Encoding', () => {
  test.each([
    // [header, br, gzip]
    ['gzip, deflate, br, zstd', 1, 1],
    ['gzip', 0, 1],
    ['br;q=0.5, gzip;q=0.8', 0.5, 0.8],
    ['BR;Q=0.5, GZip', 0.5, 1],
    ['gzip;q=0, br', 1, 0],
    ['gzip;q=0.000', 0, 0],
    ['*', 1, 1],
    ['*;q=0.2, gzip;q=0', 0.2, 0],
    ['br;q=0, *', 0, 1],
    ['x-gzip', 0, 1],
    ['identity', 0, 0],
    ['identity;q=0', 0, 0],
    ['identity;q=0, *;q=0', 0, 0],
    ['', 0, 0],
    [undefined, 0, 0],
    // Malformed weights: the member is ignored (so `*` or nothing decides).
    ['gzip;q=2, *;q=0.1', 0.1, 0.1],
    ['gzip;q=abc', 0, 0],
    ['gzip;q=1.5', 0, 0],
    ['gzip;q=0.1234', 0, 0],
    // Other parameters are skipped; empty members too.
    [' , gzip ; level=1 ; q=0.3 ,, ', 0, 0.3],
    // The higher weight of a coding named twice.
    ['gzip;q=0.1, gzip;q=0.9', 0, 0.9],
  ])('%j: br %s, gzip %s', (header, br, gzip) => {
    expect(codingWeight(header, 'br')).toBe(br);
    expect(codingWeight(header, 'gzip')).toBe(gzip);
    expect(acceptsCoding(header, 'br')).toBe(br > 0);
    expect(acceptsCoding(header, 'gzip')).toBe(gzip > 0);
  });

  test.each([
    ['gzip, deflate, br, zstd', 'br'],
    ['gzip, deflate', 'gzip'],
    ['br;q=0.5, gzip', 'gzip'],
    ['br, gzip;q=0.9', 'br'],
    ['*', 'br'],
    ['deflate', undefined],
    ['gzip;q=0, br;q=0', undefined],
    [undefined, undefined],
  ])('the preferred coding of %j is %s (br on a tie)', (header, coding) => {
    expect(preferredCoding(header)).toBe(coding);
  });

  test('several header lines read as one list', () => {
    expect(headerList([['Accept-Encoding', 'gzip;q=0'], ['x', 'y'], ['accept-encoding', 'br']], 'accept-encoding')).toBe('gzip;q=0, br');
    expect(headerList([['x', 'y']], 'accept-encoding')).toBeUndefined();
  });
});

describe('the head of an encoded answer', () => {
  test('coding is br or gzip, anything else is a malformed frame', () => {
    expect(parseResponseHead({ status: 200, headers: [], bodyLength: 3, coding: 'br' })).toEqual({ status: 200, headers: [], bodyLength: 3, coding: 'br' });
    expect(parseResponseHead({ status: 200, headers: [], bodyLength: null, coding: 'gzip' }).coding).toBe('gzip');
    expect(parseResponseHead({ status: 200, headers: [], bodyLength: 3 })).not.toHaveProperty('coding');
    for (const coding of ['deflate', 'BR', 'zstd', 1, null]) {
      expect(() => parseResponseHead({ status: 200, headers: [], bodyLength: 3, coding })).toThrow(FrameError);
    }
  });
});
