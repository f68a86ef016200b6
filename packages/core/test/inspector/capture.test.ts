import { Readable } from 'node:stream';
import { BODY_CAP, keptBytes } from '../../src/inspector/body';
import { createTap, noTap } from '../../src/inspector/capture';
import { inspectorLimits } from '../../src/inspector';
import { createStore } from '../../src/inspector/store';
import type { RequestMessage } from '../../src/protocol';

const message = (over: Partial<RequestMessage> = {}): RequestMessage => ({
  type: 'request',
  id: 'a'.repeat(32),
  method: 'POST',
  url: '/api/cart?id=3',
  headers: [['Host', 'shop.test'], ['X-Request-Id', 'req-1'], ['traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01']],
  bodyLength: 0,
  ...over,
});

async function drain(body: AsyncIterable<Uint8Array> | Uint8Array | Readable | null): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of body as AsyncIterable<Uint8Array>) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}

describe('the tap', () => {
  test('a whole request and answer: a view into a larger buffer copied, the answer timed and how it went up', () => {
    const store = createStore(inspectorLimits);
    const tap = createTap(store);
    // A poll answer holds several requests: the body is a view into it, which would hold it all.
    const pollAnswer = Buffer.alloc(64 * 1024, 'x');
    pollAnswer.write('{"qty":2}', 4);
    const body = pollAnswer.subarray(4, 13);
    const record = tap.start(message({ bodyLength: body.length }), body)!;
    expect(tap.body(record, body)).toBe(body);
    const answer = Buffer.alloc(11);
    answer.write('{"ok":true}');
    tap.answered(record, { head: { status: 201, headers: [['content-type', 'application/json']], bodyLength: answer.length }, body: null, bytes: answer });
    tap.sent(record, 'batch');
    tap.end(record, 201, answer.length);
    pollAnswer.fill(0);
    expect(keptBytes(record.requestBody!).toString()).toBe('{"qty":2}');
    expect(record.requestBody!.held).toBe(9);
    // An answer that is its whole buffer is kept as it is, no copy; the budget counts its buffer.
    expect(keptBytes(record.responseBody!).buffer).toBe(answer.buffer);
    expect(record.responseBody!.held).toBe(answer.buffer.byteLength);
    expect(record).toMatchObject({ seq: 0, method: 'POST', url: '/api/cart?id=3', status: 201, state: 'done', via: 'batch', bytesOut: 11 });
    expect(record.localMs).toBeDefined();
    expect(record.totalMs).toBeDefined();
    expect(store.stats().bytes).toBe(record.bytes);
  });

  test('streamed bodies pass whole; only their first 64 KiB are kept', async () => {
    const store = createStore(inspectorLimits);
    const tap = createTap(store);
    const upload = Buffer.alloc(300 * 1024, 1);
    const record = tap.start(message({ bodyLength: null }), Readable.from([upload.subarray(0, 100_000), upload.subarray(100_000)]))!;
    const forwarded = await drain(tap.body(record, Readable.from([upload.subarray(0, 100_000), upload.subarray(100_000)])));
    expect(forwarded.equals(upload)).toBe(true);
    expect(record.requestBody).toMatchObject({ kept: BODY_CAP, size: upload.length });
    tap.answered(record, { head: { status: 200, headers: [], bodyLength: null }, body: Readable.from([]) });
    expect(record.state).toBe('streaming');
    for (let i = 0; i < 10; i++) tap.chunk(record, Buffer.alloc(50_000, 2));
    tap.localDone(record);
    tap.sent(record, 'upload');
    tap.end(record, 200, 500_000);
    expect(record.responseBody).toMatchObject({ kept: BODY_CAP, size: 500_000 });
    expect(record.bytes).toBeLessThan(2 * BODY_CAP + 4096);
  });

  test('an event stream is summarised as it flows', () => {
    const tap = createTap(createStore(inspectorLimits));
    const record = tap.start(message({ method: 'GET' }), null)!;
    tap.answered(record, { head: { status: 200, headers: [['content-type', 'text/event-stream; charset=utf-8']], bodyLength: null }, body: Readable.from([]) });
    tap.chunk(record, Buffer.from('data: one\n\ndata: t'));
    tap.chunk(record, Buffer.from('wo\n\n'));
    expect(record.messages).toMatchObject({ kind: 'event-stream', count: 2 });
    expect(record.messages!.last.map((m) => m.preview)).toEqual(['data: one', 'data: two']);
  });

  test('a flood of large bodies stays within the budget; a request pushed out stops growing', () => {
    const store = createStore(inspectorLimits);
    const tap = createTap(store);
    const first = tap.start(message(), null)!;
    for (let i = 0; i < 2_000; i++) {
      const record = tap.start(message({ bodyLength: 1024 * 1024 }), Buffer.alloc(1024 * 1024, 3))!;
      tap.answered(record, { head: { status: 200, headers: [], bodyLength: 1024 * 1024 }, body: Readable.from([]) });
      tap.chunk(record, Buffer.alloc(1024 * 1024, 4));
      tap.end(record, 200, 1024 * 1024);
      expect(store.stats().bytes).toBeLessThanOrEqual(inspectorLimits.maxBytes);
    }
    expect(first.evicted).toBe(true);
    tap.answered(first, { head: { status: 200, headers: [], bodyLength: null }, body: Readable.from([]) });
    tap.chunk(first, Buffer.alloc(1000));
    expect(first.responseBody).toBeUndefined();
    const stats = store.stats();
    expect(stats.kept).toBeLessThan(inspectorLimits.maxRecords);
    expect(stats.evicted + stats.kept).toBe(stats.seen);
  });

  test('without an inspector, nothing is kept and bodies pass untouched', () => {
    const body = Readable.from([]);
    const record = noTap.start(message(), body);
    expect(record).toBeUndefined();
    expect(noTap.body(record, body)).toBe(body);
  });
});
