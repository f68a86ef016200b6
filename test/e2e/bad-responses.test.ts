import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { header, headers, parseResponses, sendThenClose, startBadApp, type BadApp, type BadScript, type ParsedResponse } from '../helpers/bad-app';
import { memoryLogger, startClient, startServer, waitFor } from '../helpers/tunnel';

/**
 * Bad responses from the local app (reliability-security.md §2 E): duplicate or conflicting
 * framing, bodies longer or shorter than declared, malformed heads, oversized heads, hop-by-hop
 * headers, injection attempts, 1xx-only answers, resets mid-body.
 *
 * The invariant: the browser's connection only ever carries well-framed responses. Either the
 * browser gets a clean answer, or a 502 `local_app_error` when the client cannot parse the local
 * app's answer, or (once the head has gone out) a cut connection, never a body that looks
 * complete. And the next request on the same keep-alive connection gets its own, correct answer:
 * no byte of the bad response is ever read as part of another.
 */

const CRLF = '\r\n';
const body20k = 'v'.repeat(20 * 1024);
const many = (n: number) => Array.from({ length: n }, (_, i) => `X-H${i}: ${i}${CRLF}`).join('');

type Outcome =
  /** 502 with this code; the connection stays usable. */
  | { kind: 'error'; code: string }
  /** A well-framed answer the check accepts; the connection stays usable. */
  | { kind: 'clean'; check(res: ParsedResponse): void }
  /** Either of the above: what matters is that the stream stays in sync. */
  | { kind: 'clean-or-error'; code: string; check(res: ParsedResponse): void }
  /** The head went out, the body could not finish: the connection is cut, the body is a prefix of `body`. */
  | { kind: 'cut'; status: number; body: string }
  /**
   * A cut as above, or, when the client read the whole (small) body before answering and saw it
   * fail, a clean 502 with this code. Either way the browser never sees a body that looks complete.
   */
  | { kind: 'cut-or-error'; status: number; body: string; code: string };

interface Case {
  name: string;
  /** Bytes the app writes before closing its connection (FIN). */
  response: string;
  /** Keep the app's connection open after writing, instead of closing it. */
  keepOpen?: boolean;
  outcome: Outcome;
}

const localAppError = { kind: 'error', code: 'local_app_error' } as const;

