import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { promisify } from 'node:util';
import { k8sManifestDefaults } from '../../packages/server/src/k8s/options';
import { serverDefaults } from '../../packages/server/src/options';
import { ROOT, watchChild, type Child } from '../helpers/child';
import { startEchoApp, type EchoApp, type EchoBody } from '../helpers/echo-app';
import { browser, fetchBuffer, portRange, startClient, TOKEN } from '../helpers/tunnel';

/**
 * The container image without a Docker engine: the Dockerfile's invariants, read from its text,
 * and its build stage's real work (packages/server/container/assemble.sh) run for real, then the
 * result started exactly as the image's CMD, configured by DEVTUNNEL_* variables only.
 */
const DOCKERFILE = join(ROOT, 'packages/server/Dockerfile');
const ASSEMBLE = join(ROOT, 'packages/server/container/assemble.sh');
const run = promisify(execFile);

interface Instruction {
  keyword: string;
  args: string;
  /** 0 for the first FROM's stage, 1 for the next… */
  stage: number;
}

/** Dockerfile instructions: comments dropped, `\` continuations joined, keywords upper-cased. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let stage = -1;
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || (!pending && line === '')) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const full = (pending + line).trim();
    pending = '';
    const m = /^(\S+)\s+([\s\S]*)$/.exec(full);
    if (!m) throw new Error(`unparsable Dockerfile line: ${full}`);
    const keyword = m[1]!.toUpperCase();
    if (keyword === 'FROM') stage++;
    out.push({ keyword, args: m[2]!.trim(), stage });
  }
  return out;
}

/** `ENV a=b c=d` (the unquoted form this Dockerfile uses). */
function envOf(instructions: Instruction[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of instructions.filter((x) => x.keyword === 'ENV')) {
    for (const pair of i.args.split(/\s+/)) {
      const m = /^([A-Z_][A-Z0-9_]*)=(\S*)$/.exec(pair);
      if (!m) throw new Error(`ENV in a form this test does not read: ${i.args}`);
      env[m[1]!] = m[2]!;
    }
  }
  return env;
}

function exposedPorts(instructions: Instruction[]): Set<number> {
  const ports = new Set<number>();
  for (const i of instructions.filter((x) => x.keyword === 'EXPOSE')) {
    for (const spec of i.args.split(/\s+/)) {
      const m = /^(\d+)(?:-(\d+))?(?:\/tcp)?$/.exec(spec);
      if (!m) throw new Error(`EXPOSE entry this test does not read: ${spec}`);
      for (let p = Number(m[1]); p <= Number(m[2] ?? m[1]); p++) ports.add(p);
    }
  }
  return ports;
}

function range(text: string): number[] {
  const [from, to] = text.split('-').map(Number) as [number, number];
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

const dockerfileText = readFileSync(DOCKERFILE, 'utf8');
const instructions = parseDockerfile(dockerfileText);
const lastStage = Math.max(...instructions.map((i) => i.stage));
const runtime = instructions.filter((i) => i.stage === lastStage);
const runtimeEnv = envOf(runtime);
const cmd = JSON.parse(runtime.find((i) => i.keyword === 'CMD')!.args) as string[];
const healthcheck = runtime.find((i) => i.keyword === 'HEALTHCHECK');
/** The health check's `node -e` script. */
const healthScript = (JSON.parse(/\bCMD\s+(\[[\s\S]*\])$/.exec(healthcheck?.args ?? '')?.[1] ?? '[]') as string[])[2] ?? '';

/** npm's own variables (set by `npm test`) must not steer the npm calls of the script. */
function cleanEnv(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => !/^npm_/i.test(e[0]) && e[1] !== undefined));
}

function runNode(args: string[], env: Record<string, string>): Child {
  return watchChild(spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] }));
}

