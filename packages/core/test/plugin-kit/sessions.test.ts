import type { TunnelClient } from '../../src/client';
import type { TunnelOptions } from '../../src/options';
import { createDevServerSessions, type DevServerListening } from '../../src/plugin-kit/sessions';
import { pluginSettings, type PluginSettings } from '../../src/plugin-kit/settings';
import type { StatusLog } from '../../src/plugin-kit/status';

/** A client that records what the sessions do with it; no sockets. */
function fakeClient(options: TunnelOptions) {
  const client = {
    options,
    status: 'connecting' as TunnelClient['status'],
    info: undefined,
    retargets: [] as Array<{ port?: number; host?: string; https?: boolean }>,
    closes: 0,
    start: () => new Promise(() => {}),
    on: () => client,
    off: () => client,
    once: () => client,
    retarget(target: { port?: number; host?: string; https?: boolean }) {
      client.retargets.push(target);
    },
    close() {
      client.closes++;
      client.status = 'closed';
      return Promise.resolve();
    },
  };
  return client;
}
type FakeClient = ReturnType<typeof fakeClient>;

/** Sessions whose tunnels are fakes; `opened` lists them in order, `lines` what was logged. */
function setup(graceMs?: number, refuse = false) {
  const opened: FakeClient[] = [];
  const lines: string[] = [];
  const log: StatusLog = { info: (m) => lines.push(`info ${m}`), warn: (m) => lines.push(`warn ${m}`), error: (m) => lines.push(`error ${m}`) };
  const sessions = createDevServerSessions({
    graceMs,
    start: (options, startLog, firstLine) => {
      lines.push(`start${firstLine ? ' with firstLine' : ''}`);
      expect(startLog).toBe(log);
      if (refuse) return undefined;
      const client = fakeClient(options);
      opened.push(client);
      return client as unknown as TunnelClient;
    },
  });
  const settings: PluginSettings = pluginSettings({ server: 'https://devtunnel.test.example.com', token: 'a-token-0123456789', name: 'shop' }, {}, 'x');
  const listen = (port: number, more: Partial<DevServerListening> = {}) =>
    sessions.listening({ project: '/work/shop', address: { address: '127.0.0.1', family: 'IPv4', port }, https: false, options: {}, settings, allowedHosts: undefined, log, ...more });
  return { sessions, opened, lines, log, settings, listen };
}

afterEach(() => {
  jest.useRealTimers();
});

