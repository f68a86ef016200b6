import { once } from 'node:events';
import { connect } from 'node:net';
import { Agent } from 'undici';
import { header, parseResponses, type ParsedResponse } from '../helpers/bad-app';
import { sha256, startEchoApp, type EchoApp, type EchoBody } from '../helpers/echo-app';
import { rawExchange } from '../helpers/net';
import { fetchBuffer, memoryLogger, startClient, startServer, waitFor } from '../helpers/tunnel';

/**
 * Request smuggling and framing at a tunnel port (reliability-security.md §2 A, B1): bytes
 * the parser must refuse, and requests it accepts that the tunnel must still refuse. The
 * invariant for every refusal: one error answer, then the connection closes, the request after
 * it on the same socket is never parsed, and nothing reaches the queue, the client or the local
 * app. Written as tables per class, in the manner of HTTP Garden fixtures and httpxy's
 * request-smuggling.test.ts.
 */

const HOST = 'Host: 127.0.0.1\r\n';
/** Pipelined after every attack: if it is ever answered or forwarded, the stream was desynced. */
const SMUGGLED = `GET /smuggled HTTP/1.1\r\n${HOST}\r\n`;
/** A request carried inside a body, to catch a parser that reads that body as the next request. */
const INNER = `GET /smuggled-in-body HTTP/1.1\r\n${HOST}\r\n`;
const INNER_CHUNK = `${INNER.length.toString(16)}\r\n${INNER}\r\n0\r\n\r\n`;

interface Refusal {
  name: string;
  bytes: string;
  status: number;
  code: string;
}

/** A Content-Length and a Transfer-Encoding that disagree (A1, A2; RFC 9112 §6.3). */
const clTe: Refusal[] = [
  { name: 'CL.TE: Content-Length then chunked, body "0\\r\\n\\r\\nG"', bytes: `POST / HTTP/1.1\r\n${HOST}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG`, status: 400, code: 'invalid_request' },
  { name: 'TE.CL: chunked then Content-Length 3, chunk "SMUGGLED"', bytes: `POST / HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n`, status: 400, code: 'invalid_request' },
  { name: 'CL.TE with a whole request as the body', bytes: `POST / HTTP/1.1\r\n${HOST}Content-Length: ${5 + INNER.length}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${INNER}`, status: 400, code: 'invalid_request' },
  { name: 'Content-Length with Transfer-Encoding: identity', bytes: `POST / HTTP/1.1\r\n${HOST}Content-Length: 3\r\nTransfer-Encoding: identity\r\n\r\nabc`, status: 400, code: 'invalid_request' },
];

/** Content-Length values with more than one reading (A3; RFC 9110 §8.6, RFC 9112 §6.3 rule 5). */
const contentLength: Refusal[] = [
  ['duplicate, same value', 'Content-Length: 3\r\nContent-Length: 3'],
  ['duplicate, different values', 'Content-Length: 3\r\nContent-Length: 4'],
  ['list "3, 3"', 'Content-Length: 3, 3'],
  ['list "3,4"', 'Content-Length: 3,4'],
  ['signed "+3"', 'Content-Length: +3'],
  ['negative "-3"', 'Content-Length: -3'],
  ['empty', 'Content-Length: '],
  ['hex "0x3"', 'Content-Length: 0x3'],
  ['decimal "3.0"', 'Content-Length: 3.0'],
  ['exponent "3e0"', 'Content-Length: 3e0'],
  ['trailing garbage "3a"', 'Content-Length: 3a'],
  ['larger than 2^64', 'Content-Length: 99999999999999999999'],
  ['space before the colon', 'Content-Length : 3'],
].map(([name, line]) => ({ name: `Content-Length ${name}`, bytes: `POST / HTTP/1.1\r\n${HOST}${line}\r\n\r\nabc`, status: 400, code: 'invalid_request' }));

/**
 * Transfer-Encoding obfuscation and versions without chunked (A4; RFC 9112 §6.1, §7): anything but
 * exactly "chunked" in an HTTP/1.1 request is refused, so no two parsers can disagree on it.
 */
