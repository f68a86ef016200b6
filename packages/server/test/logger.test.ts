import { createJsonLogger } from '../src/logger';

test('JSON lines with child bindings, filtered by level', () => {
  const lines: string[] = [];
  const root = createJsonLogger((l) => lines.push(l), 'info', { service: 'devtunnel' });
  root.log('debug', 'hidden');
  root.child({ tunnel: 'ann-5173' }).log('warn', 'something', { port: 9003 });
  expect(lines).toHaveLength(1);
  expect(lines[0]!.endsWith('\n')).toBe(true);
  expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'warn', msg: 'something', service: 'devtunnel', tunnel: 'ann-5173', port: 9003, time: expect.any(String) });
});

test('every line is one JSON object, whatever the fields: none, empty, quotes, a field named like a binding', () => {
  const lines: string[] = [];
  const log = createJsonLogger((l) => lines.push(l), 'debug', { tunnel: 'a' });
  log.log('info', 'plain');
  log.log('info', 'empty', {});
  log.log('info', 'say "hi"\n', { path: '/a"b', tunnel: 'b' });
  const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(parsed.map((p) => p.msg)).toEqual(['plain', 'empty', 'say "hi"\n']);
  expect(parsed[0]).toMatchObject({ level: 'info', tunnel: 'a' });
  expect(parsed[2]).toMatchObject({ path: '/a"b', tunnel: 'b' });
});
