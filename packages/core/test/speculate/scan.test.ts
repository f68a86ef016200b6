import { htmlReferences, isStylesheet, jsReferences, lexerInit, sameOrigin, scannable } from '../../src/speculate/scan';
import { isImmutable, notPushable, pushRequestHeaders, varyNames } from '../../src/speculate/rules';
import { etagMatches, pushIdentity, pushVariant } from '../../src/protocol';

beforeAll(() => lexerInit);

describe('what an answer names', () => {
  test('HTML: scripts, module preloads and stylesheets of the same origin', () => {
    const html = `<!doctype html><html><head>
      <script type="module" src="/@vite/client"></script>
      <link rel="modulepreload" href="/src/a.ts?v=1&amp;x=2">
      <link rel='stylesheet' href=./style.css>
      <link rel="icon" href="/favicon.ico">
      <script src="https://cdn.example.com/x.js"></script>
      <script src="//cdn.example.com/y.js"></script>
      <script>inline()</script>
      <script src="main.js" defer></script>
      </head></html>`;
    expect(htmlReferences(html, '/app/index.html')).toEqual([
      { url: '/@vite/client', as: 'script' },
      { url: '/src/a.ts?v=1&x=2', as: 'script' },
      { url: '/app/style.css', as: 'style' },
      { url: '/app/main.js', as: 'script' },
    ]);
  });

  test('JavaScript: static imports and re-exports, not dynamic imports or bare names', () => {
    const js = `import { createHotContext } from "/@vite/client";
      import "/src/side.ts";
      import React from "/node_modules/.vite/deps/react.js?v=abc123";
      export { x } from './x.js';
      export * from "../lib/y.js";
      import bare from "react";
      const lazy = () => import("/src/lazy.ts");
      const meta = import.meta.url;`;
    expect(jsReferences(js, '/src/pages/main.ts')).toEqual([
      { url: '/@vite/client', as: 'script' },
      { url: '/src/side.ts', as: 'script' },
      { url: '/node_modules/.vite/deps/react.js?v=abc123', as: 'script' },
      { url: '/src/pages/x.js', as: 'script' },
      { url: '/src/lib/y.js', as: 'script' },
    ]);
    expect(jsReferences('this is not { javascript', '/a.js')).toEqual([]);
  });

  test('same origin only', () => {
    expect(sameOrigin('/a', '/x/y')).toBe('/a');
    expect(sameOrigin('../../../a', '/x/y')).toBe('/a');
    expect(sameOrigin('//evil.test/a', '/')).toBeUndefined();
    expect(sameOrigin('data:text/javascript,1', '/')).toBeUndefined();
    expect(sameOrigin('/a#frag', '/')).toBe('/a');
    expect(scannable('text/javascript; charset=utf-8')).toBe('js');
    expect(scannable('text/html')).toBe('html');
    expect(scannable('text/css')).toBeUndefined();
    // Pushed (a page names it) but not scanned; anything else is neither.
    expect([isStylesheet('text/css; charset=utf-8'), isStylesheet('application/json'), isStylesheet(undefined)]).toEqual([true, false, false]);
  });
});

describe('what may be pushed', () => {
  test('a 200 without cookies, private caching, event streams or foreign Vary', () => {
    expect(notPushable(200, [['content-type', 'text/javascript'], ['cache-control', 'no-cache'], ['vary', 'Origin']], 10)).toBeUndefined();
    expect(notPushable(206, [], 10)).toBe('status 206');
    expect(notPushable(302, [], 0)).toBe('status 302');
    expect(notPushable(200, [['Set-Cookie', 'a=1']], 1)).toBe('set-cookie');
    expect(notPushable(200, [['cache-control', 'private, max-age=60']], 1)).toBe('cache-control');
    expect(notPushable(200, [['cache-control', 'no-store']], 1)).toBe('cache-control');
    expect(notPushable(200, [['content-type', 'text/event-stream']], null)).toBe('event stream');
    expect(notPushable(200, [['vary', 'Cookie']], 1)).toBe('vary');
    expect(notPushable(200, [['vary', '*']], 1)).toBe('vary');
    expect(notPushable(200, [], 2 * 1024 * 1024)).toBe('too large');
    expect(varyNames([['Vary', 'Origin, Accept-Encoding']])).toEqual(['origin', 'accept-encoding']);
    expect(isImmutable([['cache-control', 'max-age=31536000,immutable']])).toBe(true);
    expect(isImmutable([['cache-control', 'no-cache']])).toBe(false);
  });

  test('a push request copies who the browser is, and asks as the browser would', () => {
    const parent: Array<[string, string]> = [['Host', 'app.test'], ['Cookie', 'a=1'], ['Accept', 'text/html'], ['Sec-Fetch-Dest', 'document'], ['X-Request-Id', 'r1'], ['User-Agent', 'UA']];
    const child = pushRequestHeaders(parent, 'script');
    expect(child).toEqual([['Host', 'app.test'], ['Cookie', 'a=1'], ['User-Agent', 'UA'], ['accept', '*/*'], ['sec-fetch-dest', 'script'], ['sec-fetch-mode', 'cors'], ['sec-fetch-site', 'same-origin']]);
    expect(pushIdentity(child)).toBe(pushIdentity(parent));
    expect(pushVariant(child)).toBe('script|');
    expect(pushVariant(pushRequestHeaders([['Host', 'h']], 'style'))).toBe('|css');
  });

  test('ETags compare weakly (RFC 9110 §13.1.2)', () => {
    expect(etagMatches('W/"a"', '"a"')).toBe(true);
    expect(etagMatches('"b", W/"a"', 'W/"a"')).toBe(true);
    expect(etagMatches('"a,b"', '"a,b"')).toBe(true);
    expect(etagMatches('"b"', '"a"')).toBe(false);
    expect(etagMatches('*', '"a"')).toBe(true);
  });
});
