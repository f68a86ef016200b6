import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { Agent, request, type Dispatcher } from 'undici';
import {
  CONTENT_TYPE_FRAME,
  encodeHead,
  parseServerMessage,
  paths,
  readFrameHead,
  type RegisterResponse,
  type ResponseHead,
  type ServerMessage,
} from '@devtunnel/core/protocol';
import { header, parseResponses } from '../helpers/bad-app';
import { rawExchange } from '../helpers/net';
import { memoryLogger, startServer, TOKEN } from '../helpers/tunnel';

/**
 * Control-plane authentication and integrity (reliability-security.md §2 D, G1): who may
 * register, poll, answer, check and delete; what a request id is worth to someone who is not its
 * tunnel; what a malformed answer does to the browser and to the server; and that no token or
 * secret reaches the logs. The test plays a misbehaving client itself, driving the control API
 * with undici and the wire format of `@devtunnel/core/protocol`.
 */

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  code: string | undefined;
}

describe('control-plane authentication and integrity', () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  let logger: ReturnType<typeof memoryLogger>;
  const control = new Agent({ connections: 64 });
  const browserAgent = new Agent({ connections: 64 });
  let clients = 0;

  // A fresh server per test: each test's failed authentications count against its own budget.
  // Leases are long so a tunnel driven by hand never goes offline between two steps.
  beforeEach(async () => {
    logger = memoryLogger();
    server = await startServer({ logger, leaseMs: 20_000, expireMs: 60_000 });
  });
  afterEach(async () => {
    await server?.close();
  });
  afterAll(async () => {
    await control.close();
    await browserAgent.close();
  });

  async function api(method: Dispatcher.HttpMethod, path: string, options: { authorization?: string; headers?: Record<string, string>; body?: string | Buffer | PassThrough } = {}): Promise<Answer> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.authorization !== undefined) headers.authorization = options.authorization;
    const res = await request(`${server.url}${path}`, { dispatcher: control, method, headers, body: options.body as string });
    const text = await res.body.text();
    const code = res.headers['x-devtunnel-error'];
    return { status: res.statusCode, headers: res.headers, text, code: typeof code === 'string' ? code : undefined };
  }

  const bearer = (secret: string) => `Bearer ${secret}`;

  async function register(body: Record<string, unknown> = {}, authorization = bearer(TOKEN)): Promise<Answer> {
    return api('POST', paths.tunnels, { authorization, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ clientId: `tester@host:1#${++clients}`, ...body }) });
  }

  async function tunnel(): Promise<RegisterResponse> {
    const res = await register();
    expect(res.status).toBe(201);
    return JSON.parse(res.text) as RegisterResponse;
  }

  /** One poll as the tunnel's client: the message it brought, or null on 204. */
  async function poll(session: RegisterResponse): Promise<ServerMessage | null> {
    const res = await request(`${server.url}${paths.poll(session.id)}`, { dispatcher: control, headers: { authorization: bearer(session.secret) } });
    if (res.statusCode === 204) {
      await res.body.dump();
      return null;
    }
    expect(res.statusCode).toBe(200);
    const message = parseServerMessage(await readFrameHead(res.body));
    await res.body.dump();
    return message;
  }

  /** Polls until a request message arrives (bounded: a few poll rounds). */
  async function nextRequest(session: RegisterResponse): Promise<ServerMessage & { type: 'request' }> {
    for (let round = 0; round < 5; round++) {
      const message = await poll(session);
      if (message?.type === 'request') return message;
    }
    throw new Error('no request arrived within 5 polls');
  }

  function frame(head: ResponseHead | Record<string, unknown>, body: string | Buffer = ''): Buffer {
    return Buffer.concat([encodeHead(head as ResponseHead), Buffer.from(body)]);
  }

  function upload(session: RegisterResponse, requestId: string, bytes: Buffer | PassThrough, secret = session.secret, tunnelId = session.id): Promise<Answer> {
    return api('POST', paths.response(tunnelId, requestId), { authorization: bearer(secret), headers: { 'content-type': CONTENT_TYPE_FRAME }, body: bytes });
  }

  /** A browser request to a tunnel's port; resolves with the whole answer. */
  async function browse(session: RegisterResponse, path = '/', signal?: AbortSignal): Promise<Answer> {
    const res = await request(`http://127.0.0.1:${session.port}${path}`, { dispatcher: browserAgent, headers: { accept: 'application/json' }, signal });
    const text = await res.body.text();
    const code = res.headers['x-devtunnel-error'];
    return { status: res.statusCode, headers: res.headers, text, code: typeof code === 'string' ? code : undefined };
  }

  const good = (text: string): Buffer => frame({ status: 201, headers: [['Content-Type', 'text/plain'], ['X-Answer', 'own']], bodyLength: Buffer.byteLength(text) }, text);

  /** A browser request answered by its own client, as the control for every attack. */
  async function expectServes(session: RegisterResponse, text = 'served'): Promise<void> {
    const browser = browse(session, '/control');
    const message = await nextRequest(session);
    expect((await upload(session, message.id, good(text))).status).toBe(204);
    const res = await browser;
    expect([res.status, res.text, res.headers['x-answer']]).toEqual([201, text, 'own']);
  }

  function expectUnauthorized(res: Answer): void {
    expect([res.status, res.code]).toEqual([401, 'unauthorized']);
    expect(String(res.headers['www-authenticate'])).toMatch(/^Bearer\b/);
    expect(JSON.parse(res.text)).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
  }

  describe('registration needs the token, in the Authorization header, as a Bearer credential', () => {
    const wrong = 'wrong-token-0123456789abcdef';
    const cases: Array<[string, () => Promise<Answer>]> = [
      ['no Authorization header', () => api('POST', paths.tunnels, { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ clientId: 'n@h:1#1' }) })],
      ['a wrong token', () => register({}, bearer(wrong))],
      ['the token in the query string only (?token=)', () => api('POST', `${paths.tunnels}?token=${TOKEN}`, { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ clientId: 'q@h:1#1' }) })],
      ['the token in the query string only (?access_token=)', () => api('POST', `${paths.tunnels}?access_token=${TOKEN}`, { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ clientId: 'q@h:1#2' }) })],
      ['lower-case "bearer" with a wrong token', () => register({}, `bearer ${wrong}`)],
      ['the token as Basic credentials', () => register({}, `Basic ${Buffer.from(`devtunnel:${TOKEN}`).toString('base64')}`)],
      ['the bare token, no scheme', () => register({}, TOKEN)],
      ['"Bearer" with nothing after it', () => register({}, 'Bearer')],
      ['the token with a character appended', () => register({}, bearer(`${TOKEN}x`))],
      ['the token with its last character cut', () => register({}, bearer(TOKEN.slice(0, -1)))],
      ['the token followed by another word', () => register({}, `Bearer ${TOKEN} extra`)],
      ['the token in a cookie', () => api('POST', paths.tunnels, { headers: { cookie: `token=${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ clientId: 'c@h:1#1' }) })],
      ['the token in X-Api-Key', () => api('POST', paths.tunnels, { headers: { 'x-api-key': TOKEN, 'content-type': 'application/json' }, body: JSON.stringify({ clientId: 'k@h:1#1' }) })],
    ];
    test.each(cases)('%s → 401 with WWW-Authenticate: Bearer, and no tunnel', async (_name, attempt) => {
      expectUnauthorized(await attempt());
      expect(server.tunnels()).toEqual([]);
    });

    test("a tunnel's secret is not a registration token", async () => {
      const a = await tunnel();
      expectUnauthorized(await register({}, bearer(a.secret)));
      expect(server.tunnels().length).toBe(1);
    });

    test('listing tunnels needs the token too', async () => {
      expectUnauthorized(await api('GET', paths.tunnels));
      expectUnauthorized(await api('GET', paths.tunnels, { authorization: bearer('nope-nope-nope-nope') }));
      expect((await api('GET', paths.tunnels, { authorization: bearer(TOKEN) })).status).toBe(200);
    });

    // RFC 9110 §11.1: the auth-scheme is case-insensitive, so "bearer" with the right token is
    // the same credential as "Bearer" (only the wrong token above is refused).
    test('lower-case "bearer" with the right token registers (RFC 9110 §11.1)', async () => {
      expect((await register({}, `bearer ${TOKEN}`)).status).toBe(201);
    });
  });

  describe('failed authentications with the registration token are rate-limited per address', () => {
    test('30 failures a minute are answered 401; then 429 rate_limited with Retry-After, even for the right token; a minute later the address starts over', async () => {
      await server.close();
      let clock = Date.now();
      server = await startServer({ logger, leaseMs: 20_000, expireMs: 60_000, now: () => clock });
      for (let i = 0; i < 30; i++) {
        const res = i % 2 ? await register({}, bearer(`wrong-token-${i}-0123456789`)) : await api('GET', paths.tunnels, { authorization: bearer(`wrong-token-${i}-0123456789`) });
        expect([i, res.status]).toEqual([i, 401]);
      }
      const limited = await register({}, bearer('wrong-token-31-0123456789'));
      expect([limited.status, limited.code]).toEqual([429, 'rate_limited']);
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      expect(JSON.parse(limited.text)).toEqual({ error: { code: 'rate_limited', message: expect.any(String) } });
      // While throttled even a right guess gets nowhere, so guessing gains nothing from the 429s.
      const right = await register();
      expect([right.status, right.code]).toEqual([429, 'rate_limited']);
      expect((await api('GET', paths.tunnels, { authorization: bearer(TOKEN) })).status).toBe(429);
      expect(server.tunnels()).toEqual([]);
      // A minute later the address starts over.
      clock += 61_000;
      expectUnauthorized(await register({}, bearer('wrong-token-again-0123456789')));
      expect((await register()).status).toBe(201);
    });

    // Clients usually reach the server through the cluster's ingress and share one address: one
    // script with a stale token must not cut every tunnel's polls and answers.
    test('wrong tunnel secrets are not counted, and a throttled address still serves its tunnels', async () => {
      const a = await tunnel();
      for (let i = 0; i < 40; i++) expectUnauthorized(await api('GET', paths.tunnel(a.id), { authorization: bearer(`not-the-secret-${i}`) }));
      expect((await register()).status).toBe(201);
      for (let i = 0; i < 30; i++) await register({}, bearer(`wrong-token-${i}-0123456789`));
      expect((await register({}, bearer('wrong-token-x-0123456789'))).status).toBe(429);
      expect((await api('GET', paths.tunnel(a.id), { authorization: bearer(a.secret) })).status).toBe(200);
      await expectServes(a);
    });
  });

  describe("tunnel calls need the tunnel's own secret, in the Authorization header", () => {
    type Call = (t: RegisterResponse, suffix: string, authorization?: string) => Promise<Answer>;
    const calls: Array<[string, Call]> = [
      ['poll', (t, q, authorization) => api('GET', `${paths.poll(t.id)}${q}`, { authorization })],
      ['check', (t, q, authorization) => api('GET', `${paths.tunnel(t.id)}${q}`, { authorization })],
      ['deregister', (t, q, authorization) => api('DELETE', `${paths.tunnel(t.id)}${q}`, { authorization })],
      ['answer', (t, q, authorization) => api('POST', `${paths.response(t.id, randomBytes(16).toString('hex'))}${q}`, { authorization, headers: { 'content-type': CONTENT_TYPE_FRAME }, body: good('x') })],
    ];
    const credentials: Array<[string, (t: RegisterResponse) => { query?: string; authorization?: string }]> = [
      ['no Authorization header', () => ({})],
      ['a wrong secret', () => ({ authorization: bearer('0'.repeat(64)) })],
      ['the secret in the query string only', (t) => ({ query: `?secret=${t.secret}&access_token=${t.secret}` })],
      ['the secret as Basic credentials', (t) => ({ authorization: `Basic ${Buffer.from(`x:${t.secret}`).toString('base64')}` })],
      ['lower-case "bearer" with a wrong secret', () => ({ authorization: `bearer ${'0'.repeat(64)}` })],
      ['the secret with a character cut', (t) => ({ authorization: bearer(t.secret.slice(0, -1)) })],
    ];
    const table = calls.flatMap(([call, run]) => credentials.map(([cred, make]) => [call, cred, run, make] as const));
    test.each(table)('%s with %s → 401, and the tunnel is untouched', async (_call, _cred, run, make) => {
      const a = await tunnel();
      const { query = '', authorization } = make(a);
      expectUnauthorized(await run(a, query, authorization));
      expect(server.tunnels().find((t) => t.id === a.id)?.state).toBe('connected');
      await expectServes(a);
    });
  });

  describe("one tunnel's secret gives no power over another tunnel", () => {
    let a: RegisterResponse;
    let b: RegisterResponse;
    beforeEach(async () => {
      a = await tunnel();
      b = await tunnel();
    });

    test("polling A with B's secret: 401, and A's waiting browser request stays A's", async () => {
      const browser = browse(a, '/for-a');
      expectUnauthorized(await api('GET', paths.poll(a.id), { authorization: bearer(b.secret) }));
      // The registration token is not a tunnel secret either.
      expectUnauthorized(await api('GET', paths.poll(a.id), { authorization: bearer(TOKEN) }));
      const message = await nextRequest(a);
      expect(message.url).toBe('/for-a');
      expect((await upload(a, message.id, good('for a'))).status).toBe(204);
      expect((await browser).text).toBe('for a');
    });

    test("checking A with B's secret: 401", async () => {
      expectUnauthorized(await api('GET', paths.tunnel(a.id), { authorization: bearer(b.secret) }));
      expect((await api('GET', paths.tunnel(a.id), { authorization: bearer(a.secret) })).status).toBe(200);
    });

    test("deleting A with B's secret or the registration token: 401, and A still serves", async () => {
      expectUnauthorized(await api('DELETE', paths.tunnel(a.id), { authorization: bearer(b.secret) }));
      expectUnauthorized(await api('DELETE', paths.tunnel(a.id)));
      // The registration token is shared by every developer: it does not close someone's tunnel.
      expectUnauthorized(await api('DELETE', paths.tunnel(a.id), { authorization: bearer(TOKEN) }));
      expect(server.tunnels().find((t) => t.id === a.id)?.state).toBe('connected');
      await expectServes(a);
    });

    test("answering A's request: with B's secret on A's path 401, on B's path 404; A's own answer still reaches the browser", async () => {
      const browser = browse(a, '/victim');
      const message = await nextRequest(a);
      const forged = frame({ status: 200, headers: [['X-Answer', 'forged']], bodyLength: 6 }, 'forged');
      expectUnauthorized(await upload(a, message.id, forged, b.secret, a.id));
      const crossed = await upload(b, message.id, forged);
      expect([crossed.status, crossed.code]).toEqual([404, 'unknown_request']);
      expect((await upload(a, message.id, good('genuine'))).status).toBe(204);
      const res = await browser;
      expect([res.status, res.text, res.headers['x-answer']]).toEqual([201, 'genuine', 'own']);
    });

    test('an unknown tunnel id: 404 unknown_tunnel, whatever the secret', async () => {
      const ghost = randomBytes(16).toString('hex');
      for (const secret of [a.secret, TOKEN, 'anything-at-all-1234']) {
        const res = await api('GET', paths.poll(ghost), { authorization: bearer(secret) });
        expect([res.status, res.code]).toEqual([404, 'unknown_tunnel']);
      }
    });
  });

  describe('request ids are single-use and bound to their tunnel', () => {
    let a: RegisterResponse;
    beforeEach(async () => {
      a = await tunnel();
    });

    test.each([
      ['a random 32-hex id', () => randomBytes(16).toString('hex')],
      ['an upper-case hex id', () => randomBytes(16).toString('hex').toUpperCase()],
      ['a 33-character id', () => `${randomBytes(16).toString('hex')}0`],
      ['a path-traversal id', () => '..%2F..%2Fpoll'],
    ])('%s → 404 unknown_request', async (_name, id) => {
      const res = await upload(a, id(), good('nobody asked'));
      expect([res.status, res.code]).toEqual([404, 'unknown_request']);
      await expectServes(a);
    });

    test('replaying an answered id → 404 unknown_request; the browser got the first answer only', async () => {
      const browser = browse(a, '/once');
      const message = await nextRequest(a);
      expect((await upload(a, message.id, good('first'))).status).toBe(204);
      expect((await browser).text).toBe('first');
      const replay = await upload(a, message.id, good('second'));
      expect([replay.status, replay.code]).toEqual([404, 'unknown_request']);
    });

    test('a second POST while the first is streaming → 409 request_answered; the first completes intact', async () => {
      const browser = request(`http://127.0.0.1:${a.port}/streamed`, { dispatcher: browserAgent });
      const message = await nextRequest(a);
      const body = new PassThrough();
      const first = upload(a, message.id, body);
      body.write(encodeHead({ status: 200, headers: [['Content-Type', 'text/plain']], bodyLength: 10 }));
      body.write('01234');
      // The browser has its head: the server took the first answer.
      const res = await browser;
      expect(res.statusCode).toBe(200);
      const second = await upload(a, message.id, good('intruder'));
      expect([second.status, second.code]).toEqual([409, 'request_answered']);
      body.end('56789');
      expect(await res.body.text()).toBe('0123456789');
      expect((await first).status).toBe(204);
    });

    test('once the browser left, its id answers 404 and nothing is written anywhere', async () => {
      const abort = new AbortController();
      const browser = browse(a, '/leaving', abort.signal);
      const message = await nextRequest(a);
      abort.abort();
      await expect(browser).rejects.toMatchObject({ name: 'AbortError' });
      // The server tells the client the request is cancelled; after that the id is dead.
      const cancel = await poll(a);
      expect(cancel).toEqual({ type: 'cancel', id: message.id });
      const late = await upload(a, message.id, good('too late'));
      expect([late.status, late.code]).toEqual([404, 'unknown_request']);
      await expectServes(a);
    });
  });

  describe('a malformed answer gives the browser 502 bad_response and harms nothing else', () => {
    const prefixed = (length: number, json: string) => {
      const b = Buffer.alloc(4 + Buffer.byteLength(json));
      b.writeUInt32BE(length, 0);
      b.write(json, 4);
      return b;
    };
    const head = (h: Record<string, unknown>) => frame({ status: 200, headers: [], bodyLength: 0, ...h });
    const cases: Array<[string, Buffer]> = [
      ['head that is not JSON', prefixed(9, '{"status"')],
      ['length prefix larger than the upload', prefixed(1000, JSON.stringify({ status: 200, headers: [], bodyLength: 0 }))],
      ['length prefix beyond the head limit', prefixed(0xffffffff, '{}')],
      ['upload shorter than the length prefix itself', Buffer.from([0, 0])],
      ['empty upload', Buffer.alloc(0)],
      ['head that is a JSON array', prefixed(2, '[]')],
      ['status 101', head({ status: 101 })],
      ['status 99', head({ status: 99 })],
      ['status 600', head({ status: 600 })],
      ['status as a string', head({ status: '200' })],
      ['fractional status', head({ status: 200.5 })],
      ['header name with a space', head({ headers: [['Bad Name', 'x']] })],
      ['empty header name', head({ headers: [['', 'x']] })],
      ['header name with a colon', head({ headers: [['X-A:', 'x']] })],
      ['header value with CRLF and a header after it', head({ headers: [['X-A', 'a\r\nX-Injected: 1']] })],
      ['header value with CRLF CRLF and a body after it', head({ headers: [['X-A', 'a\r\n\r\n<script>alert(1)</script>']] })],
      ['header value with a bare LF', head({ headers: [['X-A', 'a\nX-Injected: 1']] })],
      ['header value with NUL', head({ headers: [['X-A', 'a\0b']] })],
      ['headers that are not pairs', head({ headers: [['X-A']] })],
      ['headers as an object', head({ headers: { 'X-A': '1' } })],
      ['negative bodyLength', head({ bodyLength: -1 })],
      ['error head with an unknown code', frame({ status: 502, headers: [], bodyLength: 0, error: { code: 'pwned', message: 'x' } })],
    ];
    test.each(cases)('%s', async (_name, bytes) => {
      const a = await tunnel();
      const browser = browse(a, '/malformed');
      const message = await nextRequest(a);
      const res = await upload(a, message.id, bytes);
      expect([res.status, res.code]).toEqual([400, 'invalid_request']);
      const seen = await browser;
      expect([seen.status, seen.code]).toEqual([502, 'bad_response']);
      expect(seen.headers['x-injected']).toBeUndefined();
      expect(seen.text).not.toContain('<script>');
      // The server and the tunnel carry on.
      await expectServes(a);
      expect(server.tunnels().find((t) => t.id === a.id)).toMatchObject({ state: 'connected', inFlight: 0, queued: 0 });
    });

    /** Sends one request on a raw browser connection and returns what arrived until it closed. */
    async function rawBrowse(a: RegisterResponse, path: string, answer: (message: ServerMessage & { type: 'request' }) => Promise<unknown>) {
      const browser = rawExchange(a.port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${a.port}\r\nConnection: close\r\n\r\n`, 3_000);
      const message = await nextRequest(a);
      const answered = await answer(message);
      const result = await browser;
      return { ...result, answered, stream: parseResponses(Buffer.from(result.text, 'latin1')) };
    }

    /**
     * Uploads a whole frame and reports how the server dealt with the upload: an error answer, a
     * closed connection, or nothing within 5 s (a hung upload holds a socket and a request; the
     * margin keeps a slow refusal on a loaded machine from looking like one).
     */
    async function uploadOutcome(a: RegisterResponse, requestId: string, bytes: Buffer): Promise<string> {
      try {
        const res = await request(`${server.url}${paths.response(a.id, requestId)}`, {
          dispatcher: control,
          method: 'POST',
          headers: { authorization: bearer(a.secret), 'content-type': CONTENT_TYPE_FRAME },
          body: bytes,
          headersTimeout: 5_000,
          bodyTimeout: 5_000,
        });
        await res.body.dump();
        return res.statusCode >= 400 ? 'refused' : `accepted with ${res.statusCode}`;
      } catch (error) {
        return (error as { code?: string }).code === 'UND_ERR_HEADERS_TIMEOUT' ? 'hung' : 'closed';
      }
    }

    test('a body longer than its bodyLength: the browser connection is cut, never sees the extra bytes; the upload is refused', async () => {
      const a = await tunnel();
      const { stream, closedByServer, answered } = await rawBrowse(a, '/long', (m) =>
        uploadOutcome(a, m.id, frame({ status: 200, headers: [], bodyLength: 5 }, 'helloHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL')),
      );
      expect(closedByServer).toBe(true);
      expect(stream.error).toBeUndefined();
      // Cut: either before the head went out, or after it with an incomplete body.
      expect(stream.responses.length).toBeLessThanOrEqual(1);
      for (const res of stream.responses) {
        expect(res.complete).toBe(false);
        expect('hello'.startsWith(res.body.toString())).toBe(true);
      }
      expect(['refused', 'closed']).toContain(answered);
      await expectServes(a);
    });

    test('a body shorter than its bodyLength: the browser connection is cut, the body never looks complete; the upload is refused', async () => {
      const a = await tunnel();
      const { stream, closedByServer, answered } = await rawBrowse(a, '/short', (m) => uploadOutcome(a, m.id, frame({ status: 200, headers: [], bodyLength: 100 }, 'only this')));
      expect(closedByServer).toBe(true);
      expect(stream.error).toBeUndefined();
      expect(stream.responses.length).toBeLessThanOrEqual(1);
      for (const res of stream.responses) {
        expect(res.complete).toBe(false);
        expect('only this'.startsWith(res.body.toString())).toBe(true);
      }
      expect(['refused', 'closed']).toContain(answered);
      await expectServes(a);
    });

    test('a head whose header Node refuses: 502 with the reason phrase of 502, not of the status refused', async () => {
      const a = await tunnel();
      const { text } = await rawBrowse(a, '/refused-head', (m) => upload(a, m.id, frame({ status: 200, headers: [['Bad Name', 'x']], bodyLength: 0 })));
      expect(text.startsWith('HTTP/1.1 502 Bad Gateway\r\n')).toBe(true);
    });

    test('framing headers in the head are never copied: the server frames the body itself', async () => {
      const a = await tunnel();
      const { stream } = await rawBrowse(a, '/framing', (m) =>
        upload(a, m.id, frame({ status: 200, headers: [['Content-Length', '3'], ['Transfer-Encoding', 'chunked'], ['Connection', 'keep-alive, X-Secret'], ['X-Secret', 's']], bodyLength: 10 }, '0123456789')),
      );
      expect(stream.error).toBeUndefined();
      const [res] = stream.responses;
      expect([res!.status, res!.complete, res!.framing, res!.body.toString()]).toEqual([200, true, 'content-length', '0123456789']);
      expect(header(res!, 'content-length')).toBe('10');
      expect(header(res!, 'transfer-encoding')).toBeUndefined();
      expect(header(res!, 'x-secret')).toBeUndefined();
    });
  });

  describe('registration input is validated', () => {
    const names = ['<img src=x onerror=alert(1)>', '"><script>alert(1)</script>', 'Ann', '-ann', 'a b', 'a_b', 'a.b', '../etc', 'ann\n', 'ánn', '', 'a'.repeat(64)];
    test.each(names.map((n) => [JSON.stringify(n), n]))('name %s → 400 invalid_request', async (_label, name) => {
      const res = await register({ name });
      expect([res.status, res.code]).toEqual([400, 'invalid_request']);
      expect(server.tunnels()).toEqual([]);
      expect(logger.text()).not.toContain('<img');
      expect(logger.text()).not.toContain('<script>');
    });

    test.each([
      ['clientId missing', { clientId: undefined }],
      ['clientId with a space', { clientId: 'ann @host' }],
      ['clientId of 201 characters', { clientId: 'a'.repeat(201) }],
      ['clientId not a string', { clientId: 42 }],
      ['preferredPort as a string', { preferredPort: '9000' }],
      ['preferredPort 0', { preferredPort: 0 }],
      ['preferredPort 70000', { preferredPort: 70_000 }],
      ['localPort fractional', { localPort: 80.5 }],
      ['version with markup', { version: '<script>' }],
    ])('%s → 400 invalid_request', async (_name, body) => {
      const res = await register(body);
      expect([res.status, res.code]).toEqual([400, 'invalid_request']);
      expect(server.tunnels()).toEqual([]);
    });

    test.each([
      ['not JSON', '{"clientId":'],
      ['a JSON array', '[]'],
      ['JSON null', 'null'],
    ])('a body that is %s → 400 invalid_request', async (_name, body) => {
      const res = await api('POST', paths.tunnels, { authorization: bearer(TOKEN), headers: { 'content-type': 'application/json' }, body });
      expect([res.status, res.code]).toEqual([400, 'invalid_request']);
    });

    test('a client speaking another protocol version → 400 invalid_request', async () => {
      const res = await api('POST', paths.tunnels, { authorization: bearer(TOKEN), headers: { 'content-type': 'application/json', 'x-devtunnel-protocol': '999' }, body: JSON.stringify({ clientId: 'old@h:1#1' }) });
      expect([res.status, res.code]).toEqual([400, 'invalid_request']);
      expect(server.tunnels()).toEqual([]);
    });

    test('a valid name registers (the control for the cases above)', async () => {
      const res = await register({ name: 'ann-5173' });
      expect(res.status).toBe(201);
      expect(JSON.parse(res.text)).toMatchObject({ name: 'ann-5173' });
    });

    const big = JSON.stringify({ clientId: 'big@host:1#1', padding: 'p'.repeat(17 * 1024) });
    test('a registration body over 16 KiB with Content-Length → 413 payload_too_large, connection closed', async () => {
      const res = await rawExchange(server.port, `POST ${paths.tunnels} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: ${big.length}\r\n\r\n${big}`);
      const stream = parseResponses(Buffer.from(res.text, 'latin1'));
      expect(stream.responses.map((r) => [r.status, header(r, 'x-devtunnel-error')])).toEqual([[413, 'payload_too_large']]);
      expect(res.closedByServer).toBe(true);
      expect(server.tunnels()).toEqual([]);
    });

    test('a chunked registration body over 16 KiB → 413 payload_too_large, connection closed', async () => {
      const chunked = `${big.length.toString(16)}\r\n${big}\r\n0\r\n\r\n`;
      const res = await rawExchange(server.port, `POST ${paths.tunnels} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}`);
      const stream = parseResponses(Buffer.from(res.text, 'latin1'));
      expect(stream.responses.map((r) => [r.status, header(r, 'x-devtunnel-error')])).toEqual([[413, 'payload_too_large']]);
      expect(res.closedByServer).toBe(true);
      expect(server.tunnels()).toEqual([]);
    });
  });

  test('no token or secret ever reaches the logs', async () => {
    const wrong = 'wrong-token-should-not-be-logged-42';
    const a = await tunnel();
    const b = await tunnel();
    await register({}, bearer(wrong));
    await register({}, `bearer ${wrong}`);
    await api('POST', `${paths.tunnels}?token=${TOKEN}&access_token=${wrong}`, { body: '{}' });
    await api('GET', `${paths.poll(a.id)}?secret=${a.secret}`, { authorization: bearer(b.secret) });
    await api('DELETE', paths.tunnel(a.id), { authorization: bearer(b.secret) });
    await upload(a, randomBytes(16).toString('hex'), good('x'), b.secret, a.id);
    // A browser request carrying credentials of its own, in the URL and in headers.
    const browser = request(`http://127.0.0.1:${a.port}/page?token=${TOKEN}&code=browser-secret-code`, {
      dispatcher: browserAgent,
      headers: { authorization: 'Bearer browser-bearer-secret', cookie: 'session=browser-cookie-secret' },
    });
    const message = await nextRequest(a);
    await upload(a, message.id, good('page'));
    await (await browser).body.text();
    expect((await api('DELETE', paths.tunnel(b.id), { authorization: bearer(b.secret) })).status).toBe(204);
    await server.close();
    const text = logger.text();
    // The log is there and speaks of these events…
    expect(logger.lines.filter((l) => l.msg === 'auth.failed').length).toBeGreaterThanOrEqual(5);
    expect(logger.lines.some((l) => l.msg === 'request' && l.path === '/page')).toBe(true);
    // …without any credential in it.
    for (const secret of [TOKEN, wrong, a.secret, b.secret, 'browser-secret-code', 'browser-bearer-secret', 'browser-cookie-secret']) {
      expect([secret, text.includes(secret)]).toEqual([secret, false]);
    }
  });
});
