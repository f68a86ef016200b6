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
 * A writer that gathers lines and writes them together, at most `delayMs` after the first one or
 * once `maxBytes` are waiting: one syscall (and one wake-up of whoever reads the log: a container
 * runtime, a terminal) for many request lines under load. `flush()` writes what is pending at once
 * (the CLI calls it on exit); the timer never keeps a process alive.
 */
export function createBatchedWriter(write: (text: string) => void, delayMs = 50, maxBytes = 64 * 1024): { write(line: string): void; flush(): void } {
  let pending = '';
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (pending.length === 0) return;
    const text = pending;
    pending = '';
    write(text);
  };
  return {
    write(line) {
      pending += line;
      if (pending.length >= maxBytes) return flush();
      if (!timer) {
        timer = setTimeout(flush, delayMs);
        timer.unref();
      }
    },
    flush,
  };
}

/** JSON lines to `write` (stdout in the CLI), at `level` and above. */
export function createJsonLogger(write: (line: string) => void, level: LogLevel = 'info', bindings: Record<string, unknown> = {}): ServerLogger {
  const min = LEVELS[level];
  // `{"time":…,"level":…,"msg":…` then the bindings, then the fields: keys written later win when
  // a line is read, as with `{ ...bindings, ...fields }`, without copying either object per line.
  const bound = Object.keys(bindings).length > 0 ? ',' + JSON.stringify(bindings).slice(1, -1) : '';
  return {
    log(l, msg, fields) {
      if (LEVELS[l] < min) return;
      const rest = fields === undefined ? '}' : JSON.stringify(fields);
      write(`{"time":"${new Date().toISOString()}","level":"${l}","msg":${JSON.stringify(msg)}${bound}${rest.length > 2 ? ',' + rest.slice(1) : '}'}\n`);
    },
    child(more) {
      return createJsonLogger(write, level, { ...bindings, ...more });
    },
  };
}
