import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { request as httpRequest, STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { pipeline } from 'node:stream';
import { Pool } from 'undici';
import { endToEndFlat, pairsFromRaw } from '@devtunnel/core/protocol';
import { endRaw, rawResponse, sendError } from '../error-response';
import { HttpError } from '../errors';

/**
 * The internal hop between replicas: a request that reached a replica which does not hold its
 * tunnel goes, once, to the replica that does, streamed both ways (browser requests, upgrades, and
 * the client's own polls, streams and uploads). Authenticated by an HMAC of the request line, the
 * port and the browser's address, keyed from the registration token every replica has, and
 * stamped with the time: nothing else in the cluster can send a request in through the hop, nor
 * replay one a minute later. A hopped request is never hopped again.
 */

const HOP = 'x-devtunnel-hop';
const HOP_PORT = 'x-devtunnel-hop-port';
const HOP_FOR = 'x-devtunnel-hop-for';
/** How old a hop's stamp may be. */
const MAX_SKEW_MS = 60_000;

export interface HopArrival {
  /** The tunnel or route port the request first arrived on; 0 for a control API call. */
  port: number;
  /** The browser's (or client's) address, as the first replica saw it. */
  remote: string;
}

export interface Hop {
  /** A hopped request's origin when its stamp is good; 'invalid' when it carries a bad one; undefined when it is no hop. */
  arrival(req: IncomingMessage): HopArrival | 'invalid' | undefined;
  /** Sends `req` to the replica at `target` (its control URL) and its answer back to `res`. */
  forward(req: IncomingMessage, res: ServerResponse, target: string, arrival: HopArrival): void;
  /** The same for an upgrade (WebSocket): after the 101, bytes both ways. */
  upgrade(req: IncomingMessage, socket: Socket, head: Buffer, target: string, arrival: HopArrival): void;
  /**
   * This replica stops: the client calls it passes on that only wait (held polls and downstreams:
   * GETs of the control API) end now, a poll with `error` and `Connection: close` (the client asks
   * again at once, on a new connection that the Service sends to a replica that stays), a stream by
   * a cut. Uploads carry answers and finish.
   */
  release(error: HttpError): void;
  close(): Promise<void>;
}

/** How long closing waits for requests still on their way through the hop. */
const CLOSE_MS = 5_000;

export function createHop(token: string, options: { now: () => number; idleMs: number; unreachable?: (target: string) => void }): Hop {
  const key = createHash('sha256').update(`devtunnel-hop\0${token}`).digest();
  const mac = (stamp: string, method: string, path: string, port: number, remote: string) =>
    createHmac('sha256', key).update(`${stamp}\n${method}\n${path}\n${port}\n${remote}`).digest('hex');
  const pools = new Map<string, Pool>();
  const upgraded = new Set<Socket>();
  /** The client's waiting calls passing through (see release), with how to stop each. */
  const waiting = new Map<ServerResponse, { req: IncomingMessage; abort: AbortController }>();
  let released: HttpError | undefined;

  function pool(target: string): Pool {
    let p = pools.get(target);
    if (!p) {
      // No headers deadline: a held poll answers after its own timeout, and the owner bounds
      // every wait itself. The idle limit only catches a replica that vanished without a reset.
      p = new Pool(target, { headersTimeout: options.idleMs, bodyTimeout: options.idleMs, connectTimeout: 5_000 });
      pools.set(target, p);
    }
    return p;
  }

  /** The request's end-to-end headers as they came (the owner adds the forwarding ones), our stamp. */
  function headers(req: IncomingMessage, arrival: HopArrival): string[] {
    const out: string[] = [];
    const pairs = endToEndFlat(pairsFromRaw(req.rawHeaders));
    for (let i = 0; i < pairs.length; i += 2) if (!pairs[i]!.toLowerCase().startsWith(HOP)) out.push(pairs[i]!, pairs[i + 1]!);
    const cl = req.headers['content-length'];
    if (cl !== undefined && req.headers['transfer-encoding'] === undefined) out.push('Content-Length', cl);
    const stamp = String(options.now());
    out.push(HOP, `${stamp}.${mac(stamp, req.method!, req.url!, arrival.port, arrival.remote)}`, HOP_PORT, String(arrival.port), HOP_FOR, arrival.remote);
    return out;
  }

  const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT']);
  const unreachable = (target: string, error: unknown) => {
    const e = error as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
    if (CONNECT_FAILURES.has(e.code ?? e.cause?.code ?? '')) options.unreachable?.(target);
    return new HttpError('client_disconnected', `The tunnel server replica that holds this tunnel (${target}) cannot be reached: ${(error as Error).message}. Its client reconnects to another replica by itself; retry in a few seconds.`);
  };

  return {
    arrival(req) {
      const value = req.headers[HOP];
      if (value === undefined) return undefined;
      const port = Number(req.headers[HOP_PORT]);
      const remote = req.headers[HOP_FOR];
      if (typeof value !== 'string' || typeof remote !== 'string' || !Number.isInteger(port) || port < 0 || port > 65535) return 'invalid';
      const dot = value.indexOf('.');
      const stamp = value.slice(0, dot);
      const given = Buffer.from(value.slice(dot + 1));
      const expected = Buffer.from(mac(stamp, req.method!, req.url!, port, remote));
      if (dot < 1 || Math.abs(options.now() - Number(stamp)) > MAX_SKEW_MS || given.length !== expected.length || !timingSafeEqual(given, expected)) return 'invalid';
      return { port, remote };
    },

    forward(req, res, target, arrival) {
      const waits = arrival.port === 0 && req.method === 'GET';
      if (waits && released) return sendError(req, res, released, { fallback: 'json', close: true });
      const abort = new AbortController();
      if (waits) waiting.set(res, { req, abort });
      res.once('close', () => {
        waiting.delete(res);
        if (!res.writableFinished) abort.abort();
      });
      const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0';
      pool(target)
        .request({ path: req.url!, method: req.method!, headers: headers(req, arrival), body: hasBody ? req : null, signal: abort.signal, responseHeaders: 'raw' })
        .then(({ statusCode, headers: raw, body }) => {
          body.on('error', () => {});
          const flat = endToEndFlat(pairsFromRaw(raw as unknown as string[]));
          const length = (raw as unknown as string[]).findIndex((h, i) => i % 2 === 0 && h.toLowerCase() === 'content-length');
          if (length !== -1) flat.push('Content-Length', (raw as unknown as string[])[length + 1]!);
          res.writeHead(statusCode, STATUS_CODES[statusCode] ?? 'Unknown', flat);
          if (length === -1) res.flushHeaders();
          pipeline(body, res, (error) => {
            if (error) res.destroy();
          });
        })
        .catch((error: unknown) => {
          if (abort.signal.aborted) return;
          sendError(req, res, unreachable(target, error), { close: !req.complete });
        });
    },

    upgrade(req, socket, head, target, arrival) {
      const url = new URL(target);
      const call = httpRequest({ host: url.hostname, port: url.port, method: req.method, path: req.url, headers: [...headers(req, arrival), 'Connection', 'Upgrade', 'Upgrade', req.headers.upgrade ?? ''], agent: false, setHost: false });
      call.setTimeout(options.idleMs, () => call.destroy(new Error('no answer')));
      socket.on('error', () => socket.destroy());
      call.on('error', (error) => {
        if (socket.writable) endRaw(socket, rawResponse(unreachable(target, error)));
        else socket.destroy();
      });
      call.on('upgrade', (answer: IncomingMessage, other: Socket, otherHead: Buffer) => {
        call.setTimeout(0);
        const kept = endToEndFlat(pairsFromRaw(answer.rawHeaders));
        let text = `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${answer.headers.upgrade ?? ''}\r\n`;
        for (let i = 0; i < kept.length; i += 2) text += `${kept[i]}: ${kept[i + 1]}\r\n`;
        upgraded.add(socket);
        const end = () => {
          upgraded.delete(socket);
          socket.destroy();
          other.destroy();
        };
        socket.write(text + '\r\n');
        if (otherHead.length) socket.write(otherHead);
        if (head.length) other.write(head);
        for (const s of [socket, other]) {
          s.setTimeout(0);
          s.setNoDelay(true);
          s.on('error', end);
          s.once('close', end);
        }
        other.pipe(socket);
        socket.pipe(other);
      });
      call.on('response', (answer: IncomingMessage) => {
        const status = answer.statusCode ?? 502;
        const kept = endToEndFlat(pairsFromRaw(answer.rawHeaders));
        let text = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\nConnection: close\r\n`;
        for (let i = 0; i < kept.length; i += 2) text += `${kept[i]}: ${kept[i + 1]}\r\n`;
        const cl = answer.headers['content-length'];
        if (cl !== undefined) text += `Content-Length: ${cl}\r\n`;
        socket.write(text + '\r\n');
        answer.pipe(socket);
        answer.once('error', () => socket.destroy());
      });
      call.end();
    },

    release(error) {
      released = error;
      for (const [res, { req, abort }] of waiting) {
        waiting.delete(res);
        abort.abort();
        if (res.headersSent) res.destroy();
        else sendError(req, res, error, { fallback: 'json', close: true });
      }
    },

    async close() {
      for (const socket of upgraded) socket.destroy();
      // Requests on their way finish first (a rolling replica's waiting requests were just sent
      // on to the tunnel's new replica), for a bounded time; then whatever is left is cut.
      await Promise.all([...pools.values()].map((p) => Promise.race([p.close(), new Promise((resolve) => setTimeout(resolve, CLOSE_MS).unref())]).then(() => p.destroy())));
      pools.clear();
    },
  };
}
