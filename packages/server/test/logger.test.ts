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
