import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * Raw-HTTP tools for the framing suites (reliability-security.md §2 A, E):
 *
 * - {@link startBadApp}: a local app on raw `net` sockets that writes exact bytes, including
 *   responses Node's own http server refuses to produce (duplicate Content-Length, bare LF, a body
 *   longer than declared, a reset mid-body…).
 * - {@link parseResponses}: a strict parser of what a browser connection received, so a test can
 *   assert that every byte belongs to a well-framed response and nothing else follows.
 */

export interface BadRequest {
  method: string;
  /** Request target as received. */
  url: string;
  /** Header pairs as received. */
  headers: Array<[string, string]>;
}

/**
 * Writes the answer for one request. Return `'keep'` to keep the connection for more requests;
 * anything else ends the exchange: the script is expected to have ended, destroyed or reset the
 * socket, or to leave it hanging on purpose.
 */
export type BadScript = (socket: Socket, request: BadRequest) => 'keep' | void;

export interface BadApp {
  port: number;
  /** Request targets seen, in order. */
  hits: string[];
  close(): Promise<void>;
}

/** A correct keep-alive answer: `ok <url>`. */
export const okScript: BadScript = (socket, req) => {
  const body = `ok ${req.url}`;
  socket.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  return 'keep';
};

/** Writes `bytes`, then closes the connection cleanly (FIN). */
export const sendThenClose =
  (bytes: string | Buffer): BadScript =>
  (socket) => {
    socket.end(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
  };

/** Writes `bytes`, then resets the connection (RST) once they are flushed. */
export const sendThenReset =
  (bytes: string | Buffer): BadScript =>
  (socket) => {
    socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes, () => socket.resetAndDestroy());
  };

/**
 * Starts the app on 127.0.0.1 port 0. The path (without query) picks the script; unknown paths
 * get {@link okScript}. Request bodies are read by Content-Length and discarded.
 */
