import { isHostAllowed } from '../src/forward';

describe('isHostAllowed (the dev servers\' allow-list rules)', () => {
  test.each([
    ['shop.test.example.com', ['shop.test.example.com'], true],
    ['shop.test.example.com:443', ['shop.test.example.com'], true],
    ['SHOP.test.example.com', ['shop.test.example.com'], true],
    ['test.example.com', ['.test.example.com'], true],
    ['a.b.test.example.com', ['.test.example.com'], true],
    ['nottest.example.com', ['.test.example.com'], false],
    ['evil.example.org', ['shop.test.example.com'], false],
    ['localhost:5173', [], true],
    ['app.localhost', [], true],
    ['127.0.0.1:9003', [], true],
    ['[::1]:5173', [], true],
  ])('%s with %j → %s', (host, list, expected) => {
    expect(isHostAllowed(host, list as string[])).toBe(expected);
  });
});
