import { tunnelDefaults } from '../options';
import { clusterDomain } from '../plugin-kit/settings';
import { checkApi } from './api';
import { checkConnect } from './connect';
import { createServerContext } from './context';
import { checkDns } from './dns';
import { checkLocalApp } from './local-app';
import { checkProxy } from './proxy';
import { checkSpeed } from './speed';
import { checkStreams } from './streams';
import { checkToken } from './token';
import type { CheckId, CheckResult, DoctorOptions, DoctorReport } from './types';
import { checkUrl } from './url';

export type { CheckId, CheckResult, CheckStatus, DoctorOptions, DoctorReport } from './types';

/**
 * `devtunnel doctor`: the checks in the order a connection needs them, each on what the one
 * before it established. The proxy comes before DNS, because it decides whose name the laptop
 * resolves (the proxy's, or the server's). A failure skips the checks that depend on it; the
 * local app is checked whatever happened to the server. Nothing is registered.
 */

/** The server's checks, in order, for the skipped ones' lines. */
const SERVER_CHECKS: ReadonlyArray<[CheckId, string]> = [
  ['proxy', 'Proxy'],
  ['dns', 'DNS'],
  ['connect', 'TCP and TLS'],
  ['api', 'Control API'],
  ['token', 'Token'],
  ['streams', 'Streams'],
  ['speed', 'Speed'],
];

export async function runDoctor(options: DoctorOptions = {}): Promise<DoctorReport> {
  const env = options.env ?? {};
  const checks: CheckResult[] = [];
  const add = (result: CheckResult) => {
    checks.push(result);
    options.onCheck?.(result);
    return result;
  };
  /** Skips `from` and every server check after it. */
  const skipFrom = (from: CheckId, because: string) => {
    for (const [id, title] of SERVER_CHECKS.slice(SERVER_CHECKS.findIndex(([c]) => c === from))) add({ id, title, status: 'skip', summary: because });
  };

  const url = checkUrl(options.server);
  add(url.result);
  if (url.server) await serverChecks(url.server);
  else skipFrom('proxy', 'It needs a valid server URL.');

  if (options.port === undefined) {
    add({ id: 'local-app', title: 'Local app', status: 'skip', summary: 'Give --port to check that the local app answers and accepts the cluster\'s host.' });
  } else if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) {
    add({ id: 'local-app', title: 'Local app', status: 'fail', summary: `--port ${options.port} is no port of a local app.`, fix: 'Give the port your dev server listens on, from 1 to 65535, e.g. --port 5173.' });
  } else {
    const target = {
      host: (options.host ?? tunnelDefaults.host).replace(/^\[(.*)\]$/, '$1'),
      port: options.port,
      https: options.https ?? tunnelDefaults.https,
      rewriteHost: options.rewriteHost ?? tunnelDefaults.rewriteHost,
      allowedHosts: options.allowedHosts,
    };
    for (const result of await checkLocalApp(target, url.server?.host, url.server ? clusterDomain(url.server.href) : undefined)) add(result);
  }
  return { ok: !checks.some((c) => c.status === 'fail'), checks };

  async function serverChecks(server: URL): Promise<void> {
    const { result, choice } = checkProxy(server, options.proxy, env);
    add(result);
    if (!choice) return skipFrom('dns', 'The proxy setting is no URL.');
    if (add(await checkDns(server, choice)).status === 'fail') return skipFrom('connect', 'The name does not resolve.');
    const ctx = createServerContext(server, choice, options.token, env);
    try {
      if (add(await checkConnect(ctx)).status === 'fail') return skipFrom('api', 'The server cannot be reached.');
      const api = await checkApi(ctx);
      if (add(api.result).status === 'fail') return skipFrom('token', 'The control API check failed.');
      const token = add(await checkToken(ctx));
      // /healthz with a protocol: a server that has the probe (both came with the doctor).
      const probe = token.status === 'pass' && api.result.data?.protocol !== null;
      if (token.status !== 'pass') add({ id: 'streams', title: 'Streams', status: 'skip', summary: 'The probe needs an accepted token.' });
      else if (!probe) add({ id: 'streams', title: 'Streams', status: 'skip', summary: 'This server has no probe (it is older than this client). The client tries its streams itself and falls back to long polls if they do not pass.' });
      else add(await checkStreams(ctx, api.features));
      add(await checkSpeed(ctx, probe));
    } finally {
      await ctx.endpoint.dispatcher.destroy();
    }
  }
}
