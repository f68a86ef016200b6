import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { PortAssignment } from './ports';

/**
 * Port assignments on disk (`--state-file`), so the same developer gets the same port after a
 * server restart. Written atomically (temp file + rename) and coalesced: at most one write in
 * flight, the latest state wins. The file holds client ids, which act as credentials for a port:
 * it is created 0600.
 */
export interface StateStore {
  load(): Promise<PortAssignment[]>;
  /** Schedules a write of `entries()`; cheap to call often. */
  save(): void;
  /** Waits for pending writes. */
  flush(): Promise<void>;
}

interface StateFileV1 {
  version: 1;
  assignments: PortAssignment[];
}

export function createStateStore(file: string, entries: () => PortAssignment[], onError: (error: Error) => void): StateStore {
  let writing: Promise<void> | undefined;
  let dirty = false;

  async function writeLoop(): Promise<void> {
    while (dirty) {
      dirty = false;
      const body: StateFileV1 = { version: 1, assignments: entries() };
      const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
      try {
        await mkdir(dirname(file), { recursive: true });
        await writeFile(tmp, JSON.stringify(body, null, 2) + '\n', { mode: 0o600 });
        await rename(tmp, file);
      } catch (error) {
        onError(error as Error);
      }
    }
  }

  return {
    async load() {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw error;
      }
      const notOurs = () => new Error(`${file} is not a devtunnel state file (version 1); move it away or fix --state-file.`);
      let parsed: Partial<StateFileV1> | null;
      try {
        parsed = JSON.parse(text) as Partial<StateFileV1> | null;
      } catch {
        throw notOurs();
      }
      if (parsed?.version !== 1 || !Array.isArray(parsed.assignments)) throw notOurs();
      return parsed.assignments;
    },
    save() {
      dirty = true;
      writing ??= writeLoop().finally(() => {
        writing = undefined;
      });
    },
    async flush() {
      while (writing) await writing;
    },
  };
}
