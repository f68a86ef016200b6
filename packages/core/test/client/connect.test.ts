import { classify, createChurnPace, STABLE_SESSION_MS, stopped } from '../../src/client/connect';
import { ServerAnswerError } from '../../src/control';
import { TunnelError, isFinal } from '../../src/errors';
import { FrameError, type ErrorCode } from '../../src/protocol';

const server = new URL('https://tunnels.example.com/devtunnel/');
const answer = (status: number, code?: ErrorCode, retryAfterMs?: number) => new ServerAnswerError(status, code, `registration: ${status}`, retryAfterMs);

describe('classify', () => {
  test.each([
    [answer(401, 'unauthorized'), 'TUNNEL_UNAUTHORIZED', true],
    // Not a devtunnel server's answer (no code): for good when the status says so.
    [answer(401), 'TUNNEL_REGISTRATION_REFUSED', true],
    [answer(501), 'TUNNEL_REGISTRATION_REFUSED', true],
    [answer(500), 'TUNNEL_REGISTRATION_REFUSED', true],
    [answer(503, 'server_shutting_down'), 'TUNNEL_SERVER_UNREACHABLE', false],
    [answer(503), 'TUNNEL_SERVER_UNREACHABLE', false],
    [answer(404, 'not_found'), 'TUNNEL_REGISTRATION_REFUSED', true],
    [answer(400, 'invalid_request'), 'TUNNEL_REGISTRATION_REFUSED', true],
    [answer(403), 'TUNNEL_REGISTRATION_REFUSED', true],
    [answer(409, 'tunnel_replaced'), 'TUNNEL_REPLACED', true],
    [answer(410, 'tunnel_closed'), 'TUNNEL_CLOSED_BY_SERVER', true],
    [answer(503, 'port_range_full'), 'TUNNEL_PORT_RANGE_FULL', false],
    // A 404 from something in front of the server (a rollout), a timeout, a rate limit: retried.
    [answer(404), 'TUNNEL_SERVER_UNREACHABLE', false],
    [answer(404, 'unknown_tunnel'), 'TUNNEL_SERVER_UNREACHABLE', false],
    [answer(408), 'TUNNEL_SERVER_UNREACHABLE', false],
    [answer(429, 'rate_limited'), 'TUNNEL_SERVER_UNREACHABLE', false],
    [answer(502), 'TUNNEL_SERVER_UNREACHABLE', false],
    [new FrameError('bad head'), 'TUNNEL_PROTOCOL_ERROR', true],
    [Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 'TUNNEL_SERVER_UNREACHABLE', false],
    // https:// against a server that speaks plain http: the handshake will never succeed.
    [Object.assign(new Error('wrong version number'), { code: 'ERR_SSL_WRONG_VERSION_NUMBER' }), 'TUNNEL_REGISTRATION_REFUSED', true],
  ])('%p → %s (final: %p)', (error, code, final) => {
    const got = classify(error, server);
    expect(got.code).toBe(code);
    expect(isFinal(got)).toBe(final);
  });

  test('keeps the status and the cause; a TunnelError passes through', () => {
    const e = answer(401);
    expect(classify(e, server)).toMatchObject({ status: 401, cause: e });
    const own = new TunnelError('TUNNEL_CLOSED', 'closed');
    expect(classify(own, server)).toBe(own);
  });

  test('names the server, and a network error its code', () => {
    const got = classify(new Error('fetch failed', { cause: Object.assign(new Error('x'), { code: 'ENOTFOUND' }) }), server);
    expect(got.message).toContain(server.href);
    expect(got.message).toContain('(ENOTFOUND)');
  });
});

describe('stopped', () => {
  test('only tunnel_closed and tunnel_replaced end the tunnel, whatever call got them', () => {
    expect(stopped(answer(409, 'tunnel_replaced'))?.code).toBe('TUNNEL_REPLACED');
    expect(stopped(answer(410, 'tunnel_closed'))?.code).toBe('TUNNEL_CLOSED_BY_SERVER');
    expect(stopped(answer(404, 'unknown_tunnel'))).toBeUndefined();
    expect(stopped(new Error('socket hang up'))).toBeUndefined();
  });
});

describe('churn pace', () => {
  function paced(random = () => 0.5) {
    let now = 1_000;
    const pace = createChurnPace(() => now, random);
    return { pace, advance: (ms: number) => void (now += ms) };
  }

  test('a session lost soon after its registration delays the next one, more each time, capped', () => {
    const { pace, advance } = paced(() => 0);
    const delays: number[] = [];
    for (let i = 0; i < 9; i++) {
      pace.registered();
      advance(100);
      delays.push(pace.lost());
    }
    // Equal jitter: at least half the ceiling whatever the dice say (0.25 s, 0.5 s, … 15 s).
    expect(delays).toEqual([250, 500, 1_000, 2_000, 4_000, 8_000, 15_000, 15_000, 15_000]);
  });

  test('stays within the upper half of each step', () => {
    const { pace, advance } = paced(() => 0.999);
    pace.registered();
    advance(10);
    const first = pace.lost();
    expect(first).toBeGreaterThanOrEqual(250);
    expect(first).toBeLessThan(500);
  });

  test('a session that lasted is no churn: no wait, and the pace starts over', () => {
    const { pace, advance } = paced(() => 0);
    pace.registered();
    advance(100);
    expect(pace.lost()).toBe(250);
    pace.registered();
    advance(100);
    expect(pace.lost()).toBe(500);
    pace.registered();
    advance(STABLE_SESSION_MS);
    expect(pace.lost()).toBe(0);
    pace.registered();
    advance(100);
    expect(pace.lost()).toBe(250);
  });

  test('a loss before any registration is not paced', () => {
    const { pace } = paced();
    expect(pace.lost()).toBe(0);
  });
});
