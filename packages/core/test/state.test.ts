import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadIdentity, safeName } from '../src/state';

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

  test('safeName fits the server pattern', () => {
    expect(safeName('Ann.O\'Neil-5173')).toBe('ann-o-neil-5173');
    expect(safeName('---')).toBe('tunnel');
    expect(safeName('x'.repeat(100))).toHaveLength(63);
  });
});
