// The cluster's own cart app: the real app behind the tunnel server's route `cart` (its upstream).
// It knows nothing of devtunnel. Every request that selects no live tunnel ends up here, so the
// shop keeps working for everyone while one developer serves the cart from their laptop.
// Same page shape as examples/vite-app (#message, #add, #count), served under /cart/ as the web
// proxy gives it. Run alone: node cart.mjs [port]; prints {"port": …} once listening.
import { createServer } from 'node:http';

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Cart · the cluster's own</title>
<style>
  body{font:16px/1.5 system-ui,sans-serif;margin:0}
  #cart{max-width:40rem;margin:2rem auto;padding:1.5rem;border:2px solid #bbb;border-radius:8px;background:#f6f6f6}
  .hint{color:#555;font-size:.9rem}
</style></head>
<body>
<main id="cart">
  <h1 id="title">Your cart</h1>
  <p id="message">The cluster's own cart app.</p>
  <p class="hint">Served by the cart app in the (simulated) test cluster, the real app behind the tunnel
    server's route <code>cart</code>.</p>
  <button id="add" type="button">Add an item</button> <span id="count">0</span> items
</main>
<script>
  let count = 0;
  document.querySelector('#add').addEventListener('click', () => (document.querySelector('#count').textContent = String(++count)));
</script>
</body></html>`;

export function createCart() {
  return createServer((req, res) => {
    const { pathname } = new URL(req.url, 'http://cart');
    if (pathname === '/cart') {
      res.writeHead(301, { location: '/cart/' });
      return res.end();
    }
    if (pathname !== '/cart/' && pathname !== '/cart/index.html') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      return res.end('cart: not found\n');
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : PAGE);
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const cart = createCart();
  await new Promise((resolve) => cart.listen(Number(process.argv[2] ?? 0), '127.0.0.1', resolve));
  console.log(JSON.stringify({ port: cart.address().port }));
  process.on('SIGTERM', () => process.exit(0));
}
