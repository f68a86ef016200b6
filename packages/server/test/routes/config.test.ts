import { parseRoute, resolveRoute } from '../../src/routes/config';

describe('routes: the --route form', () => {
  test('NAME:PORT=URL with options after ";"', () => {
    expect(parseRoute('cart:8101=http://cart.shop.svc.cluster.local:80')).toEqual({ name: 'cart', port: 8101, upstream: 'http://cart.shop.svc.cluster.local:80' });
    expect(parseRoute(' cart:8101=https://cart:8443;offline=error;public-url=https://shop.example/cart ')).toEqual({ name: 'cart', port: 8101, upstream: 'https://cart:8443', offline: 'error', publicUrl: 'https://shop.example/cart' });
  });

  test('resolved: the upstream is an origin, the public URL has no trailing slash', () => {
    const r = resolveRoute('cart:8101=http://Cart.Shop:80/;public-url=https://shop.example/cart/');
    expect(r).toMatchObject({ name: 'cart', port: 8101, upstream: 'http://cart.shop', offline: 'fallback', publicUrl: 'https://shop.example/cart' });
    expect(resolveRoute({ name: 'search', port: 8102, upstream: 'http://[::1]:9000' }).upstream).toBe('http://[::1]:9000');
  });

  test.each([
    ['cart', /NAME:PORT=URL/],
    ['cart:x=http://a', /NAME:PORT=URL/],
    ['cart:0=http://a', /port must be a port number/],
    ['cart:70000=http://a', /port must be a port number/],
    ['Cart:8101=http://a', /lower-case/],
    ['cart:8101=cart.svc', /http:\/\/ or https:\/\//],
    ['cart:8101=http://user:pw@a', /user or password/],
    ['cart:8101=http://a/prefix', /origin only/],
    ['cart:8101=http://a/?q=1', /origin only/],
    ['cart:8101=http://a;offline=sometimes', /unknown option/],
    ['cart:8101=http://a;public-url=shop', /public-url must be/],
  ])('%s is refused: %s', (text, message) => {
    expect(() => resolveRoute(text)).toThrow(message);
  });
});
