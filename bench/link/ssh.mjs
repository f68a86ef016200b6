// `ssh -R` as a tunnel to compare with: an sshd of our own (no root: a user's sshd can only log
// that user in, which is all we need) stands in the cluster, the laptop's `ssh -R` reaches it
// through the line, and the remote forward's port is what the gateway proxies to. Skipped, with a
// note saying why, when there is no sshd, ssh or ssh-keygen, or sshd does not start (as root it
// wants its privilege separation user and /run/sshd). LINK_SSHD names an sshd off the PATH.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';

const which = (cmd, ...fallbacks) => {
  const found = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim();
  return found || fallbacks.find((f) => existsSync(f));
};

async function freePort() {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/** Resolves once something accepts connections on `port`, or rejects after `ms`. */
async function accepting(port, ms) {
  const until = Date.now() + ms;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = connect({ port, host: '127.0.0.1' }, () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listens on ${port} after ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * @param {{ line: { open(name: string, port: number): Promise<number> }, localPort: number, dir: string }} options
 * @returns {Promise<{ note: string, remotePort?: number, close?: () => void }>}
 */
export async function startSshTunnel({ line, localPort, dir }) {
  const sshd = process.env.LINK_SSHD || which('sshd', '/usr/sbin/sshd', '/usr/local/sbin/sshd');
  const ssh = which('ssh');
  const keygen = which('ssh-keygen');
  if (!sshd || !ssh || !keygen) return { note: `ssh -R: skipped, no ${!sshd ? 'sshd' : !ssh ? 'ssh' : 'ssh-keygen'} on this machine.` };
  const children = [];
  const close = () => children.forEach((c) => c.exitCode === null && c.kill('SIGTERM'));
  try {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const key of ['host', 'user']) {
      const r = spawnSync(keygen, ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, key)]);
      if (r.status !== 0) throw new Error(`ssh-keygen: ${r.stderr}`);
    }
    const sshdPort = await freePort();
    const config = join(dir, 'sshd_config');
    writeFileSync(
      config,
      [`Port ${sshdPort}`, 'ListenAddress 127.0.0.1', `HostKey ${join(dir, 'host')}`, `AuthorizedKeysFile ${join(dir, 'user.pub')}`, `PidFile ${join(dir, 'sshd.pid')}`, 'StrictModes no', 'UsePAM no', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'AllowTcpForwarding yes', 'GatewayPorts no', 'LogLevel ERROR', ''].join('\n'),
    );
    const daemon = spawn(sshd, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(daemon);
    let daemonErr = '';
    daemon.stderr.on('data', (d) => (daemonErr += d));
    await accepting(sshdPort, 10_000).catch((e) => {
      throw new Error(`${e.message}: ${daemonErr.trim()}`);
    });
    const legPort = await line.open('laptop-ssh', sshdPort);
    const remotePort = await freePort();
    const client = spawn(ssh, ['-N', '-T', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'ExitOnForwardFailure=yes', '-o', 'LogLevel=ERROR', '-i', join(dir, 'user'), '-p', String(legPort), '-R', `127.0.0.1:${remotePort}:127.0.0.1:${localPort}`, `${userInfo().username}@127.0.0.1`], { stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(client);
    let clientErr = '';
    client.stderr.on('data', (d) => (clientErr += d));
    await accepting(remotePort, 15_000).catch((e) => {
      throw new Error(`${e.message}: ${clientErr.trim() || daemonErr.trim()}`);
    });
    return { note: `ssh -R: OpenSSH (${spawnSync(ssh, ['-V'], { encoding: 'utf8' }).stderr.trim()}), its own sshd as this user.`, remotePort, close };
  } catch (error) {
    close();
    return { note: `ssh -R: skipped, ${error.message}` };
  }
}
