import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { ROOT, watchChild, type Child } from '../helpers/child';
import { freeRange } from '../helpers/tunnel';

/**
 * The packages as a user gets them (`npm run test:packages`, run by .ci/run after `npm run pack`):
 * the tarballs installed outside the workspace into projects made the way users make them, with
 * their dev servers from the registry, and the README's snippets pasted as they are. Needs the
 * npm registry (Vite, webpack, the scaffolder); no network beyond it.
 */
/**
 * Runs a command to its end with no standard input (a scaffolder must not wait for an answer),
 * bounded in time; resolves with its output, rejects with it on a failure.
 */
function run(command: string, args: string[], options: { cwd: string }, timeoutMs = 240_000): Promise<{ stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: '1' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout: out });
      else reject(new Error(`${command} ${args.join(' ')} exited ${String(code)}:\n${out}\n${err}`));
    });
  });
}
const PACK = join(ROOT, '.artifacts', 'pack');
const TOKEN = 'packages-token-0123456789abcdef';
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const tarball = (name: string) => join(PACK, readdirSync(PACK).find((f) => f.startsWith(`devtunnel-${name}-`) && f.endsWith('.tgz'))!);
const npm = (cwd: string, args: string[]) => run('npm', [...args, '--no-audit', '--no-fund', '--loglevel', 'error'], { cwd });

