/**
 * The server logs one JSON object per line (what log collectors in a cluster expect), with a child
 * logger per tunnel so every line carries its context (frp's `xlog`). Never log tokens, secrets,
 * cookies, `Authorization` or bodies.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface ServerLogger {
  log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void;
  child(bindings: Record<string, unknown>): ServerLogger;
}

export const silentLogger: ServerLogger = Object.freeze({
  log() {},
  child() {
    return silentLogger;
  },
});

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/**
 * A writer that gathers lines and writes them once per event-loop turn: one syscall for many
 * request lines under load, the same output otherwise. `flush()` writes what is pending at once.
 */
export function createBatchedWriter(write: (text: string) => void): { write(line: string): void; flush(): void } {
  let pending: string[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (pending.length === 0) return;
    const text = pending.join('');
    pending = [];
    write(text);
  };
  return {
    write(line) {
      pending.push(line);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    flush,
  };
}

/** JSON lines to `write` (stdout in the CLI), at `level` and above. */
export function createJsonLogger(write: (line: string) => void, level: LogLevel = 'info', bindings: Record<string, unknown> = {}): ServerLogger {
  const min = LEVELS[level];
  return {
    log(l, msg, fields) {
      if (LEVELS[l] < min) return;
      write(JSON.stringify({ time: new Date().toISOString(), level: l, msg, ...bindings, ...fields }) + '\n');
    },
    child(more) {
      return createJsonLogger(write, level, { ...bindings, ...more });
    },
  };
}
