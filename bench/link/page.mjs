// Writes the bench's Vite project: one page per module size, each an index.html whose module
// script is the root of a tree of 1,000 ES modules (10 at the first level, 100 at the second, 890
// at the third), so that a browser finds them level by level, as it finds a real app's.
//   /small/  modules of 100-450 bytes of source: ≈1.2 kB each as Vite serves them (≈1.2 MB)
//   /large/  modules of ≈2 kB of code-like source: ≈11 kB each as served (≈11 MB)
// Vite 8 serves every module with an inline source map (the source again, base64, and its
// mappings), five or six times the source's size; the sizes above are chosen for the bytes a
// browser receives, which is what crosses the link. LINK_LARGE_SOURCE changes the large modules'
// source bytes.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const MODULES = 1000;
const BRANCHING = 10;
/** Source bytes per module, filler included; undefined: no filler. */
export const SOURCE_BYTES = { small: undefined, large: Number(process.env.LINK_LARGE_SOURCE ?? 1960) };

/** The modules module `i` imports (-1: the page's main.js): 10 children in breadth-first order. */
const children = (i) => Array.from({ length: BRANCHING }, (_, k) => BRANCHING * (i + 1) + k).filter((c) => c < MODULES);

/** A deterministic pseudo-random sequence (mulberry32), so that every run writes the same files. */
function random(seed) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = ['user', 'cart', 'item', 'price', 'total', 'order', 'render', 'state', 'props', 'value', 'index', 'count', 'label', 'theme', 'route', 'query', 'fetch', 'cache', 'token', 'event', 'handler', 'config', 'locale', 'format', 'amount', 'filter', 'select', 'update', 'remove', 'append'];

/** Code-like filler of about `bytes` bytes: functions with varied names, numbers and strings. */
function filler(i, bytes) {
  const next = random(i + 1);
  const word = () => WORDS[Math.floor(next() * WORDS.length)];
  const name = () => {
    const w = word();
    return word() + w[0].toUpperCase() + w.slice(1);
  };
  let out = '';
  for (let k = 0; ; k++) {
    const [a, b, c] = [name(), name(), word()];
    const fn = `export function ${a}_${i}_${k}(${c}, ${b}) {\n  const ${word()}Id = ${Math.floor(next() * 1e6)};\n  if (${c} == null) return "${word()} ${word()} ${Math.floor(next() * 1e4)}";\n  return { ${word()}: ${c}.${word()} ?? ${b}, ${word()}: [${Math.floor(next() * 100)}, ${Math.floor(next() * 1000)}].map((x) => x * ${(next() * 10).toFixed(3)}) };\n}\n`;
    if (out.length + fn.length > bytes) break;
    out += fn;
  }
  // A comment makes up the rest, so that the size is exact and the served size moves smoothly.
  const rest = bytes - out.length - 4;
  return rest > 0 ? out + `// ${'-'.repeat(rest)}\n` : out;
}

function moduleSource(i, size) {
  const kids = children(i);
  const imports = kids.map((c) => `import { v${c} } from './m${c}.js';\n`).join('');
  const value = kids.length ? kids.map((c) => `v${c}`).join(' + ') : String(i);
  const body = `export const v${i} = ${value};\nexport function describe${i}() {\n  return 'module ${i} of ${MODULES}: ' + v${i};\n}\n`;
  return imports + body + (SOURCE_BYTES[size] ? filler(i, SOURCE_BYTES[size] - imports.length - body.length) : '');
}

/** Writes the project into `dir` (emptied first); returns the pages' paths. */
export function writeProject(dir) {
  rmSync(dir, { recursive: true, force: true });
  const pages = {};
  for (const size of ['small', 'large']) {
    const src = join(dir, 'src', size);
    mkdirSync(src, { recursive: true });
    mkdirSync(join(dir, size), { recursive: true });
    writeFileSync(join(dir, size, 'index.html'), `<!doctype html>\n<html lang="en">\n  <head>\n    <meta charset="UTF-8" />\n    <title>devtunnel bench: ${MODULES} modules (${size})</title>\n  </head>\n  <body>\n    <div id="app"></div>\n    <script type="module" src="/src/${size}/main.js"></script>\n  </body>\n</html>\n`);
    const roots = children(-1);
    writeFileSync(join(src, 'main.js'), roots.map((c) => `import { v${c} } from './m${c}.js';\n`).join('') + `document.querySelector('#app').textContent = String(${roots.map((c) => `v${c}`).join(' + ')});\n`);
    for (let i = 0; i < MODULES; i++) writeFileSync(join(src, `m${i}.js`), moduleSource(i, size));
    pages[size] = `/${size}/`;
  }
  // No config file: Vite's defaults, as `npm create vite` leaves them (no dependency to pre-bundle).
  writeFileSync(join(dir, 'package.json'), '{ "name": "devtunnel-bench-link-page", "private": true, "type": "module" }\n');
  return pages;
}
