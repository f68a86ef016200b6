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

/** A bad server option: the message names the option and the fix. */
export class InvalidOptionError extends Error {
  readonly code = 'invalid_option';
}