const transferEncoding: Refusal[] = [
  ['"chunked<TAB>"', `POST / HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\t\r\n\r\n${INNER_CHUNK}`],
  ['"identity"', `POST / HTTP/1.1\r\n${HOST}Transfer-Encoding: identity\r\n\r\n${INNER}`],
  ['"gzip, chunked"', `POST / HTTP/1.1\r\n${HOST}Transfer-Encoding: gzip, chunked\r\n\r\n${INNER_CHUNK}`],
  ['"chunked, identity"', `POST / HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked, identity\r\n\r\n${INNER_CHUNK}`],
  ['"chunked, chunked"', `POST / HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked, chunked\r\n\r\n${INNER_CHUNK}`],
  ['two Transfer-Encoding lines', `POST / HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n${INNER_CHUNK}`],
  ['"xchunked"', `POST / HTTP/1.1\r\n${HOST}Transfer-Encoding: xchunked\r\n\r\n${INNER_CHUNK}`],
  ['vertical tab before "chunked"', `POST / HTTP/1.1\r\n${HOST}Transfer-Encoding: \x0bchunked\r\n\r\n${INNER_CHUNK}`],
  ['space before the colon', `POST / HTTP/1.1\r\n${HOST}Transfer-Encoding : chunked\r\n\r\n${INNER_CHUNK}`],
  ['leading space on the field line', `POST / HTTP/1.1\r\n${HOST} Transfer-Encoding: chunked\r\n\r\n${INNER_CHUNK}`],
  ['HTTP/1.0 with chunked', `POST / HTTP/1.0\r\n${HOST}Transfer-Encoding: chunked\r\n\r\n${INNER_CHUNK}`],
  ['HTTP/1.0 keep-alive with chunked', `POST / HTTP/1.0\r\n${HOST}Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n${INNER_CHUNK}`],
].map(([name, bytes]) => ({ name: `Transfer-Encoding ${name}`, bytes: bytes!, status: 400, code: 'invalid_request' }));

/** Line ends and folding (A5; RFC 9112 §2.2, §5.2; CVE-2022-32214, CVE-2022-35256, CVE-2025-23167). */
const lineEnds: Refusal[] = [
  ['obs-fold in a field value', `GET / HTTP/1.1\r\n${HOST}X-A: a\r\n b\r\n\r\n`],
  ['obs-fold continuing Content-Length', `POST / HTTP/1.1\r\n${HOST}Content-Length: 0\r\n 3\r\n\r\nabc`],
  ['obs-fold continuing Transfer-Encoding', `POST / HTTP/1.1\r\n${HOST}Transfer-Encoding: gzip\r\n chunked\r\n\r\n${INNER_CHUNK}`],
  ['bare LF after the request line', `GET / HTTP/1.1\n${HOST}\r\n`],
  ['bare LF after a field line', `GET / HTTP/1.1\r\nHost: 127.0.0.1\nX-A: 1\r\n\r\n`],
  ['bare LF ending the header block', `GET / HTTP/1.1\r\n${HOST}\n`],
  ['bare CR inside a field value', `GET / HTTP/1.1\r\n${HOST}X-A: a\rb\r\n\r\n`],
  ['bare CR after the request line', `GET / HTTP/1.1\r${HOST}\r\n`],
  ['"\\r\\n\\rX" ending the header block', `GET / HTTP/1.1\r\n${HOST}\r\rX`],
  ['"\\r\\n\\rX" after a field', `GET / HTTP/1.1\r\n${HOST}X-A: 1\r\n\rX`],
].map(([name, bytes]) => ({ name: name!, bytes: bytes!, status: 400, code: 'invalid_request' }));

/** Chunked body framing (A6; RFC 9112 §7.1). */
const chunks: Refusal[] = [
  ['chunk size larger than 2^64', 'FFFFFFFFFFFFFFFFF\r\nabc\r\n0\r\n\r\n'],
  ['chunk size with "0x" prefix', '0x3\r\nabc\r\n0\r\n\r\n'],
  ['chunk size not hex', 'g\r\nabc\r\n0\r\n\r\n'],
  ['negative chunk size', '-3\r\nabc\r\n0\r\n\r\n'],
  ['space after the chunk size', '3 \r\nabc\r\n0\r\n\r\n'],
  ['chunk extension ending in bare LF', '3;ext\nabc\r\n0\r\n\r\n'],
  ['chunk size line ending in bare LF', '3\nabc\r\n0\r\n\r\n'],
  ['chunk data longer than its size', `3\r\nabcX\r\n0\r\n\r\n`],
  ['chunk data not followed by CRLF', `3\r\nabc${INNER_CHUNK}`],
  ['Content-Length in the trailer section', '3\r\nabc\r\n0\r\nContent-Length: 50\r\n\r\n'],
].map(([name, body]) => ({ name: name!, bytes: `POST / HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\n\r\n${body}`, status: 400, code: 'invalid_request' }));

