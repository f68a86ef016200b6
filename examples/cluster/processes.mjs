// What both demos (examples/cluster, examples/cli) do with processes: start them, wait for a line
// they print (bounded), and on Ctrl+C, SIGTERM or an unexpected exit stop every one of them.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';

const require = createRequire(import.meta.url);
/** The built CLI of one of our packages. */
export const bin = (pkg) => join(dirname(require.resolve(`${pkg}/package.json`)), 'dist', 'cli.js');

export function createProcessGroup() {
  const children = [];
  const closers = [];
  let stopping = false;

  async function stop(code = 0) {
    if (stopping) return;
    stopping = true;
    console.log('\ndemo: stopping…');
    for (const close of closers) close();
    await Promise.all(
      children.map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }),
    );
    console.log('demo: everything stopped.');
    process.exit(code);
  }
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  return {
    stop,
    /** Runs `close` on stop, for what lives in this process (servers). */
    onStop(close) {
      closers.push(close);
    },
    /** A Node child process; its unexpected exit stops the whole demo. */
    run(name, args, options = {}) {
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
      children.push(child);
      child.on('exit', (code, signal) => {
        if (stopping) return;
        console.error(`demo: ${name} exited unexpectedly (${signal ?? code}); stopping.`);
        void stop(1);
      });
      return child;
    },
  };
}

/** The first line of `stream` that matches, within `timeoutMs`. */
export function waitForLine(stream, match, what, timeoutMs = 30_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`demo: timed out waiting for ${what}`)), timeoutMs);
    createInterface({ input: stream }).on('line', (line) => {
      if (!match(line)) return;
      clearTimeout(timer);
      resolve(line);
    });
  });
}

/**
 * The tunnel server, as in the cluster, with no token configured: it generates one and prints it
 * once on stderr. `routes` are its `--route` values (`NAME:PORT=URL[;…]`). Resolves with its URL
 * and that token.
 */
export async function startTunnelServer(group, { routes = [] } = {}) {
  const tunnelPorts = process.env.DEVTUNNEL_TUNNEL_PORTS ?? '9000-9099';
  const args = ['--host', '127.0.0.1', '--port', '0', '--tunnel-ports', tunnelPorts, ...routes.flatMap((r) => ['--route', r])];
  const server = group.run('tunnel server', [bin('@devtunnel/server'), ...args], { env: { ...process.env, DEVTUNNEL_TOKEN: '', DEVTUNNEL_ROUTES: '' } });
  const [tokenLine, listening] = await Promise.all([
    waitForLine(server.stderr, (l) => l.includes('DEVTUNNEL_TOKEN='), 'the generated token'),
    waitForLine(server.stdout, (l) => l.includes('"server.listening"'), 'the tunnel server'),
  ]);
  // The server's JSON log is for clusters; the demos tell the story from the client's side.
  server.stdout.resume();
  return { url: `http://127.0.0.1:${JSON.parse(listening).port}`, token: tokenLine.split('=')[1].trim() };
}
