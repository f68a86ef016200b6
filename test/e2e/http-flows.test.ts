import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import type { RequestEvent } from '@devtunnel/core';
import { patternBytes, sha256, startEchoApp, type EchoApp, type EchoBody } from '../helpers/echo-app';
import { browser, fetchBuffer, patientTimings, type startClient, type startServer, tunnelOn } from '../helpers/tunnel';

/**
 * The original project's scenarios, through a real tunnel server, a real client and a real local
 * app, all on 127.0.0.1.
 */
describe.each([
  ['on streams', 'auto'],
  ['on long polls', 'poll'],
] as const)('HTTP through the tunnel, %s', (_name, transport) => {
  let app: EchoApp;
  let server: Awaited<ReturnType<typeof startServer>>;
  let client: Awaited<ReturnType<typeof startClient>>;
  let base: string;
  const dispatcher = browser();

  beforeAll(async () => {
    app = await startEchoApp();
    ({ server, client, base } = await tunnelOn(app.port, transport, patientTimings));
  });

  afterAll(async () => {
    await client?.close();
    await server?.close();
    await app?.close();
    await dispatcher.close();
  });

  test('echoes method, URL, headers and body', async () => {
    const res = await fetchBuffer(`${base}/echo/path?a=1&b=%20x`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', 'x-custom': 'kept', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', cookie: 'a=b' },
      body: 'hello tunnel',
      dispatcher,
    });
    expect(res.status).toBe(200);
    const echo = res.json<EchoBody>();
    expect(echo.method).toBe('POST');
    expect(echo.url).toBe('/echo/path?a=1&b=%20x');
    expect(echo.headers['x-custom']).toBe('kept');
    expect(echo.headers.traceparent).toBe('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    expect(echo.headers.cookie).toBe('a=b');
    expect(echo.bodyBytes).toBe(12);
    expect(echo.sha256).toBe(sha256('hello tunnel'));
    // Original Host kept by default; forwarding and request-id headers added.
    expect(echo.headers.host).toBe(`127.0.0.1:${client.info.port}`);
    expect(echo.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(echo.headers['x-forwarded-proto']).toBe('http');
    expect(echo.headers['x-forwarded-host']).toBe(`127.0.0.1:${client.info.port}`);
    expect(echo.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers['x-request-id']).toBe(echo.headers['x-request-id']);
  });

  test('keeps a request id and forwarding headers set by the proxy in front', async () => {
    const res = await fetchBuffer(`${base}/`, {
      headers: { 'x-request-id': 'abc-123', 'x-forwarded-for': '10.1.2.3', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'test.example.com' },
      dispatcher,
    });
    const echo = res.json<EchoBody>();
    expect(echo.headers['x-request-id']).toBe('abc-123');
    expect(echo.headers['x-forwarded-for']).toBe('10.1.2.3, 127.0.0.1');
    expect(echo.headers['x-forwarded-proto']).toBe('https');
    expect(echo.headers['x-forwarded-host']).toBe('test.example.com');
  });

  test('a browser that names the forwarding headers in Connection cannot hide them from the local app', async () => {
    const res = await new Promise<{ status: number; requestId: string | undefined; body: string }>((resolve, reject) => {
      const req = httpRequest({
        host: '127.0.0.1',
        port: client.info.port,
        path: '/hide',
        headers: { connection: 'keep-alive, X-Forwarded-Proto, X-Forwarded-Host, X-Request-Id', 'x-forwarded-proto': 'gopher', 'x-forwarded-host': 'evil.example', 'x-request-id': 'hidden-id' },
      });
      req.on('response', (r) => {
        let body = '';
        r.setEncoding('utf8');
        r.on('data', (c: string) => (body += c));
        r.on('end', () => resolve({ status: r.statusCode!, requestId: r.headers['x-request-id'] as string | undefined, body }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(res.status).toBe(200);
    const echo = JSON.parse(res.body) as EchoBody;
    // The browser's copies are hop-by-hop (RFC 9110 §7.6.1) and dropped; the server's own are added.
    expect(echo.headers['x-forwarded-proto']).toBe('http');
    expect(echo.headers['x-forwarded-host']).toBe(`127.0.0.1:${client.info.port}`);
    expect(echo.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.requestId).toBe(echo.headers['x-request-id']);
    expect(echo.headers['x-forwarded-for']).toBe('127.0.0.1');
  });

  test('?status=N, ?delay=N and ?redirect=URL', async () => {
    expect((await fetchBuffer(`${base}/x?status=418`, { dispatcher })).status).toBe(418);
    expect((await fetchBuffer(`${base}/x?status=503`, { dispatcher })).status).toBe(503);
    const delayed = await fetchBuffer(`${base}/x?delay=200`, { dispatcher });
    expect(delayed.status).toBe(200);
    const redirect = await fetchBuffer(`${base}/x?redirect=/elsewhere`, { dispatcher });
    expect(redirect.status).toBe(302);
    expect(redirect.headers.location).toBe('/elsewhere');
  });

  test('a chunked response streams through with the server computing the framing', async () => {
    const res = await fetchBuffer(`${base}/chunked`, { dispatcher });
    expect(res.status).toBe(200);
    expect(res.text).toBe('part 0\npart 1\npart 2\npart 3\npart 4\nend\n');
    expect(res.headers['transfer-encoding']).toBe('chunked');
    expect(res.headers['content-length']).toBeUndefined();
  });

  test('an event stream: the headers reach the browser before the first event, each event at once, the end as an end', async () => {
    const tag = `flow-${transport}`;
    // The browser has the status before the app wrote a byte of body (EventSource's `open`).
    const res = await request(`${base}/events?tag=${tag}`, { dispatcher });
    expect([res.statusCode, res.headers['content-type']]).toEqual([200, 'text/event-stream']);
    const stream = await app.eventStream(tag);
    const reader = res.body[Symbol.asyncIterator]();
    for (const n of [1, 2, 3]) {
      // Each event arrives before the next is written: nothing waits for more bytes or the end.
      stream.write(`data: ${n}\n\n`);
      expect(Buffer.from((await reader.next()).value as Uint8Array).toString()).toBe(`data: ${n}\n\n`);
    }
    stream.end();
    expect((await reader.next()).done).toBe(true);
  });

  test('an event stream the browser closes: the app sees it closed, the client reports 499, not a failure', async () => {
    const tag = `closed-${transport}`;
    const path = '/events';
    const reported = new Promise<RequestEvent>((resolve) => {
      const onRequest = (e: RequestEvent) => {
        if (e.path !== path || e.status === 200) return;
        client.off('request', onRequest);
        resolve(e);
      };
      client.on('request', onRequest);
    });
    const res = await request(`${base}${path}?tag=${tag}`, { dispatcher });
    const stream = await app.eventStream(tag);
    stream.write('data: hello\n\n');
    const reader = res.body[Symbol.asyncIterator]();
    expect(Buffer.from((await reader.next()).value as Uint8Array).toString()).toBe('data: hello\n\n');
    res.body.destroy();
    await app.abortedRequest(`${path}?tag=${tag}`);
    expect(await reported).toMatchObject({ status: 499, error: expect.stringMatching(/^(cancelled|browser_gone)$/) });
  });

  test('a chunked upload (no Content-Length) arrives whole', async () => {
    const parts = [patternBytes(0, 1000), patternBytes(1000, 70_000), patternBytes(71_000, 5)];
    const res = await fetchBuffer(`${base}/upload`, { method: 'PUT', body: Readable.from(parts), dispatcher });
    const echo = res.json<EchoBody>();
    expect(echo.headers['transfer-encoding']).toBe('chunked');
    expect(echo.bodyBytes).toBe(71_005);
    expect(echo.sha256).toBe(sha256(Buffer.concat(parts)));
  });

  test('50 MB binary bodies each way keep their sha256', async () => {
    const size = 50 * 1024 * 1024;
    const down = await request(`${base}/bytes?n=${size}`, { dispatcher });
    const hash = createHash('sha256');
    let got = 0;
    for await (const chunk of down.body) {
      hash.update(chunk as Buffer);
      got += (chunk as Buffer).length;
    }
    expect(down.headers['content-length']).toBe(String(size));
    expect(got).toBe(size);
    expect(hash.digest('hex')).toBe(sha256(patternBytes(0, size)));

    async function* upload() {
      for (let sent = 0; sent < size; sent += 256 * 1024) yield patternBytes(sent, Math.min(256 * 1024, size - sent));
    }
    const up = await fetchBuffer(`${base}/upload`, { method: 'POST', headers: { 'content-length': String(size) }, body: Readable.from(upload()), dispatcher });
    const echo = up.json<EchoBody>();
    expect(echo.bodyBytes).toBe(size);
    expect(echo.sha256).toBe(sha256(patternBytes(0, size)));
  }, 60_000);

  test('HEAD gets the headers (with the GET Content-Length) and no body', async () => {
    const res = await fetchBuffer(`${base}/thing`, { method: 'HEAD', dispatcher });
    expect(res.status).toBe(200);
    expect(res.body.length).toBe(0);
    expect(Number(res.headers['content-length'])).toBeGreaterThan(0);
  });

  test('204 and 304 carry no body and keep the connection usable', async () => {
    const agent = new Agent({ connections: 1 });
    try {
      const r204 = await fetchBuffer(`${base}/x?status=204`, { dispatcher: agent });
      expect(r204.status).toBe(204);
      expect(r204.body.length).toBe(0);
      const r304 = await fetchBuffer(`${base}/x?status=304`, { dispatcher: agent, headers: { 'if-none-match': '"v1"' } });
      expect(r304.status).toBe(304);
      expect(r304.headers.etag).toBe('"v1"');
      // The same single connection still answers: no stray bytes were left on it.
      expect((await fetchBuffer(`${base}/after`, { dispatcher: agent })).status).toBe(200);
    } finally {
      await agent.close();
    }
  });

  test('Expect: 100-continue gets its 100 and the body goes through', async () => {
    const body = patternBytes(0, 10_000);
    const result = await new Promise<{ status: number; continued: boolean; text: string }>((resolve, reject) => {
      let continued = false;
      const req = httpRequest({ host: '127.0.0.1', port: client.info.port, method: 'POST', path: '/upload', headers: { expect: '100-continue', 'content-length': body.length } });
      req.on('continue', () => {
        continued = true;
        req.end(body);
      });
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, continued, text }));
      });
      req.on('error', reject);
    });
    expect(result.continued).toBe(true);
    expect(result.status).toBe(200);
    const echo = JSON.parse(result.text) as EchoBody;
    expect(echo.sha256).toBe(sha256(body));
    expect(echo.headers.expect).toBeUndefined();
  });

  test('200 concurrent requests through one tunnel all answer correctly', async () => {
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => fetchBuffer(`${base}/n/${i}?delay=${i % 7}`, { method: i % 2 ? 'POST' : 'GET', body: i % 2 ? `body-${i}` : undefined, dispatcher })),
    );
    results.forEach((res, i) => {
      expect(res.status).toBe(200);
      const echo = res.json<EchoBody>();
      expect(echo.url).toBe(`/n/${i}?delay=${i % 7}`);
      if (i % 2) expect(echo.sha256).toBe(sha256(`body-${i}`));
    });
  });

  test('hop-by-hop headers are stripped, and so are headers named in Connection', async () => {
    // node:http, not undici: undici refuses to send a Connection header naming other headers.
    const text = await new Promise<string>((resolve, reject) => {
      const req = httpRequest({
        host: '127.0.0.1',
        port: client.info.port,
        path: '/hop',
        headers: { connection: 'keep-alive, x-secret', 'x-secret': 'do-not-forward', 'proxy-authorization': 'Basic Zm9vOmJhcg==', te: 'trailers', 'keep-alive': 'timeout=5' },
      });
      req.on('response', (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve(body));
      });
      req.on('error', reject);
      req.end();
    });
    const echo = JSON.parse(text) as EchoBody;
    expect(echo.headers['x-secret']).toBeUndefined();
    expect(echo.headers['proxy-authorization']).toBeUndefined();
    expect(echo.headers.te).toBeUndefined();
    expect(echo.headers['keep-alive']).toBeUndefined();
  });

  test('the request events report each request', async () => {
    // The event comes once the response is fully delivered, which may be after the browser has it.
    const seen = new Promise<RequestEvent>((resolve) => {
      const onRequest = (e: RequestEvent) => {
        if (e.path !== '/reported') return;
        client.off('request', onRequest);
        resolve(e);
      };
      client.on('request', onRequest);
    });
    await fetchBuffer(`${base}/reported?token=secret`, { dispatcher });
    const event = await seen;
    expect(event).toMatchObject({ method: 'GET', path: '/reported', status: 200 });
  });
});
