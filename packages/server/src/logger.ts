import { closingFields } from '@devtunnel/core/protocol';

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

/** JSON lines to `write` (stdout in the CLI), at `level` and above. */
export function createJsonLogger(write: (line: string) => void, level: LogLevel = 'info', bindings: Record<string, unknown> = {}): ServerLogger {
  const min = LEVELS[level];
  // `{"time":…,"level":…,"msg":…` then the bindings, then the fields: keys written later win when
  // a line is read, as with `{ ...bindings, ...fields }`, without copying either object per line.
  const bound = Object.keys(bindings).length > 0 ? ',' + JSON.stringify(bindings).slice(1, -1) : '';
  return {
    log(l, msg, fields) {
      if (LEVELS[l] < min) return;
      write(`{"time":"${new Date().toISOString()}","level":"${l}","msg":${JSON.stringify(msg)}${bound}${closingFields(fields)}\n`);
    },
    child(more) {
      return createJsonLogger(write, level, { ...bindings, ...more });
    },
  };
}
