import { mkdtempSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request, type Dispatcher } from 'undici';
import { createTunnelClient, type TunnelClient, type TunnelInfo, type TunnelOptions } from '@devtunnel/core';
import type { Child } from './child';
import { startEchoApp, type EchoApp } from './echo-app';
import { createTunnelServer, type ServerLogger, type ServerOptions, type TunnelServer } from '@devtunnel/server';

export const TOKEN = 'test-token-0123456789abcdef';

/**
 * Timings scaled down so failure paths run in about a second, keeping the production ladder:
 * poll < client poll deadline < wait-for-poll < local < deadline < keep-alive.
 */
export const fastTimings = Object.freeze({
  pollTimeoutMs: 1_000,
  waitForPollMs: 2_500,
  localTimeoutMs: 2_500,
  deadlineMs: 3_000,
  bodyIdleTimeoutMs: 3_000,
  headersTimeoutMs: 1_000,
  keepAliveTimeoutMs: 5_000,
  leaseMs: 1_500,
  expireMs: 10_000,
  disconnectGraceMs: 300,
  drainTimeoutMs: 2_000,
} satisfies ServerOptions);

/**
 * Long request deadlines on top of `fastTimings`, for tests whose subject is not a deadline but
 * that queue many requests or walk through many steps: on a loaded machine they must not meet the
 * server's `tunnel_busy` or `tunnel_timeout` halfway.
 */
export const patientTimings = Object.freeze({
  waitForPollMs: 10_000,
  deadlineMs: 12_000,
  keepAliveTimeoutMs: 15_000,
} satisfies ServerOptions);

/**
 * A range of tunnel ports unlikely to collide with other test files running in parallel. It stays
 * below Linux's ephemeral range (32768-60999), where the tests' own outgoing connections take
 * their ports; the server skips any port another process holds anyway.
 */
export function portRange(size = 10): string {
  const from = 10_000 + Math.floor(Math.random() * 1_100) * 20;
  return `${from}-${from + size - 1}`;
}

/** A range of `size` ports that are all free right now (checked by binding them); bounded tries. */
export async function freeRange(size: number): Promise<{ from: number; to: number; range: string }> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const from = 10_000 + Math.floor(Math.random() * 22_000);
    const ok = await Promise.all(Array.from({ length: size }, (_, i) => bindable(from + i)));
    if (ok.every(Boolean)) return { from, to: from + size - 1, range: `${from}-${from + size - 1}` };
  }
  throw new Error(`no ${size} free adjacent ports found`);
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createNetServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

/** A JSON-lines logger that keeps lines in memory, for assertions on what was logged. */
export function memoryLogger(): ServerLogger & { lines: Array<Record<string, unknown>>; text(): string } {
  const lines: Array<Record<string, unknown>> = [];
  const make = (bindings: Record<string, unknown>): ServerLogger => ({
    log(level, msg, fields) {
      lines.push({ level, msg, ...bindings, ...fields });
    },
    child: (more) => make({ ...bindings, ...more }),
  });
  return Object.assign(make({}), { lines, text: () => lines.map((l) => JSON.stringify(l)).join('\n') });
}

export async function startServer(options: ServerOptions = {}): Promise<TunnelServer & { url: string }> {
  const server = createTunnelServer({ port: 0, host: '127.0.0.1', token: TOKEN, tunnelPorts: portRange(), ...fastTimings, ...options });
  const { port } = await server.listen();
  return Object.assign(server, { url: `http://127.0.0.1:${port}` });
}

export function stateDir(): string {
  return mkdtempSync(join(tmpdir(), 'devtunnel-test-'));
}

/**
 * The environment of a dev server whose devtunnel plugin a test drives: pointed at `serverUrl`,
 * switched on even under CI, with a state directory of its own.
 */
export function pluginEnv(serverUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return { DEVTUNNEL_SERVER: serverUrl, DEVTUNNEL_TOKEN: TOKEN, DEVTUNNEL: '1', CI: '', XDG_CONFIG_HOME: stateDir(), ...extra };
}

