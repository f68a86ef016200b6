import { linkPrefix } from '../../src/routes/link-page';

describe('linkPrefix: which requests are for the route page, under which prefix', () => {
  test.each([
    ['/__devtunnel', ''],
    ['/__devtunnel/', ''],
    ['/__devtunnel/?use=ann', ''],
    ['/cart/__devtunnel/', '/cart'],
    ['/shop/cart/__devtunnel?use=ann', '/shop/cart'],
    ['/caf%C3%A9/__devtunnel/', '/caf%C3%A9'],
  ])('%s: the page, prefix %j', (url, prefix) => {
    expect(linkPrefix(url)).toBe(prefix);
  });

  test.each([
    ['/cart/', 'not the page'],
    ['/cart/__devtunnel/more', 'a path below it'],
    ['/cart/__devtunnelx/', 'another segment'],
    ['//evil.example/__devtunnel/', 'an empty segment: its links and redirect would leave the site'],
    ['/cart//__devtunnel/', 'an empty segment'],
    ['/cart;Domain=example.com/__devtunnel/', 'a ";", which no gateway prefix has'],
    ['/a b/__devtunnel/', 'a space'],
  ])('%s: not the page (%s)', (url) => {
    expect(linkPrefix(url)).toBeUndefined();
  });
});