export async function startBadApp(scripts: Record<string, BadScript>): Promise<BadApp> {
  const hits: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffer = Buffer.alloc(0);
    let skip = 0;
    let stopped = false;
    socket.on('data', (chunk: Buffer) => {
      if (stopped) return;
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        if (skip > 0) {
          const n = Math.min(skip, buffer.length);
          skip -= n;
          buffer = buffer.subarray(n);
          if (skip > 0) return;
        }
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const lines = buffer.subarray(0, end).toString('latin1').split('\r\n');
        buffer = buffer.subarray(end + 4);
        const [method = '', url = ''] = lines[0]!.split(' ');
        const headers = lines.slice(1).map((line): [string, string] => {
          const colon = line.indexOf(':');
          return [line.slice(0, colon), line.slice(colon + 1).trim()];
        });
        const cl = headers.find(([n]) => n.toLowerCase() === 'content-length');
        skip = cl ? Number(cl[1]) : 0;
        hits.push(url);
        const path = url.split('?')[0]!;
        const script = scripts[path] ?? okScript;
        if (script(socket, { method, url, headers }) !== 'keep') {
          stopped = true;
          return;
        }
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    hits,
    async close() {
      const closed = once(server, 'close');
      server.close();
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

export interface ParsedResponse {
  status: number;
  /** Header pairs in order, names as sent. */
  headers: Array<[string, string]>;
  body: Buffer;
  /** The body ended where its framing said (false: the connection ended first). */
  complete: boolean;
  /** Framing the response used. */
  framing: 'content-length' | 'chunked' | 'none' | 'close';
  /** Offset just past this response in the parsed bytes. */
  end: number;
}

export interface ParsedStream {
  responses: ParsedResponse[];
  /** Why parsing stopped before the end of the bytes, if it did (a desync or a malformed head). */
  error: string | undefined;
  /** Bytes after the last complete response that did not form a response. */
  rest: Buffer;
}

/** First value of a header, case-insensitive. */
export function header(res: ParsedResponse, name: string): string | undefined {
  const lower = name.toLowerCase();
  return res.headers.find(([n]) => n.toLowerCase() === lower)?.[1];
}

/** Every value of a header, case-insensitive. */
export function headers(res: ParsedResponse, name: string): string[] {
  const lower = name.toLowerCase();
  return res.headers.filter(([n]) => n.toLowerCase() === lower).map(([, v]) => v);
}

/**
 * Strictly parses the bytes a browser received on one connection (RFC 9112): CRLF line ends,
 * `name: value` fields with token names and no CR/LF/NUL in values, exactly one framing.
 * 1xx responses are returned like the others. `requestMethods` gives the method of each request,
 * in order, so HEAD answers are read without a body.
 */
export function parseResponses(bytes: Buffer, requestMethods: string[] = []): ParsedStream {
  const responses: ParsedResponse[] = [];
  let at = 0;
  let finals = 0;
  const fail = (error: string): ParsedStream => ({ responses, error, rest: bytes.subarray(at) });
  while (at < bytes.length) {
    const end = bytes.indexOf('\r\n\r\n', at, 'latin1');
    if (end < 0) return fail('incomplete or unterminated response head');
    const head = bytes.subarray(at, end).toString('latin1');
    const lines = head.split('\r\n');
    const statusLine = /^HTTP\/1\.[01] (\d{3}) [\t \x21-\x7e\x80-\xff]*$/.exec(lines[0]!);
    if (!statusLine) return fail(`bad status line ${JSON.stringify(lines[0])}`);
    const status = Number(statusLine[1]);
    const pairs: Array<[string, string]> = [];
    for (const line of lines.slice(1)) {
      const m = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([^\r\n\0]*?)[ \t]*$/.exec(line);
      if (!m || /[\r\n\0]/.test(line)) return fail(`bad header line ${JSON.stringify(line)}`);
      pairs.push([m[1]!, m[2]!]);
    }
    const res: ParsedResponse = { status, headers: pairs, body: Buffer.alloc(0), complete: true, framing: 'none', end: 0 };
    at = end + 4;
    const cls = headers(res, 'content-length');
    const tes = headers(res, 'transfer-encoding');
    if (cls.length > 1) return fail('more than one Content-Length');
    if (cls.length && tes.length) return fail('both Content-Length and Transfer-Encoding');
    const method = status >= 200 ? requestMethods[finals] : undefined;
    if (status >= 200) finals++;
    if (status < 200 || status === 204 || status === 304 || method === 'HEAD') {
      res.end = at;
      responses.push(res);
      continue;
    }
    if (tes.length) {
      if (tes.join(',').trim().toLowerCase() !== 'chunked') return fail(`unexpected Transfer-Encoding ${tes.join(',')}`);
      res.framing = 'chunked';
      const parts: Buffer[] = [];
      res.complete = false;
      for (;;) {
        const lineEnd = bytes.indexOf('\r\n', at, 'latin1');
        if (lineEnd < 0) {
          at = bytes.length;
          break;
        }
        const sizeText = bytes.subarray(at, lineEnd).toString('latin1');
        if (!/^[0-9a-fA-F]{1,8}$/.test(sizeText)) return fail(`bad chunk size ${JSON.stringify(sizeText)}`);
        const size = parseInt(sizeText, 16);
        at = lineEnd + 2;
        if (size === 0) {
          // Trailer section, then the final CRLF.
          const trailerEnd = bytes.indexOf('\r\n', at, 'latin1');
          if (trailerEnd !== at) {
            const block = bytes.indexOf('\r\n\r\n', at, 'latin1');
            if (block < 0) {
              at = bytes.length;
              break;
            }
            at = block + 4;
          } else {
            at += 2;
          }
          res.complete = true;
          break;
        }
        const available = Math.min(size, bytes.length - at);
        parts.push(bytes.subarray(at, at + available));
        at += available;
        if (available < size) break;
        if (bytes.length - at < 2) {
          at = bytes.length;
          break;
        }
        if (bytes.subarray(at, at + 2).toString('latin1') !== '\r\n') return fail('chunk data not followed by CRLF');
        at += 2;
      }
      res.body = Buffer.concat(parts);
      res.end = at;
      responses.push(res);
      if (!res.complete) break;
      continue;
    }
    if (cls.length) {
      if (!/^\d+$/.test(cls[0]!)) return fail(`bad Content-Length ${cls[0]}`);
      const length = Number(cls[0]);
      res.framing = 'content-length';
      res.body = bytes.subarray(at, Math.min(bytes.length, at + length));
      res.complete = res.body.length === length;
      at += res.body.length;
      res.end = at;
      responses.push(res);
      if (!res.complete) break;
      continue;
    }
    // No framing: the body runs to the end of the connection (RFC 9112 §6.3 rule 8).
    res.framing = 'close';
    res.body = bytes.subarray(at);
    at = bytes.length;
    res.end = at;
    responses.push(res);
  }
  return { responses, error: undefined, rest: bytes.subarray(at) };
}