/** Starts a client and waits for its registration. */
export async function startClient(server: { url: string }, options: Partial<TunnelOptions> & { port: number }): Promise<TunnelClient & { info: TunnelInfo }> {
  const client = createTunnelClient({ server: server.url, token: TOKEN, host: '127.0.0.1', stateDir: stateDir(), proxy: false, ...options });
  await client.start();
  return client as TunnelClient & { info: TunnelInfo };
}

/**
 * A tunnel server and a client of it to the local app on `port`, on one transport: on `auto`, both
 * streams are up before it resolves, so every test runs on the transport it names.
 */
export async function tunnelOn(port: number, transport: 'auto' | 'poll' = 'auto', serverOptions: ServerOptions = {}) {
  const server = await startServer(serverOptions);
  const client = await startClient(server, { port, transport });
  if (transport === 'auto') await waitFor(() => server.tunnels()[0]!.downstream && server.tunnels()[0]!.upstreams === 1, 5_000, 'both streams');
  return { server, client, base: `http://127.0.0.1:${client.info.port}` };
}

/** A fresh connection pool per test: nothing leaks between tests. */
export function browser(): Dispatcher {
  return new Agent({ keepAliveTimeout: 1_000, connections: 256 });
}

export interface Fetched {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
  json<T = unknown>(): T;
}

/** One request through undici, body read whole. */
export type FetchOptions = Partial<Omit<Dispatcher.RequestOptions, 'origin' | 'path'>> & { dispatcher?: Dispatcher };

export async function fetchBuffer(url: string, options: FetchOptions = {}): Promise<Fetched> {
  const res = await request(url, { ...options, method: options.method ?? 'GET' } as Parameters<typeof request>[1]);
  const body = Buffer.from(await res.body.arrayBuffer());
  const text = body.toString('utf8');
  return { status: res.statusCode, headers: res.headers, body, text, json: () => JSON.parse(text) };
}

/**
 * Waits until `check()` is true, looking every 20 ms, for at most `timeoutMs`. For state that
 * has no event to wait on (a tunnel's state in the server's listing); never a fixed sleep.
 */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * The shared frame of a suite: one echo app for the whole file, one browser pool, and a list of
 * things each test started, closed after it (newest first). Call inside `describe`.
 */
export function useEchoSuite() {
  const cleanup: Array<() => Promise<unknown>> = [];
  const suite = {
    app: undefined as unknown as EchoApp,
    dispatcher: browser(),
    /** Closes `close` after the current test. */
    defer(close: () => Promise<unknown>) {
      cleanup.push(close);
    },
  };
  beforeAll(async () => {
    suite.app = await startEchoApp();
  });
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!();
  });
  afterAll(async () => {
    await suite.app?.close();
    await suite.dispatcher.close();
  });
  return suite;
}

/**
 * For tests of dev servers run as child processes with a plugin: one tunnel server for the block,
 * a browser-like dispatcher, and the children (push them) stopped after each test.
 */
export function useDevServerSuite() {
  const suite = {
    server: undefined as unknown as Awaited<ReturnType<typeof startServer>>,
    dispatcher: browser(),
    children: [] as Child[],
  };
  beforeAll(async () => {
    suite.server = await startServer();
  });
  afterEach(async () => {
    await Promise.all(suite.children.splice(0).map((c) => c.stop('SIGTERM')));
  });
  afterAll(async () => {
    await suite.server?.close();
    await suite.dispatcher.close();
  });
  return suite;
}

/** The sum of a metric's series on a tunnel server's /metrics (every series whose line starts with `name`). */
export async function metricSum(server: { url: string }, name: string, dispatcher: Dispatcher): Promise<number> {
  const text = (await fetchBuffer(`${server.url}/metrics`, { dispatcher })).text;
  return text.split('\n').filter((l) => l.startsWith(name)).reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}