/** Framing the client cannot trust (E3; RFC 9112 §6.3). */
const framing: Case[] = [
  { name: 'two Content-Length headers, different values', response: `HTTP/1.1 200 OK${CRLF}Content-Length: 5${CRLF}Content-Length: 8${CRLF}${CRLF}helloEVIL`, outcome: localAppError },
  { name: 'two Content-Length headers, same value', response: `HTTP/1.1 200 OK${CRLF}Content-Length: 5${CRLF}Content-Length: 5${CRLF}${CRLF}hello`, outcome: localAppError },
  { name: 'Content-Length list "5, 5"', response: `HTTP/1.1 200 OK${CRLF}Content-Length: 5, 5${CRLF}${CRLF}hello`, outcome: localAppError },
  { name: 'Content-Length "+5"', response: `HTTP/1.1 200 OK${CRLF}Content-Length: +5${CRLF}${CRLF}hello`, outcome: localAppError },
  { name: 'Content-Length "-1"', response: `HTTP/1.1 200 OK${CRLF}Content-Length: -1${CRLF}${CRLF}hello`, outcome: localAppError },
  { name: 'Content-Length "abc"', response: `HTTP/1.1 200 OK${CRLF}Content-Length: abc${CRLF}${CRLF}hello`, outcome: localAppError },
  { name: 'Content-Length and Transfer-Encoding: chunked', response: `HTTP/1.1 200 OK${CRLF}Content-Length: 3${CRLF}Transfer-Encoding: chunked${CRLF}${CRLF}5${CRLF}hello${CRLF}0${CRLF}${CRLF}`, outcome: localAppError },
  { name: 'Transfer-Encoding: chunked and Content-Length', response: `HTTP/1.1 200 OK${CRLF}Transfer-Encoding: chunked${CRLF}Content-Length: 100${CRLF}${CRLF}5${CRLF}hello${CRLF}0${CRLF}${CRLF}`, outcome: localAppError },
  {
    name: 'body longer than its Content-Length',
    response: `HTTP/1.1 200 OK${CRLF}Content-Length: 5${CRLF}${CRLF}helloEXTRA BYTES THE BROWSER MUST NEVER SEE`,
    outcome: { kind: 'clean', check: (r) => expect(r.body.toString('latin1')).toBe('hello') },
  },
  {
    name: 'body longer than its Content-Length, the extra bytes a whole response, connection kept open',
    response: `HTTP/1.1 200 OK${CRLF}Content-Length: 5${CRLF}${CRLF}helloHTTP/1.1 200 OK${CRLF}Content-Length: 4${CRLF}X-Poisoned: 1${CRLF}${CRLF}EVIL`,
    keepOpen: true,
    outcome: { kind: 'clean', check: (r) => expect(r.body.toString('latin1')).toBe('hello') },
  },
  { name: 'body shorter than its Content-Length, then close', response: `HTTP/1.1 200 OK${CRLF}Content-Length: 100${CRLF}${CRLF}only this`, outcome: { kind: 'cut-or-error', status: 200, body: 'only this', code: 'local_app_error' } },
  { name: 'chunked body without its last chunk, then close', response: `HTTP/1.1 200 OK${CRLF}Transfer-Encoding: chunked${CRLF}${CRLF}5${CRLF}hello${CRLF}`, outcome: { kind: 'cut', status: 200, body: 'hello' } },
  { name: 'malformed chunk size mid-body', response: `HTTP/1.1 200 OK${CRLF}Transfer-Encoding: chunked${CRLF}${CRLF}5${CRLF}hello${CRLF}zz${CRLF}EVIL${CRLF}0${CRLF}${CRLF}`, outcome: { kind: 'cut', status: 200, body: 'hello' } },
  {
    name: 'no framing at all: the body runs to the close and is re-framed',
    response: `HTTP/1.1 200 OK${CRLF}Content-Type: text/plain${CRLF}${CRLF}until the end`,
    outcome: { kind: 'clean', check: (r) => expect(r.body.toString('latin1')).toBe('until the end') },
  },
  {
    name: '204 with a body',
    response: `HTTP/1.1 204 No Content${CRLF}Content-Length: 4${CRLF}${CRLF}EVIL`,
    outcome: { kind: 'clean', check: (r) => expect([r.status, r.body.length]).toEqual([204, 0]) },
  },
];

/** Heads the client cannot parse (E3, E5; RFC 9112 §2.2, §4, §5). */
const heads: Case[] = [
  { name: 'bare LF line ends', response: `HTTP/1.1 200 OK\nContent-Length: 5\n\nhello`, outcome: localAppError },
  { name: 'bare LF after the status line only', response: `HTTP/1.1 200 OK\nContent-Length: 5${CRLF}${CRLF}hello`, outcome: localAppError },
  { name: 'status "2000"', response: `HTTP/1.1 2000 OK${CRLF}Content-Length: 0${CRLF}${CRLF}`, outcome: localAppError },
  { name: 'status "99"', response: `HTTP/1.1 99 Odd${CRLF}Content-Length: 0${CRLF}${CRLF}`, outcome: localAppError },
  { name: 'status 999', response: `HTTP/1.1 999 Odd${CRLF}Content-Length: 0${CRLF}${CRLF}`, outcome: localAppError },
  {
    name: 'HTTP/2.0 status line',
    response: `HTTP/2.0 200 OK${CRLF}Content-Length: 0${CRLF}${CRLF}`,
    outcome: { kind: 'clean-or-error', code: 'local_app_error', check: (r) => expect([r.status, r.body.length]).toEqual([200, 0]) },
  },
  { name: 'not HTTP at all', response: `hello there${CRLF}${CRLF}`, outcome: localAppError },
  { name: 'nothing at all, then close', response: '', outcome: localAppError },
  { name: 'a 20 KiB header', response: `HTTP/1.1 200 OK${CRLF}X-Big: ${body20k}${CRLF}Content-Length: 2${CRLF}${CRLF}ok`, outcome: localAppError },
  {
    name: '150 headers',
    response: `HTTP/1.1 200 OK${CRLF}${many(150)}Content-Length: 2${CRLF}${CRLF}ok`,
    outcome: { kind: 'clean-or-error', code: 'local_app_error', check: (r) => expect([r.status, r.body.toString(), header(r, 'x-h149')]).toEqual([200, 'ok', '149']) },
  },
  {
    name: '3,000 small headers',
    response: `HTTP/1.1 200 OK${CRLF}${Array.from({ length: 3000 }, (_, i) => `a${i}:${CRLF}`).join('')}Content-Length: 2${CRLF}${CRLF}ok`,
    outcome: { kind: 'clean-or-error', code: 'local_app_error', check: (r) => expect([r.status, r.body.toString()]).toEqual([200, 'ok']) },
  },
];

