// The stand-in for the rest of the company's website: its pages, and its own (cluster) version
// of the cart app, which the developer's laptop replaces for users carrying the override cookie.
import { createServer } from 'node:http';

const page = (cart) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shop (test cluster)</title>
<style>
  body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#fafafa}
  header{background:#234;color:#fff;padding:1rem 2rem;display:flex;gap:2rem;align-items:center}
  header b{font-size:1.3rem} nav a{color:#cde;margin-right:1rem}
  .banner{padding:.5rem 2rem;background:${cart ? '#2a7' : '#ccc'};color:${cart ? '#fff' : '#333'}}
  iframe{width:100%;height:22rem;border:0}
  footer{padding:1rem 2rem;color:#888;font-size:.85rem}
</style></head>
<body>
<header><b>Shop</b><nav><a href="/">Home</a><a href="/products">Products</a><a href="/cart/">Cart</a></nav></header>
<div class="banner" id="routing">${cart ? 'The cart below is routed to your laptop (cookie devtunnel=' + cart + '). <a href="/__override/off">Stop</a>' : 'The cart below is the cluster\'s own. <a href="/__override/demo">Route it to my laptop</a>'}</div>
<main><h2 style="padding:0 2rem">Welcome to the shop</h2><iframe id="cart-frame" src="/cart/" title="cart"></iframe></main>
<footer>Pages served by the site app in the (simulated) test cluster.</footer>
</body></html>`;

export function createSite() {
  return createServer((req, res) => {
    const url = new URL(req.url, 'http://site');
    if (url.pathname.startsWith('/cart')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><title>Cart</title><main style="font:16px system-ui;padding:1.5rem"><h1>Your cart</h1><p id="message">The cluster\'s own cart app.</p></main>');
      return;
    }
    const cart = /(?:^|;\s*)devtunnel=([a-z0-9-]+)/.exec(req.headers.cookie ?? '')?.[1];
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(page(cart));
  });
}
