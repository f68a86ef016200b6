import { EventEmitter } from 'node:events';
import type { ClientContext } from '../../src/client/context';
import { failedUpload, finished } from '../../src/client/request-log';
import type { RequestEvent } from '../../src/client/types';
import { ServerAnswerError } from '../../src/control';
import type { LocalResponse } from '../../src/forward';
import type { ErrorCode, RequestMessage } from '../../src/protocol';

const response: LocalResponse = { head: { status: 201, headers: [], bodyLength: 0 }, body: null };
const refused = (status: number, code?: ErrorCode) => new ServerAnswerError(status, code, 'response upload', undefined);

describe('failedUpload', () => {
  test('a cancelled request is 499 cancelled', () => {
    expect(failedUpload(new Error('x'), true, false, response)).toEqual([499, 'cancelled']);
    expect(failedUpload(Object.assign(new Error('x'), { code: 'UND_ERR_ABORTED' }), false, false, response)).toEqual([499, 'cancelled']);
  });

  test('only the poll part of an upload-as-poll refused: the browser got its answer', () => {
    expect(failedUpload(refused(503, 'server_shutting_down'), false, true, response)).toEqual([201, undefined]);
    expect(failedUpload(refused(429, 'too_many_polls'), false, true, undefined)).toEqual([502, undefined]);
  });

  test('the browser left or was answered already: 499 with the server code', () => {
    expect(failedUpload(refused(410, 'browser_gone'), false, false, response)).toEqual([499, 'browser_gone']);
    expect(failedUpload(refused(404), false, false, response)).toEqual([499, 'cancelled']);
  });

  test('anything else is a broken upload', () => {
    expect(failedUpload(new Error('socket hang up'), false, false, response)).toEqual([502, 'upload_failed']);
    expect(failedUpload(refused(503, 'server_shutting_down'), false, false, response)).toEqual([502, 'upload_failed']);
  });
});

describe('finished', () => {
  test('reports the path without its query, and the error code only when there is one', () => {
    const emitter = new EventEmitter();
    const ctx = { emit: (event: string, ...args: unknown[]) => emitter.emit(event, ...args) } as unknown as ClientContext;
    const events: RequestEvent[] = [];
    emitter.on('request', (e: RequestEvent) => events.push(e));
    const message: RequestMessage = { type: 'request', id: 'a'.repeat(32), method: 'GET', url: '/login?token=secret', headers: [], bodyLength: 0 };
    finished(ctx, message, performance.now(), 200, 12);
    finished(ctx, message, performance.now(), 502, 0, 'local_app_refused');
    expect(events[0]).toEqual({ method: 'GET', path: '/login', status: 200, durationMs: expect.any(Number), bytesOut: 12 });
    expect(events[0]).not.toHaveProperty('error');
    expect(events[1]).toMatchObject({ status: 502, error: 'local_app_refused' });
  });
});
