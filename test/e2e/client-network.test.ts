import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { createTunnelClient, reportStatus, type TunnelInfo } from '@devtunnel/core';
import { CLIENT_BIN, runBin } from '../helpers/child';
import type { EchoBody } from '../helpers/echo-app';
import { closeServer, listen, refusedPort } from '../helpers/net';
import { useEchoSuite, fetchBuffer, startClient, startServer, stateDir, TOKEN } from '../helpers/tunnel';

const fixtures = join(__dirname, '..', 'fixtures');
const cert = readFileSync(join(fixtures, 'localhost-cert.pem'));
const key = readFileSync(join(fixtures, 'localhost-key.pem'));

/**
 * A minimal corporate proxy: answers CONNECT by opening the tunnel, and records every target. The
 * client must use it for the tunnel server and never for the local app.
 */
async function startConnectProxy() {
  const targets: string[] = [];
  const server = createHttpServer((_req, res) => res.writeHead(405).end());
  server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    targets.push(req.url!);
    const [host, port] = req.url!.split(':');
    const upstream = connect(Number(port), host!, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
  });
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}`, targets, close: () => closeServer(server) };
}

describe('the client on real networks', () => {
  const suite = useEchoSuite();
  const { dispatcher } = suite;

  async function serverAndClient(clientOptions: Partial<Parameters<typeof startClient>[1]> & { port: number }) {
    const server = await startServer();
    suite.defer(() => server.close());
    const client = await startClient(server, clientOptions);
    suite.defer(() => client.close());
    return { server, client, base: `http://127.0.0.1:${client.info.port}` };
  }

  test('an https local app with a self-signed certificate', async () => {
    const https = createHttpsServer({ cert, key }, (req: IncomingMessage, res: ServerResponse) => res.end(`secure ${req.url}`));
    https.listen(0, '127.0.0.1');
    await once(https, 'listening');
    suite.defer(() => new Promise((r) => https.close(r)).then(() => https.closeAllConnections()));
    const { base } = await serverAndClient({ port: (https.address() as AddressInfo).port, host: 'localhost', https: true });
    const res = await fetchBuffer(`${base}/tls`, { dispatcher });
    expect(res.text).toBe('secure /tls');
  });

  test('an app listening on the IPv6 loopback only', async () => {
    const v6 = createHttpServer((_req, res) => res.end('over ::1'));
    v6.listen(0, '::1');
    await once(v6, 'listening');
    suite.defer(() => closeServer(v6));
    const { base } = await serverAndClient({ port: (v6.address() as AddressInfo).port, host: '::1' });
    expect((await fetchBuffer(`${base}/`, { dispatcher })).text).toBe('over ::1');
  });

  test('the original Host is kept by default; rewriteHost sends the local address instead', async () => {
    const kept = await serverAndClient({ port: suite.app.port });
    expect((await fetchBuffer(`${kept.base}/`, { headers: { host: 'shop.test.example.com' }, dispatcher })).json<EchoBody>().headers.host).toBe('shop.test.example.com');
    const rewritten = await serverAndClient({ port: suite.app.port, rewriteHost: true });
    const echo = (await fetchBuffer(`${rewritten.base}/`, { headers: { host: 'shop.test.example.com' }, dispatcher })).json<EchoBody>();
    expect(echo.headers.host).toBe(`127.0.0.1:${suite.app.port}`);
    expect(echo.headers['x-forwarded-host']).toBe('shop.test.example.com');
  });

  test('allowedHosts: a host on the list stays, any other is rewritten so a host check never blocks', async () => {
    const { base } = await serverAndClient({ port: suite.app.port, allowedHosts: ['.test.example.com'] });
    const kept = (await fetchBuffer(`${base}/`, { headers: { host: 'shop.test.example.com' }, dispatcher })).json<EchoBody>();
    expect(kept.headers.host).toBe('shop.test.example.com');
    const other = (await fetchBuffer(`${base}/`, { headers: { host: 'evil.example.org' }, dispatcher })).json<EchoBody>();
    expect(other.headers.host).toBe(`127.0.0.1:${suite.app.port}`);
    expect(other.headers['x-forwarded-host']).toBe('evil.example.org');
  });

  test('retarget: a dev server that restarted elsewhere keeps its tunnel', async () => {
    const second = createHttpServer((_req, res) => res.end('the new server'));
    const secondPort = await listen(second);
    suite.defer(() => closeServer(second));
    const { client, base } = await serverAndClient({ port: suite.app.port });
    const before = client.info.port;
    client.retarget({ port: secondPort });
    expect((await fetchBuffer(`${base}/`, { dispatcher })).text).toBe('the new server');
    expect(client.info.port).toBe(before);
    expect(client.info.target).toBe(`http://127.0.0.1:${secondPort}`);
  });

  test('a corporate proxy carries the server connection, never the local one', async () => {
    const proxy = await startConnectProxy();
    suite.defer(() => proxy.close());
    const { server, base } = await serverAndClient({ port: suite.app.port, proxy: proxy.url });
    expect((await fetchBuffer(`${base}/via-proxy`, { dispatcher })).status).toBe(200);
    expect(proxy.targets.length).toBeGreaterThan(0);
    expect(new Set(proxy.targets)).toEqual(new Set([`127.0.0.1:${server.port}`]));
  });

  test('HTTPS_PROXY / HTTP_PROXY from the environment apply to the server connection only', async () => {
    const proxy = await startConnectProxy();
    suite.defer(() => proxy.close());
    const server = await startServer();
    suite.defer(() => server.close());
    const saved = { HTTP_PROXY: process.env.HTTP_PROXY, NO_PROXY: process.env.NO_PROXY, http_proxy: process.env.http_proxy, no_proxy: process.env.no_proxy };
    Object.assign(process.env, { HTTP_PROXY: proxy.url, http_proxy: proxy.url, NO_PROXY: '', no_proxy: '' });
    let client;
    try {
      // `proxy` unset: the environment decides (read when the client is created).
      client = createTunnelClient({ server: server.url, token: TOKEN, port: suite.app.port, host: '127.0.0.1', stateDir: stateDir() });
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    suite.defer(() => client.close());
    const info = await client.start();
    expect((await fetchBuffer(`http://127.0.0.1:${info.port}/env-proxy`, { dispatcher })).status).toBe(200);
    expect(new Set(proxy.targets)).toEqual(new Set([`127.0.0.1:${server.port}`]));
  });

  test('a TLS-inspecting front: NODE_EXTRA_CA_CERTS makes its certificate trusted', async () => {
    const server = await startServer();
    suite.defer(() => server.close());
    // A TLS terminator in front of the control API, like a corporate proxy or the ingress.
    const front = createTlsServer({ cert, key }, (tls) => {
      const upstream = connect(server.port, '127.0.0.1');
      tls.pipe(upstream).pipe(tls);
      upstream.on('error', () => tls.destroy());
      tls.on('error', () => upstream.destroy());
    });
    front.listen(0, '127.0.0.1');
    await once(front, 'listening');
    suite.defer(() => new Promise((r) => front.close(r)));
    const url = `https://localhost:${(front.address() as AddressInfo).port}`;
    const args = ['--server', url, '--port', String(suite.app.port), '--host', '127.0.0.1', '--state-dir', stateDir(), '--json'];

    const untrusted = runBin(CLIENT_BIN, args, { DEVTUNNEL_TOKEN: TOKEN });
    suite.defer(() => untrusted.stop('SIGKILL'));
    const refused = JSON.parse(await untrusted.waitForLine((l) => l.includes('"reconnecting"'))) as { error: string };
    expect(refused.error).toMatch(/certificate/i);

    const trusted = runBin(CLIENT_BIN, args, { DEVTUNNEL_TOKEN: TOKEN, NODE_EXTRA_CA_CERTS: join(fixtures, 'localhost-cert.pem') });
    suite.defer(() => trusted.stop('SIGKILL'));
    const registered = JSON.parse(await trusted.waitForLine((l) => l.includes('"registered"'))) as { port: number };
    expect((await fetchBuffer(`http://127.0.0.1:${registered.port}/through-tls`, { dispatcher })).status).toBe(200);
  });

  test('a front that garbles poll answers: TUNNEL_PROTOCOL_ERROR, retried, and the tunnel works once it stops', async () => {
    const server = await startServer();
    suite.defer(() => server.close());
    // A reverse proxy that answers polls with bytes that are no frame (whole or streamed) while
    // `garbling`, and passes everything else through.
    let garbling = true;
    let garbled = 0;
    const front = createHttpServer((req, res) => {
      if (garbling && req.method === 'GET' && req.url!.endsWith('/poll')) {
        garbled++;
        res.writeHead(200, { 'content-type': 'text/html' });
        if (garbled % 2) return res.end('<html>not a frame at all</html>');
        res.write('<html>streamed, ');
        return setTimeout(() => res.end('no length</html>'), 10);
      }
      const upstream = httpRequest({ host: '127.0.0.1', port: server.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode!, r.headers);
        r.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    });
    const frontPort = await listen(front);
    suite.defer(() => closeServer(front));
    const client = createTunnelClient({ server: `http://127.0.0.1:${frontPort}`, token: TOKEN, host: '127.0.0.1', port: suite.app.port, stateDir: stateDir(), proxy: false });
    suite.defer(() => client.close());
    const codes: string[] = [];
    const reported = new Promise<void>((resolve) =>
      client.on('reconnecting', (e) => {
        codes.push(e.error.code);
        if (codes.length === 2) resolve();
      }),
    );
    const info = await client.start();
    await reported;
    expect(codes).toEqual(['TUNNEL_PROTOCOL_ERROR', 'TUNNEL_PROTOCOL_ERROR']);
    garbling = false;
    const res = await fetchBuffer(`http://127.0.0.1:${info.port}/after-the-garble`, { dispatcher });
    expect(res.json<EchoBody>().url).toBe('/after-the-garble');
  });

  test('an outage the server outlives: "lost", then "back" on the same port without a new registration, and the next outage is reported again', async () => {
    const server = await startServer();
    suite.defer(() => server.close());
    // The laptop's network: a TCP relay to the server that can be cut (every connection reset,
    // new ones refused) and mended.
    let cut = false;
    const sockets = new Set<Socket>();
    const network = createTcpServer((inbound) => {
      if (cut) return void inbound.destroy();
      const outbound = connect(server.port, '127.0.0.1');
      const drop = () => {
        for (const s of [inbound, outbound]) s.destroy(), sockets.delete(s);
      };
      for (const s of [inbound, outbound]) s.on('error', drop).on('close', drop), sockets.add(s);
      inbound.pipe(outbound).pipe(inbound);
    });
    network.listen(0, '127.0.0.1');
    await once(network, 'listening');
    suite.defer(async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => network.close(r));
    });
    // The inspector's line is not what this test is about.
    const client = createTunnelClient({ server: `http://127.0.0.1:${(network.address() as AddressInfo).port}`, token: TOKEN, host: '127.0.0.1', port: suite.app.port, stateDir: stateDir(), proxy: false, inspect: false });
    suite.defer(() => client.close());
    // What a dev-server plugin prints.
    const lines: string[] = [];
    reportStatus(client, { info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m) });
    const info = await client.start();
    for (let outage = 0; outage < 2; outage++) {
      const lost = new Promise((resolve) => client.once('reconnecting', resolve));
      cut = true;
      for (const s of sockets) s.destroy();
      await lost;
      const back = new Promise<TunnelInfo & { reconnected: boolean }>((resolve) => client.once('registered', resolve));
      cut = false;
      expect(await back).toMatchObject({ port: info.port, id: info.id, reconnected: true });
      expect(client.status).toBe('connected');
    }
    expect(lines.map((l) => l.split(':')[0])).toEqual(['connected', 'lost', 'back', 'lost', 'back']);
    expect(lines[2]).toBe(`back: ${info.url} → ${info.target} (${info.name})`);
    const res = await fetchBuffer(`http://127.0.0.1:${info.port}/after-the-outages`, { dispatcher });
    expect(res.json<EchoBody>().url).toBe('/after-the-outages');
  });

  test('an unreachable tunnel server: start() keeps trying without blocking, close() ends it', async () => {
    const deadPort = await refusedPort();
    const client = createTunnelClient({ server: `http://127.0.0.1:${deadPort}`, token: TOKEN, port: suite.app.port, stateDir: stateDir(), proxy: false });
    const attempts: string[] = [];
    const twice = new Promise<void>((resolve) =>
      client.on('reconnecting', (e) => {
        attempts.push(e.error.code);
        if (attempts.length === 2) resolve();
      }),
    );
    const started = client.start();
    await twice;
    expect(attempts).toEqual(['TUNNEL_SERVER_UNREACHABLE', 'TUNNEL_SERVER_UNREACHABLE']);
    expect(client.status).toBe('connecting');
    await client.close();
    await expect(started).rejects.toMatchObject({ code: 'TUNNEL_CLOSED' });
  });
});
