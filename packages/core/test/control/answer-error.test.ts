import { answerError, retryAfter, ServerAnswerError } from '../../src/control/answer-error';

describe('answerError', () => {
  test('takes the code and message from our JSON error body', () => {
    const e = answerError(409, {}, JSON.stringify({ error: { code: 'tunnel_replaced', message: 'Another client took it' } }), 'poll');
    expect(e).toBeInstanceOf(ServerAnswerError);
    expect(e.status).toBe(409);
    expect(e.serverCode).toBe('tunnel_replaced');
    expect(e.message).toBe('poll: Another client took it (409 tunnel_replaced)');
  });

  test('falls back to the error header and a status-only message when a proxy answered', () => {
    const e = answerError(502, { 'x-devtunnel-error': 'tunnel_offline' }, '<html>Bad Gateway</html>', 'registration at https://s/');
    expect(e.serverCode).toBe('tunnel_offline');
    expect(e.message).toBe('registration at https://s/: the server answered 502');
    expect(answerError(502, {}, '', 'x').serverCode).toBeUndefined();
  });

  test('carries Retry-After in ms', () => {
    expect(answerError(429, { 'retry-after': '7' }, '', 'x').retryAfterMs).toBe(7_000);
  });
});

describe('retryAfter', () => {
  test('reads seconds, caps them at 5 minutes, ignores dates and garbage', () => {
    expect(retryAfter({ 'retry-after': '0' })).toBe(0);
    expect(retryAfter({ 'retry-after': ['2', '9'] })).toBe(2_000);
    expect(retryAfter({ 'retry-after': '86400' })).toBe(300_000);
    expect(retryAfter({ 'retry-after': 'Wed, 21 Oct 2015 07:28:00 GMT' })).toBeUndefined();
    expect(retryAfter({ 'retry-after': '-1' })).toBeUndefined();
    expect(retryAfter({})).toBeUndefined();
  });
});

describe('server codes', () => {
  test('only our own codes are taken as a code: a proxy in front may send any word', () => {
    expect(answerError(409, {}, JSON.stringify({ error: { code: 'tunnel_replaced', message: 'm' } }), 'poll').serverCode).toBe('tunnel_replaced');
    expect(answerError(404, {}, JSON.stringify({ error: { code: 'NoSuchBucket', message: 'm' } }), 'poll').serverCode).toBeUndefined();
    expect(answerError(404, { 'x-devtunnel-error': 'not_found' }, 'Not Found', 'poll').serverCode).toBe('not_found');
    expect(answerError(404, { 'x-devtunnel-error': 'toString' }, '', 'poll').serverCode).toBeUndefined();
  });
});
