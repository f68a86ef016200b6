import { paths } from '../protocol';
import { answerMessage, call, failureText, type ServerContext } from './context';
import type { CheckResult } from './types';

/**
 * The registration token, checked without registering a tunnel: `GET /api/v1/tunnels` takes the
 * same token as registration and changes nothing (no port, no entry on the dashboard). A wrong
 * token counts towards the server's budget of failed tokens per address (30 a minute), as a
 * client's would; the doctor sends it once.
 */
export async function checkToken(ctx: ServerContext): Promise<CheckResult> {
  const title = 'Token';
  const fail = (summary: string, fix: string, data?: Record<string, unknown>): CheckResult => ({ id: 'token', title, status: 'fail', summary, fix, ...(data ? { data } : {}) });
  if (!ctx.token) return fail('No token was given.', 'Set DEVTUNNEL_TOKEN (or --token) to the token the tunnel server was started with; its operator has it.');
  try {
    const answer = await call(ctx, paths.tunnels, { token: true });
    const data = { status: answer.status, code: answer.code ?? null };
    if (answer.status === 200) {
      let tunnels: number | undefined;
      try {
        tunnels = (JSON.parse(answer.text) as { tunnels?: unknown[] }).tunnels?.length;
      } catch {
        // counted only for the summary
      }
      return { id: 'token', title, status: 'pass', summary: `Accepted (GET ${paths.tunnels}: ${tunnels ?? 'some'} tunnel${tunnels === 1 ? '' : 's'} on the server; nothing was registered).`, data: { ...data, tunnels: tunnels ?? null } };
    }
    if (answer.code === 'unauthorized') return fail('The server refused the token (401).', 'Check DEVTUNNEL_TOKEN / --token against the token the server was started with (copied whole, no quotes or spaces).', data);
    if (answer.code === 'rate_limited') return fail('The server refuses tokens from this address for a minute: too many wrong ones came from it (429).', 'Wait a minute, then fix the token. Colleagues behind the same office address share this budget.', data);
    return fail(`GET ${paths.tunnels} answered ${answer.status}${answer.code ? ` ${answer.code}` : ''}: ${answerMessage(answer) || 'no message'}.`, answer.code ? 'See docs/errors.md for this code.' : 'Something in front of the server answered, not the server (a login gateway?): the control API must be reachable as it is.', data);
  } catch (error) {
    return fail(`GET ${paths.tunnels} failed: ${failureText(error).text}.`, 'The server answered /healthz a moment ago: run the doctor again; if it persists, something on the way cuts API calls.');
  }
}
