import { ERROR_CODES, type ErrorBody, type ErrorCode } from '@devtunnel/core/protocol';

/**
 * Every failure the server reports over HTTP: a stable code (from the protocol's table, which
 * fixes its status) and a message saying what to do. Turned into a response in one place
 * (`error-response.ts`).
 */
export class HttpError extends Error {
  readonly status: number;
  /** Seconds, for `Retry-After` on 503/429. */
  readonly retryAfter: number | undefined;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: { retryAfter?: number; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = ERROR_CODES[code];
    this.retryAfter = options.retryAfter;
  }

  toJSON(): ErrorBody {
    return { error: { code: this.code, message: this.message } };
  }
}

/**
 * A tunnel port whose client is not connected (`name` its last holder), or that no tunnel holds.
 * One message for the tunnel's own requests and for its port's listener.
 */
export function offlineError(port: number, name: string | undefined): HttpError {
  return new HttpError(
    'tunnel_offline',
    name
      ? `The tunnel "${name}" on port ${port} is offline: the developer's devtunnel client is not connected. Start it again (devtunnel --port …, or the dev server with the devtunnel plugin).`
      : `No tunnel holds port ${port}. Start a devtunnel client to get a port.`,
    { retryAfter: 5 },
  );
}

/** A bad server option: the message names the option and the fix. */
export class InvalidOptionError extends Error {
  readonly code = 'invalid_option';
  constructor(
    message: string,
    /** The option at fault, and what is wrong with it: a CLI names the flag or variable it came from. */
    readonly fault?: { option: string; problem: string },
  ) {
    super(message);
  }
}
