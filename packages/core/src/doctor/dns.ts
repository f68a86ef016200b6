import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { ProxyChoice } from './proxy';
import type { CheckResult } from './types';

/**
 * Name resolution as Node does it for a connection (`dns.lookup`, the system's resolver: hosts
 * file, VPN, search domains). The laptop resolves the name it connects to: the proxy's when one
 * applies (the proxy resolves the server's name then), else the server's.
 */

/** getaddrinfo has no timeout of its own; a resolver that never answers is reported after this. */
const LOOKUP_MS = 5_000;

const bare = (host: string) => host.replace(/^\[(.*)\]$/, '$1');

async function resolve(host: string): Promise<{ addresses: string[]; ms: number } | { code: string }> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error('no answer'), { code: 'ETIMEOUT' })), LOOKUP_MS);
  });
  try {
    const found = await Promise.race([lookup(host, { all: true }), late]);
    return { addresses: found.map((a) => a.address), ms: Math.round(performance.now() - started) };
  } catch (error) {
    return { code: (error as { code?: string }).code ?? 'ENOTFOUND' };
  } finally {
    clearTimeout(timer);
  }
}

const why = (code: string) =>
  code === 'ENOTFOUND' ? 'no such name (ENOTFOUND)' : code === 'EAI_AGAIN' || code === 'ETIMEOUT' ? `the DNS server did not answer (${code})` : code;

/** Behind a proxy the server's name is the proxy's business: said for the record only. */
async function serverNameNote(serverHost: string): Promise<string> {
  if (isIP(serverHost)) return '';
  const direct = await resolve(serverHost);
  return 'code' in direct ? ` ${serverHost} does not resolve here, which is fine: the proxy resolves it.` : ` ${serverHost} resolves here too (${direct.addresses.join(', ')}), but the proxy connects to it.`;
}

export async function checkDns(server: URL, choice: ProxyChoice): Promise<CheckResult> {
  const title = 'DNS';
  const serverHost = bare(server.hostname);
  const proxyHost = choice.proxy ? bare(choice.proxy.hostname) : undefined;
  const target = proxyHost ?? serverHost;
  const note = proxyHost ? await serverNameNote(serverHost) : '';
  if (isIP(target)) {
    return { id: 'dns', title, status: 'pass', summary: `${target} is an IP address${proxyHost ? ' (the proxy)' : ''}: nothing to resolve.${note}`, data: { host: target, addresses: [target] } };
  }
  const found = await resolve(target);
  if ('code' in found) {
    const fix = proxyHost
      ? `Check the proxy's name in ${choice.source} (your browser's or system's proxy settings show the right one).`
      : `Check the spelling of ${serverHost} in --server / DEVTUNNEL_SERVER. Internal names often resolve only on the company VPN: connect it. If your browser reaches the server through a proxy, set HTTPS_PROXY to that proxy.`;
    return { id: 'dns', title, status: 'fail', summary: `${target}${proxyHost ? ' (the proxy)' : ''} does not resolve: ${why(found.code)}.`, fix, data: { host: target, code: found.code } };
  }
  const resolved = `${target}${proxyHost ? ' (the proxy)' : ''} → ${found.addresses.join(', ')} (${found.ms} ms).`;
  return { id: 'dns', title, status: 'pass', summary: `${resolved}${note}`, data: { host: target, addresses: found.addresses, ms: found.ms } };
}
