/** Error codes: one table of every code a user can meet, and the status each one fixes. */

/**
 * Every error a user can meet, browser-facing or API. Stable: tests, logs, dashboards and users
 * match on these; messages may change.
 */
export const ERROR_CODES = Object.freeze({
  tunnel_offline: 503,
  tunnel_busy: 503,
  queue_full: 503,
  local_app_refused: 502,
  local_app_error: 502,
  local_app_timeout: 504,
  client_disconnected: 502,
  tunnel_timeout: 504,
  bad_response: 502,
  upgrade_not_supported: 501,
  too_many_upgrades: 503,
  method_not_supported: 405,
  headers_too_large: 431,
  request_timeout: 408,
  unauthorized: 401,
  forbidden: 403,
  rate_limited: 429,
  too_many_polls: 429,
  port_range_full: 503,
  unknown_tunnel: 404,
  tunnel_closed: 410,
  tunnel_replaced: 409,
  unknown_route: 404,
  route_name_taken: 409,
  upstream_unreachable: 502,
  upstream_timeout: 504,
  store_unavailable: 503,
  unknown_request: 404,
  request_answered: 409,
  browser_gone: 410,
  invalid_request: 400,
  not_found: 404,
  payload_too_large: 413,
  server_shutting_down: 503,
  internal_error: 500,
} as const);

export type ErrorCode = keyof typeof ERROR_CODES;

/** Whether a string from the other side is one of our codes (a proxy in front may send others). */
export const isErrorCode = (code: unknown): code is ErrorCode => typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);

/**
 * How a request ended, as the client's request log says it: one of the codes above (the local
 * app's failure, or the server's word on the answer, such as `browser_gone`), or one the client
 * alone knows: the browser left before the answer was sent (`cancelled`), or the answer's upload
 * broke (`upload_failed`).
 */
export type RequestErrorCode = ErrorCode | 'cancelled' | 'upload_failed';

/** Error body of the control API and of browser-facing JSON errors. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}
