// Loads a Vite page the way a browser does: the document, then its module scripts, then every
// module those import (Vite rewrites imports to URLs), as they are found, over at most
// `connections` keep-alive HTTP/1.1 connections (6: a browser over HTTP/1.1; 64: a stand-in for
// one HTTP/2 connection to a gateway). Headers are a desktop Chrome's, cookies included. With a
// cache (a Map, kept between loads) it is a browser with a warm cache: it revalidates with
// If-None-Match and takes a 304 as the cached copy, and does not ask at all for what came back
// `immutable` (Vite's pre-bundled dependencies).
import { brotliDecompressSync, gunzipSync, inflateRawSync, inflateSync } from 'node:zlib';
import { Agent, request } from 'undici';

const CHROME = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
/** What every request carries, as Chrome sends it; the cookie selects nobody (the gateway routes by port). */
const COMMON = {
  'user-agent': CHROME,
  'accept-encoding': 'gzip, deflate, br',
  'accept-language': 'en-US,en;q=0.9',
  'sec-ch-ua': '"Chromium";v="131", "Not_A Brand";v="24"',
  'sec-ch-ua-mobile': '?0',
  'sec-ch-ua-platform': '"Linux"',
  cookie: 'devtunnel=bench; _ga=GA1.1.1187520347.1733270400; _ga_Q1W2E3R4T5=GS1.1.1733270400.3.1.1733270561.0.0.0; session=Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5d2FsZG8; theme=dark',
};
const DOCUMENT = {
  accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7',
  'sec-fetch-dest': 'document',
  'sec-fetch-mode': 'navigate',
  'sec-fetch-site': 'none',
  'sec-fetch-user': '?1',
  'upgrade-insecure-requests': '1',
};
const SCRIPT = { accept: '*/*', 'sec-fetch-dest': 'script', 'sec-fetch-mode': 'cors', 'sec-fetch-site': 'same-origin' };

/** Module scripts and module preloads of a document. */
export function documentScripts(html) {
  const found = [];
  for (const [tag] of html.matchAll(/<script\b[^>]*>/gi)) {
    const src = /\bsrc\s*=\s*["']([^"']+)["']/i.exec(tag);
    if (src && /\btype\s*=\s*["']module["']/i.test(tag)) found.push(src[1]);
  }
  for (const [tag] of html.matchAll(/<link\b[^>]*>/gi)) {
    const href = /\bhref\s*=\s*["']([^"']+)["']/i.exec(tag);
    if (href && /\brel\s*=\s*["']modulepreload["']/i.test(tag)) found.push(href[1]);
  }
  return found;
}

/**
 * Static imports and re-exports of a module as Vite serves it (one statement a line, URLs
 * rewritten); dynamic import() is not followed, as a browser runs it only when the code does.
 */
export function moduleImports(code) {
  const found = [];
  for (const m of code.matchAll(/^\s*(?:import|export)\b[^'"`;()]*?\bfrom\s*["']([^"']+)["']/gm)) found.push(m[1]);
  for (const m of code.matchAll(/^\s*import\s*["']([^"']+)["']/gm)) found.push(m[1]);
  return found;
}

function decode(body, encoding) {
  switch ((encoding ?? 'identity').trim().toLowerCase()) {
    case 'identity':
      return body;
    case 'gzip':
    case 'x-gzip':
      return gunzipSync(body);
    case 'br':
      return brotliDecompressSync(body);
    case 'deflate':
      // RFC 9110 §8.4.1.2 says zlib-wrapped; some servers send raw deflate, and browsers take both.
      try {
        return inflateSync(body);
      } catch {
        return inflateRawSync(body);
      }
    default:
      throw new Error(`unexpected Content-Encoding: ${encoding}`);
  }
}

/**
 * @param {string} origin e.g. http://127.0.0.1:5173
 * @param {string} page the document's path, e.g. /small/
 * @param {{ connections: number, cache?: Map<string, { etag?: string, text: string, immutable: boolean }> }} options
 * @returns {Promise<{ ms: number, requests: number, modules: number, notModified: number, fromCache: number, wireBytes: number, bodyBytes: number, encodings: Record<string, number> }>}
 */
export async function loadPage(origin, page, { connections, cache }) {
  const agent = new Agent({ connections, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 120_000, bodyTimeout: 120_000 });
  const stats = { ms: 0, requests: 0, modules: 0, notModified: 0, fromCache: 0, wireBytes: 0, bodyBytes: 0, encodings: {} };
  const documentUrl = new URL(page, origin).href;
  const seen = new Set();

  async function get(url, kind) {
    const cached = cache?.get(url);
    if (cached?.immutable) {
      stats.fromCache++;
      return cached.text;
    }
    const headers = { ...COMMON, ...(kind === 'document' ? DOCUMENT : { ...SCRIPT, referer: documentUrl }) };
    if (cached?.etag) headers['if-none-match'] = cached.etag;
    stats.requests++;
    const res = await request(url, { headers, dispatcher: agent });
    const body = Buffer.from(await res.body.arrayBuffer());
    stats.wireBytes += body.length;
    if (res.statusCode === 304 && cached) {
      stats.notModified++;
      return cached.text;
    }
    if (res.statusCode !== 200) throw new Error(`GET ${url}: ${res.statusCode} ${body.subarray(0, 200)}`);
    const encoding = res.headers['content-encoding'];
    stats.encodings[encoding ?? 'identity'] = (stats.encodings[encoding ?? 'identity'] ?? 0) + 1;
    const text = decode(body, encoding).toString('utf8');
    stats.bodyBytes += Buffer.byteLength(text);
    if (cache) cache.set(url, { etag: res.headers.etag, text, immutable: /\bimmutable\b/.test(res.headers['cache-control'] ?? '') });
    return text;
  }

  /** Fetches a module and, as soon as it is in, everything it imports, all at once (the pool queues). */
  async function module(url) {
    if (seen.has(url)) return;
    seen.add(url);
    const code = await get(url, 'script');
    stats.modules++;
    const next = moduleImports(code)
      .map((spec) => (spec.startsWith('/') || spec.startsWith('.') ? new URL(spec, url).href : null))
      .filter((u) => u && u.startsWith(origin));
    await Promise.all(next.map(module));
  }

  const t0 = performance.now();
  try {
    const html = await get(documentUrl, 'document');
    await Promise.all(documentScripts(html).map((src) => module(new URL(src, documentUrl).href)));
    stats.ms = performance.now() - t0;
  } finally {
    await agent.close();
  }
  return stats;
}