/** Attempts to inject a header or a response through a header (RFC 9110 §5.5, RFC 9112 §5.2). */
const noInjection = (r: ParsedResponse) => {
  expect(r.status).toBe(200);
  expect(header(r, 'x-injected')).toBeUndefined();
  for (const [, value] of r.headers) expect(value).not.toMatch(/[\r\n\0]/);
};
const injection: Case[] = [
  { name: 'obs-fold carrying a header', response: `HTTP/1.1 200 OK${CRLF}X-A: a${CRLF} X-Injected: 1${CRLF}Content-Length: 2${CRLF}${CRLF}ok`, outcome: { kind: 'clean-or-error', code: 'local_app_error', check: noInjection } },
  { name: 'bare CR splitting a value', response: `HTTP/1.1 200 OK${CRLF}X-A: a\rX-Injected: 1${CRLF}Content-Length: 2${CRLF}${CRLF}ok`, outcome: localAppError },
  { name: 'bare LF splitting a value', response: `HTTP/1.1 200 OK${CRLF}X-A: a\nX-Injected: 1${CRLF}Content-Length: 2${CRLF}${CRLF}ok`, outcome: localAppError },
  { name: 'NUL in a value', response: `HTTP/1.1 200 OK${CRLF}X-A: a\0X-Injected: 1${CRLF}Content-Length: 2${CRLF}${CRLF}ok`, outcome: localAppError },
  { name: 'space in a header name', response: `HTTP/1.1 200 OK${CRLF}X Injected: 1${CRLF}Content-Length: 2${CRLF}${CRLF}ok`, outcome: localAppError },
  { name: 'header line without a colon', response: `HTTP/1.1 200 OK${CRLF}X-Injected${CRLF}Content-Length: 2${CRLF}${CRLF}ok`, outcome: localAppError },
];

/** Interim and protocol-switching answers (RFC 9110 §15.2). */
const interim: Case[] = [
  { name: '100 Continue only, then close', response: `HTTP/1.1 100 Continue${CRLF}${CRLF}`, outcome: localAppError },
  { name: '103 Early Hints only, then close', response: `HTTP/1.1 103 Early Hints${CRLF}Link: </a.css>; rel=preload${CRLF}${CRLF}`, outcome: localAppError },
  { name: '101 Switching Protocols to a plain GET', response: `HTTP/1.1 101 Switching Protocols${CRLF}Connection: Upgrade${CRLF}Upgrade: h2c${CRLF}${CRLF}EVIL`, outcome: localAppError },
  {
    name: '103 Early Hints, then the real answer',
    response: `HTTP/1.1 103 Early Hints${CRLF}Link: </a.css>${CRLF}${CRLF}HTTP/1.1 200 OK${CRLF}Content-Length: 5${CRLF}${CRLF}final`,
    outcome: { kind: 'clean', check: (r) => expect([r.status, r.body.toString()]).toEqual([200, 'final']) },
  },
];