describe('the Dockerfile', () => {
  test('Node 24 base images; the build stage builds and runs assemble.sh into /app', () => {
    const froms = instructions.filter((i) => i.keyword === 'FROM');
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const from of froms) expect(from.args).toMatch(/^node:24[-.\w]*(@sha256:[0-9a-f]{64})?(\s+AS\s+\w+)?$/i);
    // Why not Node 20, for the next reader.
    expect(dockerfileText).toMatch(/Node 20/);
    expect(dockerfileText).toContain('CVE-2026-58044');
    const build = instructions.filter((i) => i.stage === 0 && i.keyword === 'RUN').map((i) => i.args).join('\n');
    expect(build).toMatch(/npm ci\b[\s\S]*npm run build[\s\S]*sh packages\/server\/container\/assemble\.sh \/app/);
    expect(runtime.some((i) => i.keyword === 'COPY' && /--from=\S+\s+\/app\s+\/app$/.test(i.args))).toBe(true);
  });

  test('the runtime: non-root, configured by DEVTUNNEL_* only, health check, volume, ports, SIGTERM', () => {
    expect(runtime.filter((i) => i.keyword === 'USER').at(-1)?.args).toBe('node');
    expect(runtimeEnv).toEqual({
      NODE_ENV: 'production',
      DEVTUNNEL_HOST: '0.0.0.0',
      DEVTUNNEL_PORT: String(serverDefaults.port),
      DEVTUNNEL_TUNNEL_PORTS: serverDefaults.tunnelPorts,
      DEVTUNNEL_STATE_FILE: k8sManifestDefaults.stateFile,
    });
    // The state file lives on the volume, and the generated Kubernetes manifests agree.
    expect(runtime.find((i) => i.keyword === 'VOLUME')?.args).toBe(posix.dirname(runtimeEnv.DEVTUNNEL_STATE_FILE!));
    expect(k8sManifestDefaults.port).toBe(Number(runtimeEnv.DEVTUNNEL_PORT));
    expect(k8sManifestDefaults.tunnelPorts).toBe(runtimeEnv.DEVTUNNEL_TUNNEL_PORTS);
    const exposed = exposedPorts(runtime);
    expect(exposed.has(Number(runtimeEnv.DEVTUNNEL_PORT))).toBe(true);
    for (const port of range(runtimeEnv.DEVTUNNEL_TUNNEL_PORTS!)) expect(exposed.has(port)).toBe(true);
    expect(healthcheck?.args).toMatch(/--interval=\d+s/);
    expect(healthcheck?.args).toMatch(/\bCMD \["node", "-e", /);
    expect(healthScript).toContain('/healthz');
    expect(healthScript).toContain('process.env.DEVTUNNEL_PORT');
    expect(runtime.find((i) => i.keyword === 'STOPSIGNAL')?.args).toBe('SIGTERM');
    expect(cmd).toEqual(['node', '/app/node_modules/@devtunnel/server/dist/cli.js']);
    expect(runtime.find((i) => i.keyword === 'WORKDIR')?.args).toBe('/app');
  });

  test('.dockerignore keeps node_modules, dist, .artifacts and .git out of the build context', () => {
    const patterns = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
    // `**/`: a bare `node_modules` matches only the root's, not the workspaces'.
    for (const p of ['**/node_modules', '**/dist', '.artifacts', '.git']) expect(patterns).toContain(p);
  });
});

