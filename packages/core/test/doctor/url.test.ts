import { checkUrl } from '../../src/doctor/url';

describe('the server URL', () => {
  test('an https URL, with or without a path prefix, passes and says where the API is', () => {
    const plain = checkUrl('https://devtunnel.test.example.com');
    expect(plain.result.status).toBe('pass');
    expect(plain.server?.origin).toBe('https://devtunnel.test.example.com');
    expect(plain.result.summary).toContain('no path prefix');
    const prefixed = checkUrl('https://shop.test.example.com/devtunnel/');
    expect(prefixed.result.status).toBe('pass');
    expect(prefixed.result.data).toMatchObject({ base: '/devtunnel' });
    expect(prefixed.result.summary).toContain('https://shop.test.example.com/devtunnel/api/v1/');
  });

  test.each([
    [undefined, 'DEVTUNNEL_SERVER'],
    ['devtunnel.test.example.com', 'https://devtunnel.test.example.com'],
    ['ftp://devtunnel.test.example.com', 'https://devtunnel.test.example.com'],
    ['https://ann:pw@devtunnel.test.example.com', 'DEVTUNNEL_TOKEN'],
    ['https://devtunnel.test.example.com/api/v1', 'Use https://devtunnel.test.example.com '],
    ['https://shop.test.example.com/devtunnel/api/v1/tunnels', 'Use https://shop.test.example.com/devtunnel '],
    ['https://devtunnel.test.example.com/dashboard', 'Use https://devtunnel.test.example.com '],
  ])('%s fails, and the fix says %s', (given, fix) => {
    const { result, server } = checkUrl(given);
    expect(server).toBeUndefined();
    expect(result.status).toBe('fail');
    expect(result.fix).toContain(fix);
  });

  test('a query is ignored by the client: a warning', () => {
    const { result, server } = checkUrl('https://devtunnel.test.example.com/?team=a');
    expect(server).toBeDefined();
    expect(result.status).toBe('warn');
  });
});
