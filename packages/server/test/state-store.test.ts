import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStateStore } from '../src/state-store';
import type { PortAssignment } from '../src/ports';

const file = () => join(mkdtempSync(join(tmpdir(), 'devtunnel-store-')), 'nested', 'state.json');

describe('server state file', () => {
  test('writes atomically, 0600, latest state wins; loads it back', async () => {
    const path = file();
    let entries: PortAssignment[] = [{ clientId: 'a', port: 9000, name: 'a', lastActive: 1 }];
    const store = createStateStore(path, () => entries, (e) => { throw e; });
    store.save();
    entries = [...entries, { clientId: 'b', port: 9001, name: 'b', lastActive: 2 }];
    store.save();
    await store.flush();
    expect(JSON.parse(readFileSync(path, 'utf8')).assignments).toHaveLength(2);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(await store.load()).toEqual(entries);
  });

  test('a missing file is an empty state; a foreign file is an error that names it', async () => {
    const path = file();
    const store = createStateStore(path, () => [], () => {});
    expect(await store.load()).toEqual([]);
    store.save();
    await store.flush();
    writeFileSync(path, JSON.stringify({ something: 'else' }));
    await expect(store.load()).rejects.toThrow(path);
  });

  test('a file that is not JSON at all (cut short, say) is the same named error, not a parser message', async () => {
    const path = file();
    const store = createStateStore(path, () => [], () => {});
    store.save();
    await store.flush();
    writeFileSync(path, '{"version": 1, "assign');
    await expect(store.load()).rejects.toThrow(`${path} is not a devtunnel state file`);
  });
});
