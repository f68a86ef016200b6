import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { VERSION } from '../src/version';

test('VERSION matches package.json', () => {
  expect(VERSION).toBe(JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')).version);
});