/** Control characters and bad tokens in the request line and fields (RFC 9110 §5.5, RFC 9112 §3). */
const characters: Refusal[] = [
  ['NUL in a field value', `GET / HTTP/1.1\r\n${HOST}X-A: a\0b\r\n\r\n`],
  ['SOH in a field value', `GET / HTTP/1.1\r\n${HOST}X-A: a\x01b\r\n\r\n`],
  ['DEL in a field value', `GET / HTTP/1.1\r\n${HOST}X-A: a\x7fb\r\n\r\n`],
  ['ESC in a field value', `GET / HTTP/1.1\r\n${HOST}X-A: a\x1bb\r\n\r\n`],
  ['NUL in a field name', `GET / HTTP/1.1\r\n${HOST}X-\0A: 1\r\n\r\n`],
  ['space in a field name', `GET / HTTP/1.1\r\n${HOST}X A: 1\r\n\r\n`],
  ['empty field name', `GET / HTTP/1.1\r\n${HOST}: 1\r\n\r\n`],
  ['field line without a colon', `GET / HTTP/1.1\r\n${HOST}X-A\r\n\r\n`],
  ['space inside the request target', `GET /a b HTTP/1.1\r\n${HOST}\r\n`],
  ['control character in the request target', `GET /a\x01 HTTP/1.1\r\n${HOST}\r\n`],
  ['NUL in the request target', `GET /a\0 HTTP/1.1\r\n${HOST}\r\n`],
  ['lower-case method', `get / HTTP/1.1\r\n${HOST}\r\n`],
  ['unknown method', `SMUGGLE / HTTP/1.1\r\n${HOST}\r\n`],
  ['lower-case protocol name', `GET / http/1.1\r\n${HOST}\r\n`],
  ['HTTP/2.0 in an HTTP/1 request line', `GET / HTTP/2.0\r\n${HOST}\r\n`],
  ['HTTP/0.9 style request line', `GET /\r\n\r\n`],
].map(([name, bytes]) => ({ name: name!, bytes: bytes!, status: 400, code: 'invalid_request' }));

/** The Host field (RFC 9112 §3.2: a request with none, or more than one, gets 400). */
const host: Refusal[] = [
  { name: 'two Host headers', bytes: `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n`, status: 400, code: 'invalid_request' },
  { name: 'two Host headers, same value', bytes: `GET / HTTP/1.1\r\n${HOST}${HOST}\r\n`, status: 400, code: 'invalid_request' },
  { name: 'no Host in HTTP/1.1', bytes: `GET / HTTP/1.1\r\nX-A: 1\r\n\r\n`, status: 400, code: 'invalid_request' },
];

const bigValue = 'a'.repeat(17 * 1024);
const headerLines = (n: number) => Array.from({ length: n }, (_, i) => `X-H${i}: ${i}\r\n`).join('');
/** Size and count limits (B1): 16 KiB of head, fewer than 100 field lines (CVE-2026-58044). */
const limits: Refusal[] = [
  { name: '17 KiB field value', bytes: `GET / HTTP/1.1\r\n${HOST}X-Big: ${bigValue}\r\n\r\n`, status: 431, code: 'headers_too_large' },
  { name: '17 KiB request target', bytes: `GET /${bigValue} HTTP/1.1\r\n${HOST}\r\n`, status: 431, code: 'headers_too_large' },
  { name: '17 KiB spread over many small fields', bytes: `GET / HTTP/1.1\r\n${HOST}${Array.from({ length: 90 }, (_, i) => `X-${i}: ${'b'.repeat(200)}\r\n`).join('')}\r\n`, status: 431, code: 'headers_too_large' },
  // Host plus 99 more: 100 field lines, the first count refused.
  { name: '100 field lines', bytes: `GET / HTTP/1.1\r\n${HOST}${headerLines(99)}\r\n`, status: 431, code: 'headers_too_large' },
  { name: '150 field lines', bytes: `GET / HTTP/1.1\r\n${HOST}${headerLines(149)}\r\n`, status: 431, code: 'headers_too_large' },
  { name: '1,100 field lines hiding a Content-Length', bytes: `POST / HTTP/1.1\r\n${HOST}${Array.from({ length: 1100 }, (_, i) => `a${i}:\r\n`).join('')}Content-Length: ${INNER.length}\r\n\r\n${INNER}`, status: 431, code: 'headers_too_large' },
];

/**
 * Methods a tunnel port does not carry (RFC 9110 §9.3.6). Upgrades (B7) are left to the WebSocket
 * relay's own suite: what they should do depends on whether the relay is on.
 */
const methods: Refusal[] = [
  { name: 'CONNECT', bytes: `CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n`, status: 405, code: 'method_not_supported' },
  { name: 'CONNECT with a request as its payload', bytes: `CONNECT 127.0.0.1:80 HTTP/1.1\r\n${HOST}\r\n${INNER}`, status: 405, code: 'method_not_supported' },
  // About the server, not a resource; no hop to an app can carry the asterisk-form.
  { name: 'OPTIONS *', bytes: `OPTIONS * HTTP/1.1\r\n${HOST}\r\n\r\n`, status: 400, code: 'invalid_request' },
];

