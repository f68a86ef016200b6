/**
 * Libraries never print: they take a logger and default to silence. The CLI passes a console
 * logger; the plugins adapt their host's logger (Vite's `config.logger`, webpack's
 * infrastructure logger).
 */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

const noop = () => {};

export const silentLogger: Logger = Object.freeze({ debug: noop, info: noop, warn: noop, error: noop });
