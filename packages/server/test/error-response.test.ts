import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { request } from 'undici';
import { escapeHtml, sendError } from '../src/error-response';
import { HttpError } from '../src/errors';
import { closeServer, listen } from '../../../test/helpers/net';

describe('error responses', () => {
  const error = new HttpError('tunnel_offline', 'The tunnel "<img src=x onerror=alert(1)>" is offline.', { retryAfter: 5 });
  let port: number;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => sendError(req, res, error, { context: 'tunnel <b>x</b>' }));
  beforeAll(async () => {
    port = await listen(server);
  });
  afterAll(() => closeServer(server));

  const get = async (headers: Record<string, string>) => {
    const res = await request(`http://127.0.0.1:${port}/`, { headers });
    return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
  };

  test('a navigation gets an escaped HTML page with a strict CSP', async () => {
    const res = await get({ accept: 'text/html', 'sec-fetch-mode': 'navigate' });
    expect(res.status).toBe(503);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['content-security-policy']).toBe("default-src 'none'; style-src 'unsafe-inline'");
    expect(res.text).not.toContain('<img');
    expect(res.text).not.toContain('<b>');
    expect(res.text).toContain('&lt;img src=x onerror=alert(1)&gt;');
  });

  test('fetch and HMR traffic never get HTML, even when they accept it', async () => {
    const res = await get({ accept: 'text/html, */*', 'sec-fetch-mode': 'cors' });
    expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
  });

  test('API callers get JSON with the code; every answer has the code header and Retry-After', async () => {
    const res = await get({ accept: 'application/json' });
    expect(JSON.parse(res.text)).toEqual({ error: { code: 'tunnel_offline', message: error.message } });
    expect(res.headers['x-devtunnel-error']).toBe('tunnel_offline');
    expect(res.headers['retry-after']).toBe('5');
    expect(res.headers['cache-control']).toBe('no-store');
  });

  test('escapeHtml covers the five special characters', () => {
    expect(escapeHtml(`<a href="x" onclick='y'>&</a>`)).toBe('&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
  });
});
