import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir, hostname, userInfo } from 'node:os';
import { basename, join } from 'node:path';

/**
 * The laptop-side memory of a tunnel: a random key that makes this machine's identity
 * unguessable, and the tunnel port last assigned per server and local port, which the client
 * asks for again so a developer keeps their port across restarts.
 */
interface StateFile {
  version: 1;
  key: string;
  ports: Record<string, number>;
}

export interface ClientIdentity {
  clientId: string;
  defaultName: string;
  /** The name on a route: the user alone (`ann`), so one name selects all of a developer's tunnels. */
  routeName: string;
  lastPort: number | undefined;
  /** Remembers the port the server assigned (no-op without a state directory). */
  savePort(port: number): Promise<void>;
}

/** `$XDG_CONFIG_HOME/devtunnel`, else `~/.config/devtunnel` (XDG Base Directory spec). */
export function defaultStateDir(): string {
  const xdg = process.env.XDG_CONFIG_HOME;
  return join(xdg && xdg.startsWith('/') ? xdg : join(homedir(), '.config'), 'devtunnel');
}

function userName(): string {
  try {
    return userInfo().username || 'user';
  } catch {
    return 'user';
  }
}

/**
 * The client id before its key, as the server takes it (printable ASCII without spaces, 200
 * characters with the key's 33): `John Smith` → `John_Smith`, `jürgen` → `j_rgen`; the user and
 * host are cut to fit beside the longest label (72). The random key keeps ids apart.
 */
export function clientIdBase(user: string, host: string, label: string): string {
  const part = (raw: string, max: number) => raw.replace(/[^\x21-\x7e]/g, '_').slice(0, max) || '_';
  return `${part(user, 32)}@${part(host, 60)}:${label}`;
}

/** A display name safe for the server's pattern: `ann-5173`. */
export function safeName(raw: string): string {
  const s = raw.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+/, '').slice(0, 63).replace(/-+$/, '');
  return s || 'tunnel';
}

async function readState(file: string): Promise<StateFile | undefined> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as Partial<StateFile>;
    if (parsed.version === 1 && typeof parsed.key === 'string' && /^[0-9a-f]{16,64}$/.test(parsed.key)) {
      return { version: 1, key: parsed.key, ports: typeof parsed.ports === 'object' && parsed.ports ? parsed.ports : {} };
    }
  } catch {
    // Missing or unreadable: start afresh. A corrupt file must never stop a tunnel.
  }
  return undefined;
}

async function writeState(dir: string, file: string, state: StateFile): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(tmp, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  await rename(tmp, file);
}

/**
 * Loads (or creates) this laptop's identity for `server` + what makes the tunnel the same one
 * next time: `identity` when given (a plugin passes the project's root, so a dev server that moved
 * from port 5173 to 5174 keeps its tunnel), else the local port. With `dir === false`
 * nothing is read or written and the identity is new each run.
 */
export async function loadIdentity(dir: string | false, server: URL, localPort: number, identity?: string, warn: (message: string) => void = () => {}): Promise<ClientIdentity> {
  const user = userName();
  // The client id must be short printable ASCII: a path is named by its last part and a hash.
  const label = identity === undefined ? String(localPort) : `${safeName(basename(identity))}~${createHash('sha256').update(identity).digest('hex').slice(0, 8)}`;
  const base = clientIdBase(user, hostname(), label);
  const slot = `${server.origin} ${identity ?? localPort}`;
  const defaultName = safeName(`${user}-${identity === undefined ? localPort : basename(identity)}`);
  const routeName = safeName(user);
  const forgetful = (): ClientIdentity => ({ clientId: `${base}#${randomBytes(16).toString('hex')}`, defaultName, routeName, lastPort: undefined, savePort: async () => {} });
  if (dir === false) return forgetful();
  const file = join(dir, 'state.json');
  let state = await readState(file);
  if (!state) {
    state = { version: 1, key: randomBytes(16).toString('hex'), ports: {} };
    try {
      await writeState(dir, file, state);
    } catch (error) {
      // A read-only home or a ~/.config owned by root must not stop the tunnel: it runs, and only
      // forgets its identity (and so its port) when it ends.
      warn(`devtunnel: cannot write the state file in ${dir} (${(error as Error).message}): the tunnel runs, but may get another port next time. Point --state-dir (stateDir) at a writable folder.`);
      return forgetful();
    }
  }
  const current = state;
  return {
    clientId: `${base}#${current.key}`,
    defaultName,
    routeName,
    lastPort: typeof current.ports[slot] === 'number' ? current.ports[slot] : undefined,
    async savePort(port) {
      // Re-read so that two tunnels of the same laptop do not erase each other's ports.
      const fresh = (await readState(file)) ?? current;
      if (fresh.ports[slot] === port) return;
      fresh.ports[slot] = port;
      await writeState(dir, file, fresh);
    },
  };
}