describe('createDevServerSessions (one tunnel per project across dev server restarts)', () => {
  test('the first dev server opens a tunnel to the address it really listens on, the project as its identity', () => {
    const { opened, lines, listen } = setup();
    const session = listen(5173, {
      address: { address: '0.0.0.0', family: 'IPv4', port: 5174 },
      https: true,
      options: { rewriteHost: true, name: 'ignored' },
      allowedHosts: ['.test.example.com'],
      connectingLine: 'Tunnel: connecting…',
      firstLine: (info) => info.url,
    })!;
    expect(session).toMatchObject({ reused: false, running: true });
    expect(session.client).toBe(opened[0]);
    expect(opened[0]!.options).toEqual({
      rewriteHost: true,
      name: 'shop',
      server: 'https://devtunnel.test.example.com',
      token: 'a-token-0123456789',
      port: 5174,
      host: '127.0.0.1',
      https: true,
      identity: '/work/shop',
      allowedHosts: ['.test.example.com'],
    });
    // The connecting line comes before anything the start itself logs.
    expect(lines).toEqual(['info Tunnel: connecting…', 'start with firstLine']);
  });

  test("an identity in the plugin's options wins over the project", () => {
    const { opened, listen } = setup();
    listen(5173, { options: { identity: 'mine' } });
    expect(opened[0]!.options.identity).toBe('mine');
  });

  test('a restart within the grace: the same tunnel, retargeted, and not closed when the grace ends', () => {
    jest.useFakeTimers();
    const { opened, lines, listen } = setup(5_000);
    const first = listen(5173)!;
    first.release();
    jest.advanceTimersByTime(4_000);
    const second = listen(5174, { https: true, connectingLine: 'Tunnel: connecting…' })!;
    expect(second).toMatchObject({ reused: true, running: true });
    expect(second.client).toBe(first.client);
    expect(opened).toHaveLength(1);
    expect(opened[0]!.retargets).toEqual([{ host: '127.0.0.1', port: 5174, https: true }]);
    // No second tunnel, so no connecting line either.
    expect(lines).toEqual(['start']);
    jest.advanceTimersByTime(60_000);
    expect(opened[0]!.closes).toBe(0);
  });

  test('no restart within the grace: the tunnel deregisters, and the next dev server opens a new one', () => {
    jest.useFakeTimers();
    const { opened, listen } = setup(5_000);
    listen(5173)!.release();
    jest.advanceTimersByTime(4_999);
    expect(opened[0]!.closes).toBe(0);
    jest.advanceTimersByTime(1);
    expect(opened[0]!.closes).toBe(1);
    expect(listen(5173)).toMatchObject({ reused: false });
    expect(opened).toHaveLength(2);
  });

  test('without a grace, release() deregisters at once', () => {
    const { opened, listen } = setup();
    listen(5173)!.release();
    expect(opened[0]!.closes).toBe(1);
  });

  test('a tunnel that stopped for good is dropped: the next dev server opens a new one', () => {
    jest.useFakeTimers();
    const { opened, listen } = setup(5_000);
    const first = listen(5173)!;
    opened[0]!.status = 'closed'; // a refused token, a takeover
    expect(first.running).toBe(false);
    first.release();
    const second = listen(5173)!;
    expect(second).toMatchObject({ reused: false, running: true });
    expect(second.client).toBe(opened[1]);
    expect(opened[0]!.retargets).toEqual([]);
    // The dropped session's grace does not close the new tunnel.
    jest.advanceTimersByTime(60_000);
    expect(opened[1]!.closes).toBe(0);
  });

  test('refused options: no tunnel to wait for, nothing kept, the next dev server tries again', async () => {
    const { lines, listen } = setup(undefined, true);
    const session = listen(5173)!;
    expect(session).toMatchObject({ client: undefined, reused: false, running: false });
    session.release();
    await session.close();
    listen(5173);
    expect(lines).toEqual(['start', 'start']);
  });

  test('a dev server on a pipe: a warning, no session, no tunnel', () => {
    const { opened, lines, listen } = setup();
    expect(listen(5173, { address: '/tmp/vite.sock' })).toBeUndefined();
    expect(listen(5173, { address: null })).toBeUndefined();
    expect(opened).toHaveLength(0);
    expect(lines).toEqual(['warn the dev server listens on a pipe, not a port: nothing to tunnel.', 'warn the dev server listens on a pipe, not a port: nothing to tunnel.']);
  });

  test('close() is idempotent, forgets the session, and cancels a pending grace', async () => {
    jest.useFakeTimers();
    const { opened, listen } = setup(5_000);
    const session = listen(5173)!;
    session.release();
    const closing = session.close();
    expect(session.close()).toBe(closing);
    await closing;
    jest.advanceTimersByTime(60_000);
    expect(opened[0]!.closes).toBe(1);
    expect(session.running).toBe(false);
    // Released after the close (a server's 'close' after the host's shutdown): nothing more.
    session.release();
    jest.advanceTimersByTime(60_000);
    expect(opened[0]!.closes).toBe(1);
    expect(listen(5173)).toMatchObject({ reused: false });
  });

  test("closing an old session leaves the project's newer tunnel alone", () => {
    const { opened, listen } = setup();
    const old = listen(5173)!;
    opened[0]!.status = 'closed';
    const newer = listen(5173)!;
    void old.close();
    expect(listen(5174)!.client).toBe(newer.client);
    expect(opened).toHaveLength(2);
  });

  test('the project, the tunnel server and the name each make a session of their own', () => {
    const { opened, settings, listen } = setup();
    listen(5173);
    listen(5174, { project: '/work/cart' });
    listen(5175, { settings: { ...settings, server: 'https://devtunnel.other.example.com' } });
    listen(5176, { settings: { ...settings, name: undefined } });
    expect(opened).toHaveLength(4);
    expect(listen(5177, { project: '/work/cart' })).toMatchObject({ reused: true });
  });
});