describe('bad responses from the local app', () => {
  /** Sockets of the app's answers the test resets itself, by path. */
  const held = new Map<string, Socket>();
  const scripts: Record<string, BadScript> = {};
  const hold =
    (bytes: string): BadScript =>
    (socket, req) => {
      held.set(req.url, socket);
      socket.write(Buffer.from(bytes, 'latin1'));
    };
  const cases = [...framing, ...heads, ...injection, ...interim];
  cases.forEach((c, i) => {
    scripts[`/case-${i}`] = c.keepOpen ? (socket) => void socket.write(Buffer.from(c.response, 'latin1')) : sendThenClose(c.response);
  });
  const hopByHop =
    `HTTP/1.1 200 OK${CRLF}Connection: close, X-Secret${CRLF}X-Secret: named-in-connection${CRLF}CONNECTION: X-Other${CRLF}X-Other: also-named${CRLF}` +
    `Keep-Alive: timeout=999, max=7${CRLF}Proxy-Authenticate: Basic realm="local"${CRLF}Proxy-Connection: close${CRLF}Upgrade: h2c${CRLF}` +
    `Trailer: X-T${CRLF}TE: trailers${CRLF}Set-Cookie: a=1${CRLF}Set-Cookie: b=2${CRLF}X-Kept: yes${CRLF}Transfer-Encoding: chunked${CRLF}${CRLF}` +
    `5${CRLF}hello${CRLF}0${CRLF}X-T: trailer${CRLF}${CRLF}`;
  scripts['/hop-by-hop'] = sendThenClose(hopByHop);
  const midBody = 'x'.repeat(1000);
  scripts['/reset-cl'] = hold(`HTTP/1.1 200 OK${CRLF}Content-Length: 100000${CRLF}${CRLF}${midBody}`);
  scripts['/reset-chunked'] = hold(`HTTP/1.1 200 OK${CRLF}Transfer-Encoding: chunked${CRLF}${CRLF}${midBody.length.toString(16)}${CRLF}${midBody}${CRLF}`);

  let app: BadApp;
  let server: Awaited<ReturnType<typeof startServer>>;
  let client: Awaited<ReturnType<typeof startClient>>;
  let port: number;
  let logger: ReturnType<typeof memoryLogger>;

  beforeAll(async () => {
    app = await startBadApp(scripts);
  });
  afterAll(async () => {
    await app?.close();
  });
  // A fresh server and client per case: the client's pool to the app starts empty, and nothing
  // a case left behind is blamed on the next one.
  beforeEach(async () => {
    logger = memoryLogger();
    server = await startServer({ logger });
    client = await startClient(server, { port: app.port });
    port = client.info.port;
  });
  afterEach(async () => {
    await client?.close();
    await server?.close();
  });

  /** A browser connection on raw bytes: what it sends, and every byte it gets back. */
  async function browserConnection() {
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    let data = Buffer.alloc(0);
    let closed = false;
    const waiters = new Set<() => void>();
    const wake = () => waiters.forEach((w) => w());
    socket.on('data', (c: Buffer) => {
      data = Buffer.concat([data, c]);
      wake();
    });
    socket.on('close', () => {
      closed = true;
      wake();
    });
    socket.on('error', () => {});
    return {
      get data() {
        return data;
      },
      get closed() {
        return closed;
      },
      get(path: string, last = false) {
        socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${last ? 'Connection: close\r\n' : ''}\r\n`);
      },
      /** Resolves once `check()` holds; fails after `timeoutMs` (every wait is bounded). */
      until(check: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
        if (check()) return Promise.resolve();
        return new Promise((resolve, reject) => {
          const timer = setTimeout(() => {
            waiters.delete(onEvent);
            reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${JSON.stringify(data.toString('latin1').slice(0, 2000))}`));
          }, timeoutMs);
          const onEvent = () => {
            if (!check()) return;
            clearTimeout(timer);
            waiters.delete(onEvent);
            resolve();
          };
          waiters.add(onEvent);
        });
      },
      destroy: () => socket.destroy(),
    };
  }

  type Conn = Awaited<ReturnType<typeof browserConnection>>;

  /** The first final response on `conn`, once it is complete, or once the connection closed. */
  async function firstResponse(conn: Conn): Promise<ParsedResponse | undefined> {
    const first = () => parseResponses(conn.data).responses.find((r) => r.status >= 200);
    await conn.until(() => conn.closed || (first()?.complete === true && first()!.framing !== 'close'), 'the first response');
    return first();
  }

  /** A request on a fresh connection gets its own, correct answer (the tunnel still works). */
  async function expectFreshConnectionWorks(): Promise<void> {
    const conn = await browserConnection();
    conn.get('/ok-fresh', true);
    await conn.until(() => conn.closed, 'the fresh connection to close after its answer');
    const stream = parseResponses(conn.data);
    expect(stream.error).toBeUndefined();
    expect(stream.responses.map((r) => [r.status, r.body.toString()])).toEqual([[200, 'ok /ok-fresh']]);
  }

  /**
   * Checks that `conn` is still in sync after its first response: the next request on it gets
   * exactly its own answer, and nothing else arrives, before or after it.
   */
  async function expectConnectionInSync(conn: Conn): Promise<ParsedResponse> {
    conn.get('/ok-next', true);
    await conn.until(() => conn.closed, 'the connection to close after the second answer');
    const stream = parseResponses(conn.data, ['GET', 'GET']);
    expect(stream.error).toBeUndefined();
    expect(stream.rest.length).toBe(0);
    // No interim (1xx) answer of the local app reaches the browser either.
    expect(stream.responses.map((r) => r.status).filter((s) => s < 200)).toEqual([]);
    const [first, second] = stream.responses;
    expect(stream.responses.length).toBe(2);
    expect([second!.status, second!.body.toString()]).toEqual([200, 'ok /ok-next']);
    return first!;
  }

  async function expectTunnelIdle(): Promise<void> {
    await waitFor(() => server.tunnels().every((t) => t.inFlight === 0 && t.queued === 0), 2_000, 'the tunnel to have nothing in flight');
  }

  describe.each([
    ['framing', framing],
    ['heads', heads],
    ['header injection', injection],
    ['interim answers', interim],
  ] as const)('%s', (_group, group) => {
    test.each(group.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
      const path = `/case-${cases.indexOf(c)}`;
      const conn = await browserConnection();
      conn.get(path);
      const res = await firstResponse(conn);
      expect(res).toBeDefined();
      let outcome = c.outcome;
      if (outcome.kind === 'cut-or-error') {
        outcome = res!.status === 502 ? { kind: 'error', code: outcome.code } : { kind: 'cut', status: outcome.status, body: outcome.body };
      }
      if (outcome.kind === 'cut') {
        await conn.until(() => conn.closed, 'the cut connection to close');
        const stream = parseResponses(conn.data);
        expect(stream.error).toBeUndefined();
        expect(stream.responses.length).toBe(1);
        expect(res!.status).toBe(outcome.status);
        // Never a body that looks complete: the browser must see the failure.
        expect(res!.complete).toBe(false);
        expect(outcome.body.startsWith(res!.body.toString('latin1'))).toBe(true);
        await expectFreshConnectionWorks();
      } else {
        expect(conn.closed).toBe(false);
        const first = await expectConnectionInSync(conn);
        const code = header(first, 'x-devtunnel-error');
        if (outcome.kind === 'error') {
          expect([first.status, code]).toEqual([502, outcome.code]);
        } else if (outcome.kind === 'clean-or-error' && first.status === 502) {
          expect(code).toBe(outcome.code);
        } else {
          expect(code).toBeUndefined();
          outcome.check(first);
        }
      }
      await expectTunnelIdle();
    });
  });

  test('hop-by-hop headers and the headers Connection names are stripped; the browser connection stays open', async () => {
    const conn = await browserConnection();
    conn.get('/hop-by-hop');
    await firstResponse(conn);
    expect(conn.closed).toBe(false);
    const res = await expectConnectionInSync(conn);
    expect([res.status, res.body.toString()]).toEqual([200, 'hello']);
    for (const name of ['x-secret', 'x-other', 'proxy-authenticate', 'proxy-connection', 'upgrade', 'trailer', 'te', 'x-t']) {
      expect([name, header(res, name)]).toEqual([name, undefined]);
    }
    // Node adds its own Keep-Alive and Connection for this hop; the app's never pass.
    expect(header(res, 'keep-alive') ?? '').not.toContain('max=7');
    expect(headers(res, 'connection').map((v) => v.toLowerCase())).not.toContain('close');
    expect(headers(res, 'set-cookie')).toEqual(['a=1', 'b=2']);
    expect(header(res, 'x-kept')).toBe('yes');
    await expectTunnelIdle();
  });

  describe.each([
    ['/reset-cl', 'Content-Length'],
    ['/reset-chunked', 'chunked'],
  ])('reset mid-body (%s, %s)', (path) => {
    test('the browser connection is cut after the bytes that arrived, never completed', async () => {
      const conn = await browserConnection();
      conn.get(path);
      // Reset the app's connection only once the browser holds the head and the first bytes.
      await conn.until(() => (parseResponses(conn.data).responses[0]?.body.length ?? 0) >= midBody.length, 'the first body bytes');
      held.get(path)!.resetAndDestroy();
      await conn.until(() => conn.closed, 'the browser connection to be cut');
      const stream = parseResponses(conn.data);
      expect(stream.error).toBeUndefined();
      expect(stream.responses.length).toBe(1);
      const [res] = stream.responses;
      expect(res!.status).toBe(200);
      expect(res!.complete).toBe(false);
      expect(res!.body.toString()).toBe(midBody);
      await expectFreshConnectionWorks();
      await expectTunnelIdle();
    });
  });
});
