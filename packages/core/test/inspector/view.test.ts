import { gzipSync } from 'node:zlib';
import { BODY_CAP, captureWhole, emptyCapture, keep } from '../../src/inspector/body';
import { createTap } from '../../src/inspector/capture';
import { inspectorLimits } from '../../src/inspector';
import { createStore } from '../../src/inspector/store';
import { bodyView, detail, summary } from '../../src/inspector/view';

describe('bodies made readable', () => {
  test('JSON indented, text as it is, binary as hex, nothing as nothing', () => {
    expect(bodyView(captureWhole(Buffer.from('{"a":[1,2]}')), [['Content-Type', 'application/json']])).toEqual({ size: 11, kept: 11, cut: false, kind: 'json', text: '{\n  "a": [\n    1,\n    2\n  ]\n}' });
    expect(bodyView(captureWhole(Buffer.from('<p>héllo</p>')), [['content-type', 'text/html; charset=utf-8']])).toMatchObject({ kind: 'text', text: '<p>héllo</p>' });
    expect(bodyView(captureWhole(Buffer.from('plain')), [])).toMatchObject({ kind: 'text', text: 'plain' });
    const png = bodyView(captureWhole(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0])), [['content-type', 'image/png']]);
    expect(png).toMatchObject({ kind: 'binary', size: 9 });
    expect(png.text).toBe('000000  89 50 4e 47 0d 0a 1a 0a 00                       .PNG.....');
    expect(bodyView(captureWhole(Buffer.from('{"not json')), [['content-type', 'application/json']])).toMatchObject({ kind: 'text' });
    expect(bodyView(undefined, undefined)).toEqual({ size: 0, kept: 0, cut: false, kind: 'none' });
  });

  test('a cut body says so, and a character cut in half at the end is left out', () => {
    const capture = emptyCapture();
    keep(capture, Buffer.from('a'.repeat(BODY_CAP - 1) + 'é'));
    keep(capture, Buffer.from('more'));
    const view = bodyView(capture, [['content-type', 'text/plain']]);
    expect(view).toMatchObject({ kind: 'text', cut: true, kept: BODY_CAP, size: BODY_CAP + 5 });
    expect(view.text).toBe('a'.repeat(BODY_CAP - 1));
  });

  test('a compressed body is decoded to show it, even cut', () => {
    const json = JSON.stringify({ items: Array.from({ length: 20_000 }, (_, i) => ({ i, name: `item ${i}`, rand: (i * 7919) % 10007 })) });
    const gz = gzipSync(json);
    expect(gz.length).toBeGreaterThan(BODY_CAP);
    const capture = emptyCapture();
    keep(capture, gz);
    const view = bodyView(capture, [['content-type', 'application/json'], ['content-encoding', 'gzip']]);
    expect(view.kind).toBe('text');
    expect(view.cut).toBe(true);
    expect(view.note).toMatch(/^gzip-encoded: the first \d+ bytes decoded to \d+/);
    expect(view.text!.startsWith('{"items":[{"i":0,"name":"item 0"')).toBe(true);
    expect(bodyView(captureWhole(Buffer.from('not gzip')), [['content-encoding', 'gzip']]).note).toMatch(/^gzip-encoded, not decoded/);
  });
});

describe('a kept request as the page reads it', () => {
  test('the ids that find it in the server logs, timings, and its body to edit as it came', () => {
    const tap = createTap(createStore(inspectorLimits));
    const body = Buffer.from('{"qty": 2}');
    const record = tap.start({ type: 'request', id: 'x', method: 'POST', url: '/cart', headers: [['x-request-id', 'r-1'], ['Traceparent', '00-abc-def-01'], ['content-type', 'application/json']], bodyLength: body.length }, body)!;
    tap.answered(record, { head: { status: 502, headers: [], bodyLength: 0, error: { code: 'local_app_refused', message: 'Nothing answers at http://localhost:5173.' } }, body: null });
    tap.end(record, 502, 0, 'local_app_refused');
    expect(summary(record)).toMatchObject({ seq: 0, method: 'POST', url: '/cart', status: 502, error: 'local_app_refused', requestId: 'r-1', traceparent: '00-abc-def-01', bytesIn: 10, state: 'done' });
    const d = detail(record);
    expect(d.errorMessage).toBe('Nothing answers at http://localhost:5173.');
    expect(d.editableBody).toBe('{"qty": 2}');
    expect(d.requestBody).toMatchObject({ kind: 'json', text: '{\n  "qty": 2\n}' });
  });
});
