import { createRouter } from '../../src/control/router';

describe('control router', () => {
  const match = createRouter([
    { method: '*', path: '/healthz', handler: 'health' },
    { method: 'GET', path: '/api/v1/tunnels/:id', handler: 'check' },
    { method: 'DELETE', path: '/api/v1/tunnels/:id', handler: 'deregister' },
    { method: 'POST', path: '/api/v1/tunnels/:id/requests/:rid', handler: 'upload' },
  ]);

  test('matches segment by segment, with parameters; `*` takes every method', () => {
    expect(match('POST', '/healthz')).toEqual({ kind: 'route', handler: 'health', params: {} });
    expect(match('GET', '/api/v1/tunnels/abc')).toEqual({ kind: 'route', handler: 'check', params: { id: 'abc' } });
    expect(match('POST', '/api/v1/tunnels/t/requests/r')).toEqual({ kind: 'route', handler: 'upload', params: { id: 't', rid: 'r' } });
  });

  test('a path that exists with other methods names them; anything else matches nothing', () => {
    expect(match('PUT', '/api/v1/tunnels/abc')).toEqual({ kind: 'method', allow: ['GET', 'DELETE'] });
    expect(match('GET', '/api/v1/tunnels/abc/other')).toEqual({ kind: 'none' });
    expect(match('GET', '/healthz/')).toEqual({ kind: 'none' });
    expect(match('GET', '/api/v1/tunnels/a/requests/b/extra')).toEqual({ kind: 'none' });
  });
});
