import { init, parse } from 'es-module-lexer';
import { MAX_PROMISES } from '../protocol';

/**
 * What an answer says the browser will ask for next (docs/speculation.md): the scripts, module
 * preloads and stylesheets an HTML page names, and the static imports and re-exports of a
 * JavaScript module (Vite has rewritten every one of them to a URL). Same origin only: a path
 * (`/src/a.ts`) or a relative reference resolved against the answer's own URL. Dynamic imports are
 * left out: they may never run.
 */

/** A URL the browser will request, and as what (it decides the request's `Accept` and `Sec-Fetch-Dest`). */
export interface Reference {
  /** Origin-form: path and query. */
  url: string;
  as: 'script' | 'style';
}

/** The kind of body worth scanning, from its `Content-Type`; undefined for anything else. */
export function scannable(contentType: string | undefined): 'html' | 'js' | undefined {
  if (!contentType) return undefined;
  const type = contentType.split(';', 1)[0]!.trim().toLowerCase();
  if (type === 'text/html') return 'html';
  if (type === 'text/javascript' || type === 'application/javascript' || type === 'application/x-javascript') return 'js';
  return undefined;
}

/** Whether a `Content-Type` is CSS: a stylesheet a page names is pushed too, though not scanned. */
export function isStylesheet(contentType: string | undefined): boolean {
  return contentType !== undefined && contentType.split(';', 1)[0]!.trim().toLowerCase() === 'text/css';
}

/** es-module-lexer parses synchronously once its WebAssembly is compiled (a few ms, once). */
let lexerReady = false;
export const lexerInit: Promise<void> = init.then(
  () => {
    lexerReady = true;
  },
  // Without the lexer modules are not scanned; pages still are.
  () => {},
);

/** Most references taken from one answer: a page that names more is not sped up further. */
const MAX_REFERENCES = MAX_PROMISES;
/** HTML beyond this many characters is not scanned: pages that big are not dev-server pages. */
const MAX_HTML = 512 * 1024;

/** Resolves `spec` against `base` (origin-form) when it stays on the same origin; else undefined. */
export function sameOrigin(spec: string, base: string): string | undefined {
  const s = spec.trim();
  if (s === '' || s.startsWith('//') || s.includes('\\')) return undefined;
  // A scheme (http:, data:, blob:…) names another origin or no request at all.
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(s)) return undefined;
  if (!s.startsWith('/') && !s.startsWith('./') && !s.startsWith('../')) {
    // A bare specifier (`react`) is no URL; in HTML a plain relative path (`main.js`) is.
    return undefined;
  }
  let u: URL;
  try {
    u = new URL(s, `http://origin.invalid${base.startsWith('/') ? base : '/'}`);
  } catch {
    return undefined;
  }
  if (u.host !== 'origin.invalid') return undefined;
  return u.pathname + u.search;
}

const TAG = /<(script|link)\b([^>]{0,2048})>/gi;
const ATTR = /([a-zA-Z-]+)\s*(?:=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g;

function attributes(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(ATTR)) out.set(m[1]!.toLowerCase(), m[2] ?? m[3] ?? m[4] ?? '');
  return out;
}

/** HTML: `<script src>` and `<link rel="modulepreload|stylesheet" href>`, a bounded tag scan. */
export function htmlReferences(html: string, base: string): Reference[] {
  const out: Reference[] = [];
  const text = html.length > MAX_HTML ? html.slice(0, MAX_HTML) : html;
  for (const m of text.matchAll(TAG)) {
    const attrs = attributes(m[2]!);
    let ref: Reference | undefined;
    if (m[1]!.toLowerCase() === 'script') {
      const src = attrs.get('src');
      const url = src === undefined ? undefined : htmlUrl(src, base);
      if (url) ref = { url, as: 'script' };
    } else {
      const rel = (attrs.get('rel') ?? '').toLowerCase().split(/\s+/);
      const href = attrs.get('href');
      const url = href === undefined ? undefined : htmlUrl(href, base);
      if (url && rel.includes('modulepreload')) ref = { url, as: 'script' };
      else if (url && rel.includes('stylesheet')) ref = { url, as: 'style' };
    }
    if (ref) out.push(ref);
    if (out.length >= MAX_REFERENCES) break;
  }
  return out;
}

/** In HTML a plain relative path (`main.js`) is a URL too. */
function htmlUrl(value: string, base: string): string | undefined {
  const v = decodeEntities(value.trim());
  return sameOrigin(/^[a-zA-Z0-9_@-]/.test(v) && !/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(v) ? `./${v}` : v, base);
}

const decodeEntities = (v: string) => (v.includes('&') ? v.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'") : v);

/**
 * A module's static imports and `export … from` (es-module-lexer, as Vite itself uses); empty when
 * the lexer is not ready yet or the source does not parse (it is then the browser's problem).
 */
export function jsReferences(source: string, base: string): Reference[] {
  if (!lexerReady) return [];
  let imports: ReturnType<typeof parse>[0];
  try {
    [imports] = parse(source);
  } catch {
    return [];
  }
  const out: Reference[] = [];
  for (const i of imports) {
    // Static imports and re-exports only (t 1); dynamic ones (2) may never run, import.meta (3) is none.
    if (i.t !== 1 || i.n === undefined) continue;
    const url = sameOrigin(i.n, base);
    if (url) out.push({ url, as: 'script' });
    if (out.length >= MAX_REFERENCES) break;
  }
  return out;
}

/** The references of a scannable body. */
export function references(kind: 'html' | 'js', body: Uint8Array, base: string): Reference[] {
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  return kind === 'html' ? htmlReferences(text, base) : jsReferences(text, base);
}
