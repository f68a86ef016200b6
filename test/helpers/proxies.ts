import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { createSecureContext, TLSSocket } from 'node:tls';
import { closeServer, listen } from './net';

/**
 * Stand-ins for what stands between a laptop and the tunnel server in a company: a forward proxy
 * (CONNECT), possibly inspecting TLS, and a reverse proxy in front of the server that buffers.
 */

export interface ConnectProxyOptions {
  /**
   * The proxy's own name table: `CONNECT name:port` goes to 127.0.0.1 and the port given here, as
   * a company proxy resolves names the laptop cannot (the tests' names end in `.test`, RFC 6761).
   * Names not in it are refused with 502, as a proxy does for a name it cannot resolve.
   */
  hosts: Record<string, number>;
  /** Inspect TLS: answer the client's handshake with this certificate, pass the plaintext on. */
  tls?: { cert: Buffer; key: Buffer };
}

/** A CONNECT proxy; `targets` records what was asked for. */
export async function startConnectProxy(options: ConnectProxyOptions) {
  const targets: string[] = [];
  const sockets = new Set<Socket>();
  const server = createHttpServer((_req, res) => res.writeHead(405).end());
  const context = options.tls ? createSecureContext(options.tls) : undefined;
  server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    targets.push(req.url!);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const port = options.hosts[req.url!.replace(/:\d+$/, '')];
    if (port === undefined) return void socket.end('HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n');
    const upstream = connect(port, '127.0.0.1', () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      const client = context ? new TLSSocket(socket, { isServer: true, secureContext: context }) : socket;
      client.on('error', () => upstream.destroy());
      if (head.length) client.unshift(head);
      client.pipe(upstream).pipe(client);
    });
    upstream.on('error', () => socket.destroy());
    socket.once('close', () => upstream.destroy());
  });
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}`,
    targets,
    close: async () => {
      for (const s of sockets) s.destroy();
      await closeServer(server);
    },
  };
}

/**
 * A reverse proxy in front of the server that holds answers until they end and sends them whole
 * (nginx `proxy_buffering on`, strictly), and/or reads uploads whole before it connects to the
 * server to pass them on (`proxy_request_buffering on`).
 */
export async function startBufferingFront(targetPort: number, options: { responses?: boolean; requests?: boolean }) {
  const front = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    const pass = (body?: Buffer) => {
      const headers = { ...req.headers };
      if (body) {
        delete headers['transfer-encoding'];
        headers['content-length'] = String(body.length);
      }
      const upstream = httpRequest({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers }, (r) => {
        if (!options.responses) {
          res.writeHead(r.statusCode!, r.headers);
          return void r.pipe(res);
        }
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => {
          const whole = Buffer.concat(chunks);
          const { 'transfer-encoding': _te, ...answer } = r.headers;
          res.writeHead(r.statusCode!, { ...answer, 'content-length': whole.length }).end(whole);
        });
      });
      upstream.on('error', () => res.destroy());
      res.on('close', () => upstream.destroy());
      if (body) upstream.end(body);
      else req.pipe(upstream);
    };
    if (!options.requests) return pass();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => pass(Buffer.concat(chunks)));
  });
  const port = await listen(front);
  return { url: `http://127.0.0.1:${port}`, close: () => closeServer(front) };
}
