import type { Dispatcher } from 'undici';
import { HEADER, isErrorCode, type ErrorBody, type ErrorCode } from '../protocol';

/** A non-2xx answer from the server, with its error code when it sent one of ours. */
export class ServerAnswerError extends Error {
  constructor(
    readonly status: number,
    readonly serverCode: ErrorCode | undefined,
    message: string,
    readonly retryAfterMs: number | undefined,
  ) {
    super(message);
  }
}

type Headers = Record<string, string | string[] | undefined>;

/** Retry-After in seconds (RFC 9110 §10.2.3), capped at 5 minutes; a date or garbage is ignored. */
export function retryAfter(headers: Headers): number | undefined {
  const v = headers['retry-after'];
  const s = Array.isArray(v) ? v[0] : v;
  if (!s) return undefined;
  const n = Number(s);
  return Number.isFinite(n) && n >= 0 ? Math.min(n, 300) * 1000 : undefined;
}

/** A non-2xx answer as an error, with the server's code and Retry-After when it sent them. */
export function answerError(statusCode: number, headers: Headers, text: string, what: string): ServerAnswerError {
  let code: ErrorCode | undefined;
  let message = `${what}: the server answered ${statusCode}`;
  try {
    const parsed = JSON.parse(text) as Partial<ErrorBody>;
    if (isErrorCode(parsed.error?.code)) {
      code = parsed.error.code;
      message = `${what}: ${parsed.error.message} (${statusCode} ${code})`;
    }
  } catch {
    // Not our JSON: a proxy or something else answered. Keep the status-only message.
  }
  const headerCode = headers[HEADER.error];
  return new ServerAnswerError(statusCode, code ?? (isErrorCode(headerCode) ? headerCode : undefined), message, retryAfter(headers));
}

/** {@link answerError} for an answer of undici's `request()`, whose body it reads. */
export async function responseError(res: Dispatcher.ResponseData, what: string): Promise<ServerAnswerError> {
  const text = await res.body.text().catch(() => '');
  return answerError(res.statusCode, res.headers, text, what);
}
