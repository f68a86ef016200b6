import type { Readable } from 'node:stream';
import { createCancel } from '../cancel';
import { createForwarder, isHostAllowed, originOf, type LocalResponse } from '../forward';
import { discard } from '../http-call';
import type { RequestMessage } from '../protocol';
import { VERSION } from '../version';
import type { CheckResult } from './types';

/**
 * The local app, through the client's own forwarder (forward.ts), so the doctor sends what the
 * client would: first with the app's own address as `Host` (does it answer at all?), then with
 * the host a browser in the cluster sends, after the client's `--rewrite-host` and
 * `--allowed-hosts` rules. Vite's and webpack-dev-server's host checks answer that second request
 * 403; each is recognised by its text, so the fix can name the setting.
 */
export interface LocalAppTarget {
  host: string;
  port: number;
  https: boolean;
  rewriteHost: boolean;
  allowedHosts: string[] | undefined;
}

/** Generous: a dev server may compile a page on its first request. */
const LOCAL_MS = 15_000;
/** Enough of a body to recognise a host check's message. */
const BODY_BYTES = 8 * 1024;

const VITE_BLOCKED = /Blocked request\. This host \(/;
const WEBPACK_BLOCKED = /Invalid Host header/;

/** The start of a response's body, as text; the rest is dropped. */
async function bodyStart(res: LocalResponse): Promise<string> {
  if (res.bytes) return res.bytes.subarray(0, BODY_BYTES).toString('utf8');
  const body = res.body as Readable | null;
  if (!body) return '';
  const chunks: Buffer[] = [];
  let size = 0;
  body.on('error', () => {});
  try {
    for await (const chunk of body) {
      chunks.push(chunk as Buffer);
      size += (chunk as Buffer).length;
      if (size >= BODY_BYTES) break;
    }
  } catch {
    // a body cut short tells as much as a whole one here
  } finally {
    discard(body);
  }
  return Buffer.concat(chunks).subarray(0, BODY_BYTES).toString('utf8');
}

/** The forwarder's message without its advice, which is written for a browser's error page. */
const firstSentence = (message: string) => message.split(/\.( |$)/)[0]!.replace(" on the developer's machine", '');

/** What the client would send as `Host` for a browser's `host`. */
function sentHost(target: LocalAppTarget, host: string): string {
  const local = originOf(target).replace(/^https?:\/\//, '');
  if (target.rewriteHost || (target.allowedHosts && !isHostAllowed(host, target.allowedHosts))) return local;
  return host;
}

/**
 * The two checks: `local-app`, and `host-check` for `clusterHost` (the server URL's host, which
 * the tunnel's pages are served under); `domain` (`.test.example.com`) names what to allow.
 */
export async function checkLocalApp(target: LocalAppTarget, clusterHost: string | undefined, domain: string | undefined): Promise<CheckResult[]> {
  const where = originOf(target);
  const local = where.replace(/^https?:\/\//, '');
  const forwarder = createForwarder({ ...target }, () => ({ localTimeoutMs: LOCAL_MS, bodyIdleTimeoutMs: LOCAL_MS }));
  const get = async (host: string) => {
    const message: RequestMessage = { type: 'request', id: 'doctor', method: 'GET', url: '/', headers: [['host', host], ['accept', 'text/html,*/*'], ['user-agent', `devtunnel-doctor/${VERSION}`]], bodyLength: 0 };
    const started = performance.now();
    const res = await forwarder.forward(message, null, createCancel());
    return { status: res.head.status, error: res.head.error, text: await bodyStart(res), ms: Math.round(performance.now() - started) };
  };
  try {
    const own = await get(local);
    if (own.error) {
      return [
        { id: 'local-app', title: 'Local app', status: 'fail', summary: `${firstSentence(own.error.message)}.`, fix: `Start your dev server, or give the port (--port) and host (--host${target.https ? '' : ', --https'}) it listens on.`, data: { origin: where, code: own.error.code } },
        { id: 'host-check', title: 'Host check', status: 'skip', summary: 'The local app does not answer.' },
      ];
    }
    const results: CheckResult[] = [{ id: 'local-app', title: 'Local app', status: 'pass', summary: `${where} answers GET / with ${own.status} (${own.ms} ms).`, data: { origin: where, status: own.status, ms: own.ms } }];
    if (!clusterHost) {
      results.push({ id: 'host-check', title: 'Host check', status: 'skip', summary: 'It needs the server\'s URL, whose host the tunnel\'s pages are served under.' });
      return results;
    }
    const sent = sentHost(target, clusterHost);
    const rewritten = sent !== clusterHost ? ` The client sends it Host: ${sent} instead (${target.rewriteHost ? '--rewrite-host' : `${clusterHost} is not in --allowed-hosts`}).` : '';
    const theirs = await get(clusterHost);
    const data = { host: clusterHost, sent, status: theirs.status };
    const allow = domain ?? clusterHost.replace(/:\d+$/, '');
    const name = clusterHost.replace(/:\d+$/, '');
    if (theirs.error) {
      return [...results, { id: 'host-check', title: 'Host check', status: 'fail', summary: `With Host: ${clusterHost}, ${theirs.error.message}`, fix: 'Run the doctor again once the app answers steadily.', data }];
    }
    if (theirs.status === 403 && VITE_BLOCKED.test(theirs.text)) {
      return [...results, {
        id: 'host-check',
        title: 'Host check',
        status: 'fail',
        summary: `Vite refuses Host: ${name} (403 "Blocked request. This host ("${name}") is not allowed"): every page through the tunnel would get that 403.${rewritten}`,
        fix: `One of: use @devtunnel/vite-plugin, which adds the cluster's domain to server.allowedHosts; add "${allow}" to server.allowedHosts in vite.config.js; or start devtunnel with --rewrite-host (the app then sees Host: ${local}, the cluster's host in X-Forwarded-Host).`,
        data: { ...data, devServer: 'vite' },
      }];
    }
    if (theirs.status === 403 && WEBPACK_BLOCKED.test(theirs.text)) {
      return [...results, {
        id: 'host-check',
        title: 'Host check',
        status: 'fail',
        summary: `webpack-dev-server refuses Host: ${name} (403 "Invalid Host header"): every page through the tunnel would get that 403.${rewritten}`,
        fix: `One of: use @devtunnel/webpack-plugin (withTunnel() adds the cluster's domain to devServer.allowedHosts); set devServer.allowedHosts: ['${allow}'] (webpack serve --allowed-hosts ${allow}); or start devtunnel with --rewrite-host (the app then sees Host: ${local}).`,
        data: { ...data, devServer: 'webpack-dev-server' },
      }];
    }
    if ((theirs.status === 403 || theirs.status === 421) && theirs.status !== own.status) {
      return [...results, {
        id: 'host-check',
        title: 'Host check',
        status: 'fail',
        summary: `The app answers ${theirs.status} to Host: ${name} but ${own.status} to Host: ${local}: it checks the host.${rewritten}`,
        fix: `Allow ${allow} in the dev server's host allow-list (its "allowed hosts" setting), or start devtunnel with --rewrite-host (the app then sees Host: ${local}).`,
        data,
      }];
    }
    return [...results, { id: 'host-check', title: 'Host check', status: 'pass', summary: `The app accepts Host: ${name} (${theirs.status}), as browsers in the cluster send it.${rewritten}`, data }];
  } finally {
    await forwarder.close();
  }
}
