/**
 * One error class for the client library, with a stable `code` (undici's `UND_ERR_*` idea).
 * Tests and callers match on `code`; messages carry context and say what to do.
 */
export type TunnelErrorCode =
  /** An option is missing or malformed; the message names it and the fix. */
  | 'TUNNEL_INVALID_OPTION'
  /** The server refused the registration token (401). Final: retrying cannot help. */
  | 'TUNNEL_UNAUTHORIZED'
  /** The server refused the registration for another reason (4xx). Final. */
  | 'TUNNEL_REGISTRATION_REFUSED'
  /** Every port of the server's range is held by an active tunnel (503 port_range_full). Retried. */
  | 'TUNNEL_PORT_RANGE_FULL'
  /** The server could not be reached or answered 5xx; the client keeps retrying with backoff. */
  | 'TUNNEL_SERVER_UNREACHABLE'
  /** The server speaks something we do not understand (bad frame, unexpected status). */
  | 'TUNNEL_PROTOCOL_ERROR'
  /** `close()` was called or the abort signal fired. */
  | 'TUNNEL_CLOSED'
  /** An administrator closed the tunnel on the server (its dashboard). Final: start the client again. */
  | 'TUNNEL_CLOSED_BY_SERVER'
  /**
   * Another client process with the same identity (a second dev server of the same project, a
   * second CLI for the same local port) took the tunnel over (409 `tunnel_replaced`). Final: that
   * one serves the tunnel now; this one stops rather than take it back.
   */
  | 'TUNNEL_REPLACED';

export class TunnelError extends Error {
  override readonly name = 'TunnelError';
  readonly code: TunnelErrorCode;
  /** HTTP status from the server, when there was one. */
  readonly status: number | undefined;
  /** For `TUNNEL_INVALID_OPTION`: the option and what is wrong with it (a CLI names its flag or variable). */
  readonly fault: { option: string; problem: string } | undefined;

  constructor(code: TunnelErrorCode, message: string, options: { cause?: unknown; status?: number; fault?: { option: string; problem: string } } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status;
    this.fault = options.fault;
  }
}

/** Errors after which retrying is pointless: the user must change something first. */
export function isFinal(error: unknown): boolean {
  const code = (error as TunnelError | undefined)?.code;
  return code === 'TUNNEL_UNAUTHORIZED' || code === 'TUNNEL_REGISTRATION_REFUSED' || code === 'TUNNEL_INVALID_OPTION' || code === 'TUNNEL_PROTOCOL_ERROR' || code === 'TUNNEL_CLOSED' || code === 'TUNNEL_CLOSED_BY_SERVER' || code === 'TUNNEL_REPLACED';
}
