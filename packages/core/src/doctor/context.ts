import { request, type Dispatcher } from 'undici';
import { bearer, createEndpoint, type Endpoint } from '../control/dispatcher';
import { HEADER, isErrorCode, type ErrorCode } from '../protocol';
import { VERSION } from '../version';
import type { ProxyChoice } from './proxy';

/**
 * What the checks of the server share once the URL and the proxy are known: the server, the
 * client's own connection pool through the proxy that applies (control/dispatcher.ts), the token,
 * and one bounded call with its answer read whole.
 */
export interface ServerContext {
  server: URL;
  /** The pool, origin and path prefix, as the client's control channel has them. */
  endpoint: Endpoint;
  choice: ProxyChoice;
  token: string | undefined;
  env: Record<string, string | undefined>;
}

/** Every call of the doctor ends within this (connect included): it diagnoses, it does not wait. */
export const CALL_MS = 10_000;

export function createServerContext(server: URL, choice: ProxyChoice, token: string | undefined, env: Record<string, string | undefined>): ServerContext {
  // The proxy the check named, or none: the calls go exactly where the report says.
  return { server, endpoint: createEndpoint(server, choice.proxy ? choice.proxy.href : false), choice, token, env };
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The devtunnel error code, when the tunnel server itself gave the answer. */
  code: ErrorCode | undefined;
  ms: number;
}

/** One call through the client's pool, its answer read whole (its first 64 KiB kept). */
export async function call(ctx: ServerContext, path: string, options: { method?: Dispatcher.HttpMethod; token?: boolean; body?: Buffer } = {}): Promise<Answer> {
  const started = performance.now();
  const headers: Record<string, string> = { 'user-agent': `devtunnel-doctor/${VERSION}` };
  if (options.token && ctx.token) headers.authorization = bearer(ctx.token);
  const res = await request(ctx.endpoint.url(path), {
    dispatcher: ctx.endpoint.dispatcher,
    method: options.method ?? 'GET',
    headers,
    body: options.body,
    headersTimeout: CALL_MS,
    bodyTimeout: CALL_MS,
    signal: AbortSignal.timeout(CALL_MS * 2),
  });
  const text = (await res.body.text()).slice(0, 64 * 1024);
  const header = res.headers[HEADER.error];
  return { status: res.statusCode, headers: res.headers, text, code: isErrorCode(header) ? header : undefined, ms: performance.now() - started };
}

/** The message of a devtunnel error answer (`{"error":{"message"}}`), or a short start of the text. */
export function answerMessage(answer: Answer): string {
  try {
    const message = (JSON.parse(answer.text) as { error?: { message?: unknown } }).error?.message;
    if (typeof message === 'string') return message;
  } catch {
    // not JSON
  }
  const text = answer.text.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim();
  return text.length > 120 ? `${text.slice(0, 117)}…` : text;
}

/** A network failure's code and message, in one phrase: `connect ECONNREFUSED 127.0.0.1:9 (ECONNREFUSED)`. */
export function failureText(error: unknown): { code: string | undefined; text: string } {
  const e = error as Error & { code?: string; cause?: Error & { code?: string } };
  const code = e.cause?.code ?? e.code;
  const message = (e.cause?.message ?? e.message ?? String(error)).trim();
  return { code, text: code && !message.includes(code) ? `${message} (${code})` : message };
}