/** The code block of the README that starts with `first` (a comment naming the file). */
function snippet(first: string): string {
  const block = [...readme.matchAll(/```(?:js|ts)\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.startsWith(first));
  if (!block) throw new Error(`no README snippet starting with ${first}`);
  return block;
}

/** Starts a bin the project installed, with this Node and no wrapper between (signals reach it). */
function start(cwd: string, bin: string, args: string[], env: Record<string, string> = {}): Child {
  const child = watchChild(spawn(process.execPath, [join(cwd, 'node_modules', '.bin', bin), ...args], { cwd, env: { ...process.env, NO_COLOR: '1', CI: '', DEVTUNNEL: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
  children.push(child);
  return child;
}

const children: Child[] = [];
let work: string;
let serverUrl: string;

/** Waits for one message on a WebSocket that satisfies `match` (bounded). */
function message(ws: WebSocket, match: (text: string) => boolean, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no matching WebSocket message')), timeoutMs);
    ws.on('message', (data) => {
      const text = data.toString();
      if (!match(text)) return;
      clearTimeout(timer);
      resolve(text);
    });
    ws.once('error', reject);
  });
}

/** The cluster's real `cart` app, which the README's Vite snippet stands in for (route `cart`). */
let cart: Server;
let routePort: number;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'devtunnel-packages-'));
  cart = createServer((_req, res) => res.end('the real cart'));
  await new Promise<void>((resolve) => cart.listen(0, '127.0.0.1', resolve));
  const ports = await freeRange(21);
  routePort = ports.to;
  // The tunnel server, from its tarball (with core's, its one dependency of ours).
  const dir = join(work, 'server');
  mkdirSync(dir);
  await npm(dir, ['init', '-y']);
  await npm(dir, ['install', tarball('core'), tarball('server')]);
  const server = start(dir, 'devtunnel-server', ['--host', '127.0.0.1', '--port', '0', '--tunnel-ports', `${ports.from}-${ports.to - 1}`, '--route', `cart:${routePort}=http://127.0.0.1:${(cart.address() as AddressInfo).port}`], { DEVTUNNEL_TOKEN: TOKEN });
  const listening = JSON.parse(await server.waitForLine((l) => l.includes('"server.listening"'), 60_000)) as { port: number };
  serverUrl = `http://127.0.0.1:${listening.port}`;
});

afterAll(async () => {
  await Promise.all(children.map((c) => c.stop('SIGTERM')));
  cart?.close();
  rmSync(work, { recursive: true, force: true, maxRetries: 5 });
});

describe('the packages, installed from their tarballs outside the workspace', () => {
  test.each(['core', 'server', 'vite-plugin', 'webpack-plugin'])('@devtunnel/%s passes publint and arethetypeswrong', async (name) => {
    const { stdout: lint } = await run(join(ROOT, 'node_modules/.bin/publint'), [join(ROOT, 'packages', name)], { cwd: ROOT });
    expect(lint).toContain('All good!');
    const { stdout: types } = await run(join(ROOT, 'node_modules/.bin/attw'), [tarball(name), '--format', 'json'], { cwd: ROOT });
    // attw lists its problems (an empty object when there are none).
    expect(Object.values((JSON.parse(types) as { problems: Record<string, unknown> }).problems)).toEqual([]);
  });

  test('a Vite app as create-vite makes it: the README snippet, the page and an HMR update through the tunnel', async () => {
    await npm(work, ['create', '-y', 'vite@latest', 'vite-app', '--', '--template', 'vanilla-ts']);
    const app = join(work, 'vite-app');
    await npm(app, ['install']);
    await npm(app, ['install', '--save-dev', tarball('core'), tarball('vite-plugin')]);
    writeFileSync(join(app, 'vite.config.ts'), snippet('// vite.config.ts'));
    const vite = start(app, 'vite', ['--port', '0', '--host', '127.0.0.1', '--clearScreen', 'false'], { DEVTUNNEL_SERVER: serverUrl, DEVTUNNEL_TOKEN: TOKEN, XDG_CONFIG_HOME: join(work, 'vite-state') });
    const line = await vite.waitForLine((l) => l.includes('devtunnel') && l.includes('connected:'), 60_000);
    const base = `http://127.0.0.1:${/:(\d+) →/.exec(line)![1]}`;
    expect(await (await fetch(`${base}/`)).text()).toContain('<div id="app">');
    // The route: the name the status line gives selects this dev server; nobody named, the real cart.
    const name = /\(([a-z0-9-]+)\)\s*$/.exec(line)![1]!;
    const route = `http://127.0.0.1:${routePort}/`;
    expect(await (await fetch(route, { headers: { 'x-devtunnel': name } })).text()).toContain('<div id="app">');
    expect(await (await fetch(route)).text()).toBe('the real cart');
    // The HMR socket through the tunnel, with the token Vite gives the page; an edit arrives.
    const client = await (await fetch(`${base}/@vite/client`)).text();
    const token = /const wsToken = "([^"]+)"/.exec(client)![1];
    const ws = new WebSocket(`${base.replace('http', 'ws')}/?token=${token}`, 'vite-hmr', { origin: base });
    await message(ws, (t) => t.includes('"connected"'));
    await fetch(`${base}/src/counter.ts`); // in the module graph, as a browser would have it
    const update = message(ws, (t) => t.includes('"update"') || t.includes('"full-reload"'));
    writeFileSync(join(app, 'src', 'counter.ts'), readFileSync(join(app, 'src', 'counter.ts'), 'utf8') + '\n// edited\n');
    expect(await update).toMatch(/counter\.ts|full-reload/);
    ws.close();
  });

  test.each([
    ['the README’s require form, in a CommonJS project as npm init -y makes it', 'webpack.config.js', '// webpack.config.js in a CommonJS project'],
    ['the README’s import form, as webpack.config.mjs', 'webpack.config.mjs', '// webpack.config.mjs'],
  ])('a webpack app with %s: the page and an HMR update through the tunnel', async (_name, file, first) => {
    const app = join(work, `webpack-${file.replace(/\W/g, '-')}`);
    mkdirSync(join(app, 'src'), { recursive: true });
    mkdirSync(join(app, 'public'));
    await npm(app, ['init', '-y']);
    await npm(app, ['install', '--save-dev', 'webpack', 'webpack-cli', 'webpack-dev-server', tarball('core'), tarball('webpack-plugin')]);
    writeFileSync(join(app, 'src', 'index.js'), "document.body.textContent = 'webpack through the tunnel';\n");
    writeFileSync(join(app, 'public', 'index.html'), '<!doctype html><title>app</title><script src="/main.js"></script>\n');
    writeFileSync(join(app, file), snippet(first));
    const webpack = start(app, 'webpack', ['serve', '--mode', 'development', '--config', file], { DEVTUNNEL_SERVER: serverUrl, DEVTUNNEL_TOKEN: TOKEN, XDG_CONFIG_HOME: join(work, `state-${file}`) });
    const line = await webpack.waitForLine((l) => l.includes('[devtunnel]') && / → /.test(l), 90_000);
    const base = `http://127.0.0.1:${/:(\d+) →/.exec(line)![1]}`;
    expect(await (await fetch(`${base}/`)).text()).toContain('/main.js');
    expect(await (await fetch(`${base}/main.js`)).text()).toContain('webpack through the tunnel');
    const ws = new WebSocket(`${base.replace('http', 'ws')}/ws`, { origin: base });
    await message(ws, (t) => t.includes('"ok"') || t.includes('"hash"'));
    const rebuilt = message(ws, (t) => t.includes('"invalid"'));
    writeFileSync(join(app, 'src', 'index.js'), "document.body.textContent = 'edited';\n");
    expect(await rebuilt).toContain('invalid');
    ws.close();
  });
});
