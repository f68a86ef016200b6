import { eventStreamReader, LAST_MESSAGES, messageLog, PREVIEW_BYTES, webSocketReader } from '../../src/inspector/messages';

/** A WebSocket frame (RFC 6455 §5.2), masked when a mask is given (the browser's side). */
function frame(opcode: number, payload: Buffer, options: { fin?: boolean; mask?: Buffer; rsv1?: boolean } = {}): Buffer {
  const { fin = true, mask, rsv1 = false } = options;
  const len = payload.length;
  const ext = len < 126 ? Buffer.alloc(0) : len < 65536 ? Buffer.alloc(2) : Buffer.alloc(8);
  if (len >= 126 && len < 65536) ext.writeUInt16BE(len);
  if (len >= 65536) ext.writeBigUInt64BE(BigInt(len));
  const head = Buffer.from([(fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode, (mask ? 0x80 : 0) | (len < 126 ? len : len < 65536 ? 126 : 127)]);
  const body = mask ? Buffer.from(payload.map((b, i) => b ^ mask[i & 3]!)) : payload;
  return Buffer.concat([head, ext, mask ?? Buffer.alloc(0), body]);
}

/** Feeds `bytes` in pieces of `size`, the way a socket may cut them. */
function feed(read: (chunk: Uint8Array) => void, bytes: Buffer, size: number): void {
  for (let at = 0; at < bytes.length; at += size) read(bytes.subarray(at, at + size));
}

describe('event streams, summarised', () => {
  test.each([1, 3, 1000])('events end at a blank line, whatever the chunks (%i bytes each); comments are counted apart', (size) => {
    const log = messageLog('event-stream');
    const text = ': keep-alive\n\nevent: update\ndata: {"n":1}\n\r\ndata: two\r\ndata: lines\r\n\r\n: ping\n\ndata: ünï\n\n';
    feed(eventStreamReader(log, () => 7), Buffer.from(text), size);
    expect(log.count).toBe(3);
    expect(log.control).toBe(2);
    expect(log.last.map((m) => m.preview)).toEqual(['event: update\ndata: {"n":1}', 'data: two\ndata: lines', 'data: ünï']);
    expect(log.last.map((m) => m.size)).toEqual([28, 22, 12]);
    expect(log.last[0]).toMatchObject({ from: 'app', at: 7, kind: 'event' });
  });

  test('only the last few are kept, each cut to a preview', () => {
    const log = messageLog('event-stream');
    const read = eventStreamReader(log, () => 0);
    for (let i = 0; i < 50; i++) read(Buffer.from(`data: ${i} ${'x'.repeat(1000)}\n\n`));
    expect(log.count).toBe(50);
    expect(log.last).toHaveLength(LAST_MESSAGES);
    expect(log.last[0]!.preview.startsWith(`data: ${50 - LAST_MESSAGES} x`)).toBe(true);
    expect(log.last.every((m) => m.preview.length <= PREVIEW_BYTES && m.size > 1000)).toBe(true);
  });
});

describe('WebSocket messages, summarised', () => {
  test.each([1, 2, 5, 4096])('frames of both sides, masked or not, cut anywhere (%i bytes each)', (size) => {
    const log = messageLog('websocket');
    const mask = Buffer.from([1, 2, 3, 4]);
    const browser = Buffer.concat([
      frame(1, Buffer.from('hello from the browser'), { mask }),
      frame(9, Buffer.from('ping'), { mask }),
      // One message in three frames, a ping in between (RFC 6455 §5.4).
      frame(2, Buffer.alloc(200, 7), { fin: false, mask }),
      frame(10, Buffer.alloc(0), { mask }),
      frame(0, Buffer.alloc(70_000, 8), { fin: false, mask }),
      frame(0, Buffer.alloc(10, 9), { mask }),
    ]);
    const app = Buffer.concat([frame(1, Buffer.from('{"type":"update"}')), frame(1, Buffer.from('compressed?'), { rsv1: true }), frame(8, Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from('bye')]))]);
    feed(webSocketReader(log, 'browser', () => 1), browser, size);
    feed(webSocketReader(log, 'app', () => 2), app, size);
    expect(log.last.map((m) => [m.from, m.kind, m.size])).toEqual([
      ['browser', 'text', 22],
      ['browser', 'binary', 70_210],
      ['app', 'text', 17],
      ['app', 'text', 11],
      ['app', 'close', 5],
    ]);
    expect(log.last[0]!.preview).toBe('hello from the browser');
    expect(log.last[1]!.preview).toBe(Array(32).fill('07').join(' '));
    expect(log.last[2]!.preview).toBe('{"type":"update"}');
    expect(log.last[3]!.compressed).toBe(true);
    expect(log.last[4]!.preview).toBe('1000 bye');
    expect(log).toMatchObject({ count: 5, control: 2, bytes: 22 + 70_210 + 17 + 11 + 5 });
  });

  test('a long exchange keeps the last few, their previews bounded', () => {
    const log = messageLog('websocket');
    const read = webSocketReader(log, 'app', () => 0);
    for (let i = 0; i < 100; i++) read(frame(1, Buffer.from(`${i}:${'y'.repeat(5000)}`)));
    expect(log.count).toBe(100);
    expect(log.last).toHaveLength(LAST_MESSAGES);
    expect(log.last.at(-1)!.preview).toMatch(/^99:y+$/);
    expect(log.last.every((m) => Buffer.byteLength(m.preview) <= PREVIEW_BYTES)).toBe(true);
  });
});
