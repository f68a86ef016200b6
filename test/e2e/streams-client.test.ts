import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { createTunnelClient, type TunnelClient } from '@devtunnel/core';
import type { EchoBody } from '../helpers/echo-app';
import { closeServer, listen } from '../helpers/net';
import { fetchBuffer, startServer, stateDir, TOKEN, useEchoSuite, waitFor } from '../helpers/tunnel';

/**
 * The client's streams (feature `stream`) through a reverse proxy in front of the tunnel server,
 * the way a cluster's ingress stands there: what travels on which channel, a proxy that buffers
 * (the client must notice and fall back to long polls, with a warning), and a stream cut mid-way.
 */
describe('the client on streams', () => {
  const suite = useEchoSuite();
  const { dispatcher } = suite;

  interface FrontOptions {
    /** Hold a response until it ends, then send it whole (nginx `proxy_buffering on`, strictly). */
    bufferResponses?: boolean;
    /** Read a request body whole before passing it on (nginx `proxy_request_buffering on`). */
    bufferRequests?: boolean;
    /** Break the first upstream when its first answer passes (after its opening heartbeat). */
    breakUpstream?: boolean;
    /** Break the first batch upload (`POST …/responses`) as its answers pass. */
    breakBatch?: boolean;
  }

  /** A reverse proxy in front of the server that records what passes through it. */
  async function startFront(serverPort: number, options: FrontOptions = {}) {
    const seen: Array<{ method: string; path: string; status: number }> = [];
    const streams = new Set<Socket>();
    const front = createServer((req: IncomingMessage, res: ServerResponse) => {
      const path = req.url!.replace(/[0-9a-f]{32}/g, ':id');
      if (path.endsWith('/stream')) {
        streams.add(req.socket);
        req.socket.once('close', () => streams.delete(req.socket));
      }
      const upstream = httpRequest({ host: '127.0.0.1', port: serverPort, method: req.method, path: req.url, headers: req.headers }, (r) => {
        seen.push({ method: req.method!, path, status: r.statusCode! });
        if (!options.bufferResponses) {
          res.writeHead(r.statusCode!, r.headers);
          r.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => {
          const body = Buffer.concat(chunks);
          const { 'transfer-encoding': _te, ...headers } = r.headers;
          res.writeHead(r.statusCode!, { ...headers, 'content-length': body.length }).end(body);
        });
      });
      upstream.on('error', () => res.destroy());
      res.on('close', () => upstream.destroy());
      if (options.breakUpstream && req.method === 'POST' && path.endsWith('/stream')) {
        options.breakUpstream = false;
        req.on('data', (chunk: Buffer) => {
          if (chunk.length <= 4) return void upstream.write(chunk); // a heartbeat
          // An answer: it never arrives, and the connection breaks both ways.
          req.socket.destroy();
          upstream.destroy();
        });
        return;
      }
      if (options.breakBatch && req.method === 'POST' && path.endsWith('/responses')) {
        options.breakBatch = false;
        req.once('data', () => {
          req.socket.destroy();
          upstream.destroy();
        });
        return;
      }
      if (!options.bufferRequests) return void req.pipe(upstream);
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        upstream.removeHeader('transfer-encoding');
        upstream.setHeader('content-length', body.length);
        upstream.end(body);
      });
    });
    const port = await listen(front);
    suite.defer(() => closeServer(front));
    return {
      url: `http://127.0.0.1:${port}`,
      seen,
      /** Answers that carried requests: poll answers with a frame, uploads of answers. */
      perRequest: () => seen.filter((s) => (s.path.endsWith('/poll') && s.status === 200) || s.path.endsWith('/responses') || s.path.includes('/requests/')).length,
      cutStreams: () => streams.forEach((s) => s.destroy()),
    };
  }

  async function clientThrough(url: string, options: { polls?: number; maxInFlight?: number; transport?: 'auto' | 'poll' } = {}) {
    const warnings: string[] = [];
    const log = { debug() {}, info() {}, warn: (m: string) => void warnings.push(m), error() {} };
    const client: TunnelClient = createTunnelClient({ server: url, token: TOKEN, host: '127.0.0.1', port: suite.app.port, stateDir: stateDir(), proxy: false, logger: log, ...options });
    suite.defer(() => client.close());
    const info = await client.start();
    return { client, base: `http://127.0.0.1:${info.port}`, warnings };
  }

  async function serverWithFront(options: FrontOptions = {}) {
    const server = await startServer();
    suite.defer(() => server.close());
    const front = await startFront(server.port, options);
    const tunnel = () => server.tunnels()[0]!;
    return { server, front, tunnel };
  }

  const get = async (base: string, path: string) => {
    const res = await fetchBuffer(`${base}${path}`, { dispatcher });
    if (res.status !== 200) throw new Error(`${path}: ${res.text}`);
    return res.json<EchoBody>().url;
  };

  test('once both streams are up, small GETs need no poll answer and no upload each', async () => {
    const { front, tunnel } = await serverWithFront();
    const { base, warnings } = await clientThrough(front.url);
    await waitFor(() => tunnel().downstream && tunnel().upstreams === 1, 5_000, 'both streams');
    const before = front.perRequest();
    const paths = Array.from({ length: 40 }, (_, i) => `/small-${i}`);
    expect(await Promise.all(paths.map((p) => get(base, p)))).toEqual(paths);
    expect(front.perRequest()).toBe(before);
    // What streams do not carry still works: a body up, a large streamed answer down.
    const posted = await fetchBuffer(`${base}/echo`, { method: 'POST', body: 'to the app', dispatcher });
    expect(posted.json<EchoBody>().bodyBytes).toBe(10);
    const big = await fetchBuffer(`${base}/bytes?n=${1024 * 1024}`, { dispatcher });
    expect(big.body.length).toBe(1024 * 1024);
    expect(warnings).toEqual([]);
  });

  test('a proxy that buffers answers: the client warns once and works on long polls', async () => {
    const { front, tunnel } = await serverWithFront({ bufferResponses: true });
    const { base, warnings } = await clientThrough(front.url);
    // Until the downstream has proved itself (it cannot here), requests go on polls already.
    expect(await get(base, '/while-probing')).toBe('/while-probing');
    await waitFor(() => warnings.length === 1, 8_000, 'the warning');
    expect(warnings[0]).toMatch(/holds streamed answers back .*long polls/);
    expect(tunnel().downstream).toBe(false);
    const paths = ['/p1', '/p2', '/p3'];
    expect(await Promise.all(paths.map((p) => get(base, p)))).toEqual(paths);
  });

  test('a proxy that buffers uploads: the downstream is used, answers go as uploads, with a warning', async () => {
    const { front, tunnel } = await serverWithFront({ bufferRequests: true });
    const { base, warnings } = await clientThrough(front.url);
    await waitFor(() => warnings.length === 1, 8_000, 'the warning');
    expect(warnings[0]).toMatch(/holds streamed uploads back/);
    expect(tunnel().downstream).toBe(true);
    const before = front.seen.filter((s) => s.path.endsWith('/responses')).length;
    const paths = ['/u1', '/u2', '/u3'];
    expect(await Promise.all(paths.map((p) => get(base, p)))).toEqual(paths);
    // The front records an upload when the server answers it: an upload that doubles as a poll is
    // answered only with the next work or after the poll timeout, so its record may come after the
    // browsers had their answers. Same check, waited for (bounded).
    await waitFor(() => front.seen.filter((s) => s.path.endsWith('/responses')).length > before, 5_000, 'an answer by batch upload');
  });

  test('streams cut mid-way: requests keep working on polls, and the streams come back', async () => {
    const { front, tunnel } = await serverWithFront();
    const { base, warnings } = await clientThrough(front.url);
    await waitFor(() => tunnel().downstream && tunnel().upstreams === 1, 5_000, 'both streams');
    const downstreams = () => front.seen.filter((s) => s.method === 'GET' && s.path.endsWith('/stream')).length;
    expect(downstreams()).toBe(1);
    front.cutStreams();
    // Right after the cut: the server may still write it to the broken downstream, and then sends
    // it again once the client is back (a safe request); or a poll or the next downstream takes it.
    expect(await get(base, '/during-the-cut')).toBe('/during-the-cut');
    await waitFor(() => downstreams() >= 2 && tunnel().downstream && tunnel().upstreams === 1, 8_000, 'both streams back');
    expect(tunnel().state).toBe('connected');
    expect(await get(base, '/after-the-cut')).toBe('/after-the-cut');
    expect(warnings).toEqual([]);
  });

  test('an upstream that breaks as an answer passes: the answer is sent again, not lost', async () => {
    const { front, tunnel } = await serverWithFront({ breakUpstream: true });
    const { base, warnings } = await clientThrough(front.url);
    await waitFor(() => tunnel().downstream && tunnel().upstreams === 1, 5_000, 'both streams');
    // Without the resend this would wait for the server's deadline and get 504 tunnel_timeout.
    const res = await fetchBuffer(`${base}/answered-once`, { dispatcher });
    expect(res.status).toBe(200);
    expect(res.json<EchoBody>().url).toBe('/answered-once');
    await waitFor(() => front.seen.some((s) => s.path.endsWith('/responses')), 2_000, 'the answer sent again by upload');
    await waitFor(() => tunnel().upstreams === 1, 8_000, 'a new upstream');
    expect(await get(base, '/after')).toBe('/after');
    expect(warnings).toEqual([]);
  });

  test('on long polls, a batch upload that breaks as its answers pass is sent again, not lost', async () => {
    const faults: FrontOptions = { breakBatch: true };
    const { front } = await serverWithFront(faults);
    const { base, warnings } = await clientThrough(front.url, { transport: 'poll' });
    // Without the second upload this would wait for the server's deadline and get 504 tunnel_timeout.
    const res = await fetchBuffer(`${base}/answered-twice`, { dispatcher });
    expect(res.status).toBe(200);
    expect(res.json<EchoBody>().url).toBe('/answered-twice');
    expect(faults.breakBatch).toBe(false); // the first upload was broken
    await waitFor(() => front.seen.some((s) => s.path.endsWith('/responses') && s.status === 204), 2_000, 'the second upload answered');
    expect(await get(base, '/after')).toBe('/after');
    expect(warnings).toEqual([]);
  });

  test('maxInFlight holds on a downstream: the rest waits on the server', async () => {
    const { front, tunnel } = await serverWithFront();
    const { base } = await clientThrough(front.url, { polls: 1, maxInFlight: 2 });
    await waitFor(() => tunnel().downstream, 5_000, 'the downstream');
    const slow = () => suite.app.hits.filter((h) => h.url.startsWith('/slow')).length;
    const pages = [1, 2, 3].map((i) => fetchBuffer(`${base}/slow?delay=800&n=${i}`, { dispatcher }));
    await waitFor(() => slow() === 2 && tunnel().queued === 1, 3_000, 'two at the app, one queued');
    expect((await Promise.all(pages)).map((r) => r.status)).toEqual([200, 200, 200]);
    expect(slow()).toBe(3);
  });
});
