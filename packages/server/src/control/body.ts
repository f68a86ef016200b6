import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError } from '../errors';

/** Largest JSON body accepted (a registration). */
const MAX_JSON_BYTES = 16 * 1024;

export function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

/** A small JSON body, read whole; a larger one is refused as soon as it shows (413). */
export function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_JSON_BYTES) return reject(new HttpError('payload_too_large', `The body may be at most ${MAX_JSON_BYTES} bytes.`));
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_JSON_BYTES) {
        // Stop reading; the error answer closes the connection behind it.
        req.pause();
        reject(new HttpError('payload_too_large', `The body may be at most ${MAX_JSON_BYTES} bytes.`));
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(new HttpError('invalid_request', 'The body must be JSON.'));
      }
    });
    req.once('error', reject);
  });
}
