import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLIENT_ID_PATTERN } from '../src/protocol';
import { clientIdBase, loadIdentity, safeName } from '../src/state';

const server = new URL('https://devtunnel.test.example.com');
const dir = () => mkdtempSync(join(tmpdir(), 'devtunnel-state-'));

describe('client state file', () => {
  test('keeps one identity per laptop and the last port per server and local port', async () => {
    const d = dir();
    const first = await loadIdentity(d, server, 5173);
    expect(first.clientId).toMatch(/^[^@]+@[^:]+:5173#[0-9a-f]{32}$/);
    expect(first.lastPort).toBeUndefined();
    await first.savePort(9003);
    const again = await loadIdentity(d, server, 5173);
    expect(again.clientId).toBe(first.clientId);
    expect(again.lastPort).toBe(9003);
    const otherPort = await loadIdentity(d, server, 8080);
    expect(otherPort.lastPort).toBeUndefined();
    expect(otherPort.clientId.split('#')[1]).toBe(first.clientId.split('#')[1]);
    expect(statSync(join(d, 'state.json')).mode & 0o777).toBe(0o600);
  });

  test('two tunnels of one laptop do not erase each other\'s ports', async () => {
    const d = dir();
    const a = await loadIdentity(d, server, 1111);
    const b = await loadIdentity(d, server, 2222);
    await a.savePort(9001);
    await b.savePort(9002);
    expect((await loadIdentity(d, server, 1111)).lastPort).toBe(9001);
  });

  test('a corrupt file is replaced, never fatal', async () => {
    const d = dir();
    writeFileSync(join(d, 'state.json'), '{not json');
    const id = await loadIdentity(d, server, 3000);
    expect(id.clientId).toContain('#');
  });

  test('stateDir false: a new identity each time, nothing written', async () => {
    const a = await loadIdentity(false, server, 3000);
    const b = await loadIdentity(false, server, 3000);
    expect(a.clientId).not.toBe(b.clientId);
  });

  test('a state folder that cannot be written: a warning that names it, and a working identity that is not kept', async () => {
    const d = dir();
    writeFileSync(join(d, 'a-file'), '');
    const warnings: string[] = [];
    // A folder below a regular file cannot be made (ENOTDIR), whoever runs the test.
    const unwritable = join(d, 'a-file', 'devtunnel');
    const a = await loadIdentity(unwritable, server, 3000, undefined, (m) => warnings.push(m));
    expect(a.clientId).toMatch(CLIENT_ID_PATTERN);
    expect(a.lastPort).toBeUndefined();
    await a.savePort(9001);
    expect(warnings).toEqual([expect.stringContaining(unwritable)]);
    expect(warnings[0]).toContain('--state-dir');
    const b = await loadIdentity(unwritable, server, 3000, undefined, () => {});
    expect(b.clientId).not.toBe(a.clientId);
  });

  test('client ids fit the server pattern whatever the user and host names are', () => {
    const key = `#${'0'.repeat(32)}`;
    const longestLabel = `${'x'.repeat(63)}~12345678`;
    expect(clientIdBase('John Smith', 'laptop', '5173')).toBe('John_Smith@laptop:5173');
    expect(clientIdBase('jürgen', 'Jürgens MacBook', '5173')).toBe('j_rgen@J_rgens_MacBook:5173');
    for (const [user, host] of [['John Smith', 'laptop'], ['jürgen', 'büro'], ['', ''], ['u'.repeat(300), 'h'.repeat(300)]]) {
      expect(clientIdBase(user!, host!, longestLabel) + key).toMatch(CLIENT_ID_PATTERN);
    }
    // Names that already fit are kept as they were: existing identities (and ports) stay.
    expect(clientIdBase('ann', 'ann-laptop.local', '5173')).toBe('ann@ann-laptop.local:5173');
  });

  test('safeName fits the server pattern', () => {
    expect(safeName('Ann.O\'Neil-5173')).toBe('ann-o-neil-5173');
    expect(safeName('---')).toBe('tunnel');
    expect(safeName('x'.repeat(100))).toHaveLength(63);
  });
});