describe('request smuggling and framing at a tunnel port', () => {
  // A fresh app, server and client per test: a request one case let through must not be
  // counted against the next case, nor a leaked exchange keep the next tunnel busy.
  let app: EchoApp;
  let server: Awaited<ReturnType<typeof startServer>>;
  let client: Awaited<ReturnType<typeof startClient>>;
  let port: number;
  let logger: ReturnType<typeof memoryLogger>;
  const dispatcher = new Agent({ keepAliveTimeout: 1_000 });
  let sentinel = 0;

  beforeEach(async () => {
    logger = memoryLogger();
    app = await startEchoApp();
    server = await startServer({ logger });
    client = await startClient(server, { port: app.port });
    port = client.info.port;
  });

  afterEach(async () => {
    await client?.close();
    await server?.close();
    await app?.close();
  });

  afterAll(async () => {
    await dispatcher.close();
  });

  /**
   * A normal request through the tunnel. Anything the attack had put on its way to the local app
   * is ahead of it, so once it is answered the app's hit list and the request log are final.
   */
  async function barrier(): Promise<string> {
    const path = `/sentinel-${++sentinel}`;
    const res = await fetchBuffer(`http://127.0.0.1:${port}${path}`, { dispatcher });
    expect(res.status).toBe(200);
    return path;
  }

  /** Requests that reached a tunnel (logged as `request` when they end), other than `except`. */
  function tunnelled(except: string): unknown[] {
    return logger.lines.filter((l) => l.msg === 'request' && l.path !== except);
  }

  function parse(text: string, methods?: string[]) {
    return parseResponses(Buffer.from(text, 'latin1'), methods);
  }

  async function expectRefused(c: Refusal): Promise<void> {
    const result = await rawExchange(port, Buffer.from(c.bytes + SMUGGLED, 'latin1'));
    const stream = parse(result.text);
    // Exactly one answer, well framed, carrying the code; nothing after it.
    expect(stream.error).toBeUndefined();
    expect(stream.responses.map((r) => r.status)).toEqual([c.status]);
    const [answer] = stream.responses as [ParsedResponse];
    expect(answer.complete).toBe(true);
    expect(header(answer, 'x-devtunnel-error')).toBe(c.code);
    expect(header(answer, 'connection')?.toLowerCase()).toBe('close');
    expect(result.closedByServer).toBe(true);
    // Nothing reached the queue, the client or the local app: not the attack, not the request after it.
    const path = await barrier();
    expect(app.hits).toEqual([{ method: 'GET', url: path }]);
    expect(tunnelled(path)).toEqual([]);
    // Nothing is left in flight or queued on the tunnel (a request queued behind the refusal).
    await waitFor(() => server.tunnels().every((t) => t.inFlight === 0 && t.queued === 0), 1_000, 'the tunnel to have nothing in flight');
    // Every refusal is logged, with its code.
    expect(logger.lines.some((l) => l.msg === 'request.rejected' && l.code === c.code)).toBe(true);
  }

  describe.each([
    ['CL.TE and TE.CL', clTe],
    ['Content-Length', contentLength],
    ['Transfer-Encoding', transferEncoding],
    ['line ends and folding', lineEnds],
    ['chunked framing', chunks],
    ['characters and tokens', characters],
    ['Host', host],
    ['size and count limits', limits],
    ['methods', methods],
  ] as const)('%s', (_group, cases) => {
    test.each(cases.map((c) => [c.name, c] as const))('%s → refused, connection closed, nothing forwarded', async (_name, c) => {
      await expectRefused(c);
    });
  });

  test('the 17 KiB header is logged by its outcome, never by its content', async () => {
    const before = logger.lines.length;
    await rawExchange(port, Buffer.from(`GET / HTTP/1.1\r\n${HOST}X-Big: ${bigValue}\r\n\r\n`, 'latin1'));
    await barrier();
    expect(logger.lines.slice(before).filter((l) => l.msg === 'request.rejected')).toMatchObject([{ status: 431 }]);
    expect(logger.text()).not.toContain('a'.repeat(64));
  });

  describe('requests that are fine', () => {
    /** Sends `bytes` (the last request says Connection: close) and checks every answer strictly. */
    async function exchange(bytes: string, methods: string[]) {
      const result = await rawExchange(port, Buffer.from(bytes, 'latin1'));
      const stream = parse(result.text, methods);
      expect(stream.error).toBeUndefined();
      expect(stream.rest.length).toBe(0);
      expect(result.closedByServer).toBe(true);
      return stream.responses.map((r) => ({ status: r.status, complete: r.complete, echo: r.status === 200 && r.body.length ? (JSON.parse(r.body.toString('utf8')) as EchoBody) : undefined }));
    }

    test('two pipelined GETs: both answered in order, both reach the app', async () => {
      const answers = await exchange(`GET /p1 HTTP/1.1\r\n${HOST}\r\nGET /p2 HTTP/1.1\r\n${HOST}Connection: close\r\n\r\n`, ['GET', 'GET']);
      expect(answers.map((a) => [a.status, a.echo?.url])).toEqual([
        [200, '/p1'],
        [200, '/p2'],
      ]);
      expect(app.hits.map((h) => h.url).sort()).toEqual(['/p1', '/p2']);
    });

    test('pipelined POSTs with Content-Length and chunked bodies keep their bodies apart', async () => {
      const bytes =
        `POST /post-cl HTTP/1.1\r\n${HOST}Content-Length: ${INNER.length}\r\n\r\n${INNER}` +
        `POST /post-chunked HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\n\r\n${INNER_CHUNK}` +
        `POST /post-trailer HTTP/1.1\r\n${HOST}Transfer-Encoding: CHUNKED\r\n\r\n5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n` +
        `GET /get-with-body HTTP/1.1\r\n${HOST}Content-Length: 5\r\n\r\nhello` +
        `GET /last HTTP/1.1\r\n${HOST}Connection: close\r\n\r\n`;
      const answers = await exchange(bytes, ['POST', 'POST', 'POST', 'GET', 'GET']);
      expect(answers.map((a) => [a.status, a.echo?.url, a.echo?.bodyBytes, a.echo?.sha256])).toEqual([
        [200, '/post-cl', INNER.length, sha256(INNER)],
        [200, '/post-chunked', INNER.length, sha256(INNER)],
        [200, '/post-trailer', 5, sha256('hello')],
        [200, '/get-with-body', 5, sha256('hello')],
        [200, '/last', 0, sha256('')],
      ]);
      // The requests carried in the bodies stayed bodies.
      expect(app.hits.map((h) => h.url).sort()).toEqual(['/get-with-body', '/last', '/post-chunked', '/post-cl', '/post-trailer']);
    });

    test('a browser that drops a pipelined connection leaves nothing in flight', async () => {
      const socket = connect(port, '127.0.0.1');
      await once(socket, 'connect');
      socket.on('error', () => {});
      // The second answer queues behind the first, which never comes.
      socket.write(`GET /hang HTTP/1.1\r\n${HOST}\r\nGET /second HTTP/1.1\r\n${HOST}\r\n`);
      await waitFor(() => app.hits.length === 2, 2_000, 'both requests to reach the app');
      socket.destroy();
      await waitFor(() => server.tunnels().every((t) => t.inFlight === 0 && t.queued === 0), 2_000, 'the tunnel to have nothing in flight');
    });

    test('99 field lines (the most allowed) go through', async () => {
      const answers = await exchange(`GET /many HTTP/1.1\r\n${HOST}Connection: close\r\n${headerLines(97)}\r\n`, ['GET']);
      expect(answers.map((a) => [a.status, a.echo?.url, a.echo?.headers['x-h96']])).toEqual([[200, '/many', '96']]);
    });

    test('absolute-form target: the app gets origin-form, never the foreign URL', async () => {
      const answers = await exchange(
        `GET http://evil.example/p?q=1 HTTP/1.1\r\n${HOST}\r\nGET https://evil.example:8443/other HTTP/1.1\r\n${HOST}Connection: close\r\n\r\n`,
        ['GET', 'GET'],
      );
      expect(answers.map((a) => [a.status, a.echo?.url])).toEqual([
        [200, '/p?q=1'],
        [200, '/other'],
      ]);
      expect(app.hits.map((h) => h.url).sort()).toEqual(['/other', '/p?q=1']);
    });

    test('a target that is neither origin-form nor a valid absolute URL is refused and not forwarded', async () => {
      await expectRefused({ name: 'broken absolute-form', bytes: `GET http://[evil/x HTTP/1.1\r\n${HOST}\r\n`, status: 400, code: 'invalid_request' });
    });

    test('asterisk-form on GET is refused and not forwarded (RFC 9112 §3.2.4: OPTIONS only)', async () => {
      await expectRefused({ name: 'GET *', bytes: `GET * HTTP/1.1\r\n${HOST}\r\n`, status: 400, code: 'invalid_request' });
    });
  });
});
