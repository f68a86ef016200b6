import { mkdtempSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTunnelClient } from '@devtunnel/core';
import { CLIENT_BIN, runBin } from '../helpers/child';
import { rawExchange } from '../helpers/net';
import { useEchoSuite, fetchBuffer, freeRange, memoryLogger, startClient, startServer, stateDir, TOKEN, waitFor } from '../helpers/tunnel';

/** Ports: stable per developer, across client and server restarts; never shared. */
describe('tunnel ports', () => {
  const suite = useEchoSuite();
  const { dispatcher } = suite;

  async function server(options: Parameters<typeof startServer>[0] = {}) {
    const s = await startServer(options);
    suite.defer(() => s.close());
    return s;
  }
  async function client(s: { url: string }, options: Partial<Parameters<typeof startClient>[1]> = {}) {
    const c = await startClient(s, { port: suite.app.port, ...options });
    suite.defer(() => c.close());
    return c;
  }

  test('the same developer gets the same port after a client restart', async () => {
    const s = await server();
    const dir = stateDir();
    const first = await client(s, { stateDir: dir });
    const port = first.info.port;
    await first.close();
    // Another developer registers meanwhile and must not get the reserved port.
    const other = await client(s, { stateDir: stateDir() });
    expect(other.info.port).not.toBe(port);
    const again = await client(s, { stateDir: dir });
    expect(again.info.port).toBe(port);
    expect((await fetchBuffer(`http://127.0.0.1:${port}/`, { dispatcher })).status).toBe(200);
  });

  test('every tunnel port is served alike, the first and those handed over: answers, headers sent too slowly cut, refusals logged with their port', async () => {
    const logger = memoryLogger();
    const s = await server({ logger, headersTimeoutMs: 1_000 });
    const tunnels = [await client(s, { name: 'first' }), await client(s, { name: 'second' }), await client(s, { name: 'third' })];
    for (const c of tunnels) {
      const res = await fetchBuffer(`http://127.0.0.1:${c.info.port}/on-${c.info.name}`, { dispatcher });
      expect([res.status, res.json<{ url: string }>().url]).toEqual([200, `/on-${c.info.name}`]);
      // A request line and half its headers, then nothing: Node's headers timeout answers 408.
      const slow = await rawExchange(c.info.port, `GET /slow HTTP/1.1\r\nHost: 127.0.0.1:${c.info.port}\r\nX-Half: `, 5_000);
      expect(slow.statuses).toEqual([408]);
      expect(slow.closedByServer).toBe(true);
      expect(logger.lines.filter((l) => l.msg === 'request.rejected' && l.code === 'request_timeout').map((l) => l.port)).toContain(c.info.port);
    }
  });

  test('two developers never share a port, even when one asks for the other\'s', async () => {
    const s = await server();
    const alice = await client(s);
    const bob = await client(s, { preferredPort: alice.info.port });
    expect(bob.info.port).not.toBe(alice.info.port);
    // Both answer, each on its own port.
    expect((await fetchBuffer(`http://127.0.0.1:${alice.info.port}/`, { dispatcher })).status).toBe(200);
    expect((await fetchBuffer(`http://127.0.0.1:${bob.info.port}/`, { dispatcher })).status).toBe(200);
  });

  test('a free preferred port is honoured', async () => {
    const { from, range } = await freeRange(4);
    const s = await server({ tunnelPorts: range });
    const c = await client(s, { preferredPort: from + 3 });
    expect(c.info.port).toBe(from + 3);
  });

  test('a full range reuses the port of the tunnel inactive the longest; all active → 503', async () => {
    const { from: base, range } = await freeRange(2);
    const narrow = await server({ tunnelPorts: range });
    const a = await client(narrow);
    const b = await client(narrow);
    expect(new Set([a.info.port, b.info.port])).toEqual(new Set([base, base + 1]));
    await a.close(); // a's port stays reserved for a, but a is no longer active
    const c = await client(narrow);
    expect(c.info.port).toBe(a.info.port);
    // b and c are active: nobody can be evicted.
    const d = createTunnelClient({ server: narrow.url, token: TOKEN, port: suite.app.port, host: '127.0.0.1', stateDir: stateDir(), proxy: false });
    suite.defer(() => d.close());
    const refused = new Promise((resolve) => d.once('reconnecting', (e) => resolve(e.error.code)));
    void d.start().catch(() => {});
    expect(await refused).toBe('TUNNEL_PORT_RANGE_FULL');
  });

  test('a port another process holds is skipped', async () => {
    const { from, range } = await freeRange(2);
    const squatter = createServer();
    await new Promise<void>((resolve, reject) => {
      squatter.once('error', reject);
      squatter.listen(from, '127.0.0.1', resolve);
    });
    suite.defer(() => new Promise((resolve) => squatter.close(resolve)));
    const narrow = await server({ tunnelPorts: range });
    const c = await client(narrow);
    expect(c.info.port).toBe(from + 1);
  });

  test('with --state-file, a server restart keeps every assignment and the client comes back by itself', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'devtunnel-state-')), 'state.json');
    const first = await startServer({ stateFile: file });
    const controlPort = first.port;
    const tunnelPorts = first.options.tunnelPorts;
    const c = createTunnelClient({ server: first.url, token: TOKEN, port: suite.app.port, host: '127.0.0.1', stateDir: stateDir(), proxy: false });
    suite.defer(() => c.close());
    const info = await c.start();
    expect((await fetchBuffer(`http://127.0.0.1:${info.port}/before`, { dispatcher })).status).toBe(200);

    const back = new Promise<{ port: number; reconnected: boolean }>((resolve) => c.on('registered', (e) => e.reconnected && resolve(e)));
    await first.close();
    const saved = JSON.parse(await readFile(file, 'utf8')) as { version: number; assignments: Array<{ port: number }> };
    expect(saved.version).toBe(1);
    expect(saved.assignments.map((a) => a.port)).toContain(info.port);

    // A new server process on the same control port, with a state file but a forgetful client:
    // the client's preferred port is not what matters, the server's memory is.
    const second = await startServer({ stateFile: file, port: controlPort, tunnelPorts });
    suite.defer(() => second.close());
    const again = await back;
    expect(again.port).toBe(info.port);
    expect((await fetchBuffer(`http://127.0.0.1:${info.port}/after`, { dispatcher })).status).toBe(200);
  });

  test('the state file survives a restart even for a client that forgot its last port', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'devtunnel-state-')), 'state.json');
    const dir = stateDir();
    const first = await startServer({ stateFile: file });
    const c1 = await startClient(first, { port: suite.app.port, stateDir: dir });
    const port = c1.info.port;
    await c1.close();
    await first.close();
    const second = await server({ stateFile: file, tunnelPorts: first.options.tunnelPorts });
    // Before the owner is back, its port answers "offline" by name rather than refusing.
    const offline = await fetchBuffer(`http://127.0.0.1:${port}/`, { dispatcher });
    expect(offline.headers['x-devtunnel-error']).toBe('tunnel_offline');
    // Same identity, but its own memory of the port is gone: the server's memory decides.
    const stateFile = join(dir, 'state.json');
    const clientState = JSON.parse(await readFile(stateFile, 'utf8')) as { ports: Record<string, number> };
    clientState.ports = {};
    await writeFile(stateFile, JSON.stringify(clientState));
    const c2 = await client(second, { stateDir: dir });
    expect(c2.info.port).toBe(port);
  });

  test('a client that vanished goes offline, then expires; its port stays reserved for its owner', async () => {
    // Expiry 5 s after the last sign of life: "offline" (the 300 ms grace after the kill) shows
    // well before it, however late the test looks.
    const s = await server({ leaseMs: 1_500, expireMs: 5_000 });
    const dir = stateDir();
    const child = runBin(CLIENT_BIN, ['--server', s.url, '--port', String(suite.app.port), '--host', '127.0.0.1', '--state-dir', dir, '--json'], { DEVTUNNEL_TOKEN: TOKEN });
    suite.defer(() => child.stop('SIGKILL'));
    const { port, id } = JSON.parse(await child.waitForLine((l) => l.includes('"registered"'))) as { port: number; id: string };
    await child.stop('SIGKILL'); // Ctrl+C of a dev server that has no exit hook looks like this
    const state = () => s.tunnels().find((t) => t.port === port)?.state;
    await waitFor(() => state() === 'offline', 5_000, 'offline');
    await waitFor(() => state() === 'expired', 10_000, 'expiry');
    expect(s.tunnels().find((t) => t.port === port)?.id).toBeUndefined();
    // Another developer cannot take it while a free port exists; its owner gets it back.
    const other = await client(s);
    expect(other.info.port).not.toBe(port);
    const back = await client(s, { stateDir: dir });
    expect(back.info.port).toBe(port);
    expect(back.info.id).not.toBe(id);
  });
});
