// The stand-in for the rest of the company's website: its pages, with the cart (another app of the
// cluster, under /cart/, which the web proxy sends elsewhere) in a frame. It knows nothing of
// devtunnel: which cart the frame shows is decided on the cart's route, per browser.
import { createServer } from 'node:http';

const page = (title, body) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title} · Shop (test cluster)</title>
<style>
  body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#fafafa}
  header{background:#234;color:#fff;padding:1rem 2rem;display:flex;gap:2rem;align-items:center}
  header b{font-size:1.3rem} nav a{color:#cde;margin-right:1rem}
  main{padding:0 2rem} iframe{width:100%;height:22rem;border:0}
  footer{padding:1rem 2rem;color:#888;font-size:.85rem}
</style></head>
<body>
<header><b>Shop</b><nav><a href="/">Home</a><a href="/products">Products</a><a href="/cart/">Cart</a></nav></header>
<main>${body}</main>
<footer>Pages served by the site app in the (simulated) test cluster.</footer>
</body></html>`;

const PAGES = {
  '/': page('Home', '<h2>Welcome to the shop</h2><iframe id="cart-frame" src="/cart/" title="cart"></iframe>'),
  '/products': page('Products', '<h2>Products</h2><ul><li>Tea, 250 g</li><li>Mug</li><li>Kettle</li></ul>'),
};

export function createSite() {
  return createServer((req, res) => {
    const { pathname } = new URL(req.url, 'http://site');
    // The web proxy sends /cart/… to the cart; a bare /cart is a typo worth forgiving.
    if (pathname === '/cart') {
      res.writeHead(301, { location: '/cart/' });
      return res.end();
    }
    const html = PAGES[pathname];
    res.writeHead(html ? 200 : 404, { 'content-type': 'text/html; charset=utf-8' });
    res.end(req.method === 'HEAD' ? undefined : (html ?? page('Not found', '<h2>Not found</h2>')));
  });
}
