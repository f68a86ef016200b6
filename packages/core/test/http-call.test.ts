import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { createCancel } from '../src/cancel';
import { call } from '../src/http-call';

/**
 * `call()` against a real HTTP server on 127.0.0.1: what arrives whole, what streams, how a slow
 * reader holds the connection back, and what aborts and failures look like.
 */
describe('call (undici dispatch with a bare handler)', () => {
  let server: Server;
  let origin: string;
  const agent = new Agent({ keepAliveTimeout: 1_000 });
  // Larger than every socket buffer between the two ends, so a reader that stops must stop the sender.
  const BIG = 256 * 1024 * 1024;
  const block = Buffer.alloc(64 * 1024, 'b');
  let bigSentAt = 0;

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/small') return res.writeHead(200, { 'content-length': 5, 'x-kind': 'small' }).end('hello');
      if (req.url === '/no-content') return res.writeHead(204).end();
      if (req.url === '/big') {
        bigSentAt = 0;
        res.writeHead(200, { 'content-length': BIG });
        let offset = 0;
        const pump = () => {
          while (offset < BIG) {
            offset += block.length;
            bigSentAt = offset;
            if (!res.write(block)) return void res.once('drain', pump);
          }
          res.end();
        };
        return pump();
      }
      if (req.url === '/echo') {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const body = Buffer.concat(chunks);
          res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length }).end(body);
        });
        return;
      }
      if (req.url === '/never') return; // holds the request open
      if (req.url === '/broken-chunk') {
        // A valid chunk, then a malformed chunk size: the body fails after 5 good bytes.
        res.socket!.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n');
        return;
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await agent.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const base = { headersTimeout: 5_000, bodyTimeout: 5_000, headers: {} as Record<string, string> };

  test('a body within bufferUpTo arrives whole, with the headers', async () => {
    const res = await call(agent, { ...base, origin, path: '/small', method: 'GET', bufferUpTo: 1024 });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-kind']).toBe('small');
    expect(res.bytes?.toString()).toBe('hello');
    expect(res.body).toBeUndefined();
  });

  test('HEAD and 204 resolve with empty bytes', async () => {
    const head = await call(agent, { ...base, origin, path: '/small', method: 'HEAD' });
    expect([head.statusCode, head.headers['content-length'], head.bytes?.length]).toEqual([200, '5', 0]);
    const none = await call(agent, { ...base, origin, path: '/no-content', method: 'GET' });
    expect([none.statusCode, none.bytes?.length]).toEqual([204, 0]);
  });

  test('a larger body streams with every byte, and a reader that stops holds the sender back', async () => {
    const res = await call(agent, { ...base, origin, path: '/big', method: 'GET', bufferUpTo: 1024 });
    expect(res.bytes).toBeUndefined();
    const body = res.body!;
    // Nobody reads for a while: the server must be stuck well before the end (backpressure).
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(bigSentAt).toBeLessThan(BIG / 4);
    let got = 0;
    for await (const chunk of body) got += (chunk as Buffer).length;
    expect(got).toBe(BIG);
  });

  test('a request body is sent, from bytes or a stream', async () => {
    const whole = await call(agent, { ...base, origin, path: '/echo', method: 'POST', body: Buffer.from('from bytes'), bufferUpTo: 1024 });
    expect(whole.bytes?.toString()).toBe('from bytes');
    async function* parts() {
      yield Buffer.from('from ');
      yield Buffer.from('a stream');
    }
    const streamed = await call(agent, { ...base, origin, path: '/echo', method: 'POST', body: parts(), bufferUpTo: 1024 });
    expect(streamed.bytes?.toString()).toBe('from a stream');
  });

  test('cancelling fails a waiting call, and destroys a body mid-stream', async () => {
    const waiting = createCancel();
    const pending = call(agent, { ...base, origin, path: '/never', method: 'GET', cancel: waiting });
    setTimeout(() => waiting.abort(new Error('browser left')), 50);
    await expect(pending).rejects.toThrow('browser left');

    const streaming = createCancel();
    const res = await call(agent, { ...base, origin, path: '/big', method: 'GET', cancel: streaming });
    const failed = new Promise((resolve) => res.body!.once('error', resolve));
    streaming.abort(new Error('cancelled'));
    await expect(failed).resolves.toMatchObject({ message: 'cancelled' });
  });

  test('bytes that arrived before the peer failed are delivered first, then the error', async () => {
    const res = await call(agent, { ...base, origin, path: '/broken-chunk', method: 'GET' });
    const body = res.body!;
    // Nobody reads yet: the failure arrives while the good bytes wait in the stream.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(body.destroyed).toBe(false);
    const got: Buffer[] = [];
    const failure = await new Promise<Error>((resolve) => {
      body.on('data', (c: Buffer) => got.push(c));
      body.once('error', resolve);
    });
    expect(Buffer.concat(got).toString()).toBe('hello');
    expect(failure.message).toMatch(/chunk size/i);
  });

  test('a refused connection rejects with its code; a silent server with the headers timeout', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await expect(call(agent, { ...base, origin: `http://127.0.0.1:${port}`, path: '/', method: 'GET' })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await expect(call(agent, { ...base, headersTimeout: 200, origin, path: '/never', method: 'GET' })).rejects.toMatchObject({ code: 'UND_ERR_HEADERS_TIMEOUT' });
  });
});