describe('packages/server/container/assemble.sh', () => {
  test('refuses a missing argument (exit 2) and a non-empty out dir (exit 1), saying why', async () => {
    await expect(run('sh', [ASSEMBLE], { env: cleanEnv(), timeout: 10_000 })).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('Usage:') });
    const dir = mkdtempSync(join(tmpdir(), 'devtunnel-assemble-'));
    try {
      writeFileSync(join(dir, 'left-over'), '');
      await expect(run('sh', [ASSEMBLE, dir], { env: cleanEnv(), timeout: 10_000 })).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('is not empty') });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('the assembled runtime', () => {
    let work: string;
    let out: string;
    let app: EchoApp;
    const dispatcher = browser();
    const cleanup: Array<() => Promise<unknown>> = [];

    beforeAll(async () => {
      work = mkdtempSync(join(tmpdir(), 'devtunnel-image-'));
      out = join(work, 'app');
      // Real `npm pack` and `npm install` from the registry: generous, and bounded.
      const { stdout } = await run('sh', [ASSEMBLE, out], { cwd: ROOT, env: cleanEnv(), timeout: 280_000, maxBuffer: 16 * 1024 * 1024 });
      expect(stdout).toContain('is ready');
      app = await startEchoApp();
    }, 300_000);
    afterEach(async () => {
      while (cleanup.length) await cleanup.pop()!();
    });
    afterAll(async () => {
      await app?.close();
      await dispatcher.close();
      if (work) rmSync(work, { recursive: true, force: true });
    });

    /** Top-level packages of a node_modules directory, scoped ones included. */
    function installed(dir: string): string[] {
      const names: string[] = [];
      for (const entry of readdirSync(join(dir, 'node_modules'))) {
        if (entry.startsWith('.')) continue;
        if (entry.startsWith('@')) for (const sub of readdirSync(join(dir, 'node_modules', entry))) names.push(`${entry}/${sub}`);
        else names.push(entry);
      }
      return names;
    }

    test('production dependencies only, one @devtunnel/core (the packed one), and the CMD path exists', () => {
      expect(existsSync(cmd[1]!.replace(/^\/app\//, `${out}/`))).toBe(true);
      const names = installed(out);
      const rootDev = Object.keys((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }).devDependencies);
      for (const dev of [...rootDev, 'jest', 'typescript', 'vite', 'tsup', 'ts-jest', 'webpack', 'esbuild']) expect(names).not.toContain(dev);
      expect(names.filter((n) => n.startsWith('@types/'))).toEqual([]);
      // Everything installed is reachable from the two packages' dependencies (peers included).
      const reachable = new Set<string>();
      const visit = (name: string) => {
        if (reachable.has(name) || !existsSync(join(out, 'node_modules', name, 'package.json'))) return;
        reachable.add(name);
        const pkg = JSON.parse(readFileSync(join(out, 'node_modules', name, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
        for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies, ...pkg.peerDependencies })) visit(dep);
      };
      visit('@devtunnel/server');
      visit('@devtunnel/core');
      expect(names.filter((n) => !reachable.has(n))).toEqual([]);
      expect(existsSync(join(out, 'node_modules/@devtunnel/server/node_modules'))).toBe(false);
      const coreVersion = (JSON.parse(readFileSync(join(ROOT, 'packages/core/package.json'), 'utf8')) as { version: string }).version;
      expect((JSON.parse(readFileSync(join(out, 'node_modules/@devtunnel/core/package.json'), 'utf8')) as { version: string }).version).toBe(coreVersion);
    });

    test("started as the image's CMD with DEVTUNNEL_* only: health, readiness, JSON logs, a tunnel, the HEALTHCHECK, SIGTERM drains and exits 0", async () => {
      const data = join(work, 'data');
      mkdirSync(data, { recursive: true });
      // The image's environment, with what a test must change: loopback, port 0, a free-ish range.
      const env: Record<string, string> = {
        ...runtimeEnv,
        DEVTUNNEL_HOST: '127.0.0.1',
        DEVTUNNEL_PORT: '0',
        DEVTUNNEL_TUNNEL_PORTS: portRange(),
        DEVTUNNEL_STATE_FILE: join(data, 'state.json'),
        DEVTUNNEL_TOKEN: TOKEN,
      };
      expect(Object.keys(env).filter((k) => !k.startsWith('DEVTUNNEL_') && !(k in runtimeEnv))).toEqual([]);
      expect(cmd[0]).toBe('node');
      const server = watchChild(spawn(process.execPath, [cmd[1]!.replace(/^\/app\//, `${out}/`)], { cwd: out, env, stdio: ['ignore', 'pipe', 'pipe'] }));
      cleanup.push(() => server.stop('SIGKILL'));

      const listening = JSON.parse(await server.waitForLine((l) => l.includes('"server.listening"'))) as { port: number; stateFile: string };
      expect(listening.stateFile).toBe(env.DEVTUNNEL_STATE_FILE);
      const url = `http://127.0.0.1:${listening.port}`;
      expect((await fetchBuffer(`${url}/healthz`, { dispatcher })).status).toBe(200);
      expect((await fetchBuffer(`${url}/readyz`, { dispatcher })).status).toBe(200);

      // The image's HEALTHCHECK command, run as Docker would, finds the server healthy.
      const healthy = runNode(['-e', healthScript], { DEVTUNNEL_PORT: String(listening.port) });
      expect(await healthy.exited()).toBe(0);

      const client = await startClient({ url }, { port: app.port, name: 'in-the-image' });
      cleanup.push(() => client.close());
      await server.waitForLine((l) => l.includes('"tunnel.registered"') && l.includes('in-the-image'));
      const res = await fetchBuffer(`http://127.0.0.1:${client.info.port}/through/the/image`, { dispatcher });
      expect(res.status).toBe(200);
      expect(res.json<EchoBody>().url).toBe('/through/the/image');

      server.process.kill('SIGTERM');
      expect(await server.exited(15_000)).toBe(0);
      for (const msg of ['server.signal', 'server.draining', 'server.closed']) expect(server.lines.some((l) => l.includes(`"msg":"${msg}"`))).toBe(true);
      // Every stdout line is one JSON object with a message; the token is never in it.
      for (const line of server.lines) expect(JSON.parse(line)).toMatchObject({ msg: expect.any(String) });
      expect(server.lines.join('\n')).not.toContain(TOKEN);
      expect(server.stderr()).toBe('');

      // And the HEALTHCHECK notices a server that is gone.
      const unhealthy = runNode(['-e', healthScript], { DEVTUNNEL_PORT: String(listening.port) });
      expect(await unhealthy.exited()).toBe(1);
    }, 60_000);
  });
});
