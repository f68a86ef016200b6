import { existsSync } from 'node:fs';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { checkServerIdentity, connect as tlsConnect, type TLSSocket } from 'node:tls';
import { describeChain, isPublicRoot, judgeTls } from './certificate';
import { CALL_MS, failureText, type ServerContext } from './context';
import { redact } from './proxy';
import type { CheckResult } from './types';

/**
 * TCP and TLS to the server, opened by hand rather than through undici: the doctor wants the
 * certificate whatever it is (undici refuses an untrusted one without showing it), and to tell a
 * proxy that refuses from a server that does. Through a proxy it asks for a tunnel as undici's
 * ProxyAgent does (`CONNECT host:port`, with `Proxy-Authorization` from the proxy URL's user and
 * password), for plain http servers too.
 */

const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443 };
const bare = (host: string) => host.replace(/^\[(.*)\]$/, '$1');

/** A step that failed, with what to say about it. */
class StepError extends Error {
  constructor(
    message: string,
    readonly fix: string,
  ) {
    super(message);
  }
}

function within<T>(promise: Promise<T>, what: string, onLate: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onLate();
      reject(Object.assign(new Error(`${what}: no answer within ${CALL_MS / 1000} s`), { code: 'ETIMEDOUT' }));
    }, CALL_MS);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

function openTcp(host: string, port: number): Promise<Socket> {
  const socket = netConnect({ host, port, autoSelectFamily: true });
  const open = new Promise<Socket>((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
  return within(open, `connecting to ${host}:${port}`, () => socket.destroy());
}

function openTls(options: { socket?: Socket; host: string; port: number; servername: string | undefined }): Promise<TLSSocket> {
  const socket = tlsConnect({ ...options, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
  const open = new Promise<TLSSocket>((resolve, reject) => {
    socket.once('secureConnect', () => resolve(socket));
    socket.once('error', reject);
  });
  return within(open, 'the TLS handshake', () => socket.destroy());
}

/** `CONNECT host:port` on `socket`; resolves with the proxy's status line once its head arrived. */
function askTunnel(socket: Socket, target: string, proxy: URL): Promise<{ status: number; line: string }> {
  const auth = proxy.username && proxy.password ? `Proxy-Authorization: Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}\r\n` : '';
  socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${auth}\r\n`);
  const answered = new Promise<{ status: number; line: string }>((resolve, reject) => {
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 16 * 1024) reject(new Error('the proxy sent no HTTP answer'));
        return;
      }
      socket.off('data', onData);
      socket.off('error', reject);
      socket.pause();
      // A tunnel's first bytes are the server's: put back what came after the head.
      if (head.length > end + 4) socket.unshift(head.subarray(end + 4));
      const line = head.subarray(0, head.indexOf('\r\n')).toString('latin1');
      resolve({ status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(line)?.[1] ?? 0), line });
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('the proxy closed the connection')));
  });
  return within(answered, 'the proxy\'s answer to CONNECT', () => socket.destroy());
}

function proxyRefusal(status: number, line: string, target: string, proxy: string, source: string | undefined): StepError {
  if (status === 407) return new StepError(`The proxy ${proxy} wants a login (${line}).`, `Put it in the proxy URL: ${source ?? 'HTTPS_PROXY'}=http://user:password@host:port (URL-encode special characters).`);
  if (status === 403 || status === 405) return new StepError(`The proxy ${proxy} refuses to connect to ${target} (${line}).`, `Ask IT to allow ${target} through the proxy; or, if the server is reachable without it (VPN, internal network), add its host to NO_PROXY.`);
  if (status >= 500) return new StepError(`The proxy ${proxy} cannot reach ${target} (${line}): the name does not resolve there, or nothing answers at that port.`, 'Check the host and port in --server; if the server is internal, it may be reachable only without the proxy: add its host to NO_PROXY.');
  return new StepError(`The proxy ${proxy} answered CONNECT with "${line || 'something that is not HTTP'}".`, `Check that ${source ?? 'the proxy setting'} names an HTTP proxy.`);
}

function connectFailure(error: unknown, what: string, fix: string): StepError {
  const { code, text } = failureText(error);
  const hint =
    code === 'ECONNREFUSED' ? ' Nothing listens there.'
    : code === 'ETIMEDOUT' ? ' A firewall may drop the packets.'
    : code === 'EHOSTUNREACH' || code === 'ENETUNREACH' ? ' There is no route to it (VPN off?).'
    : '';
  return new StepError(`Cannot connect to ${what}: ${text}.${hint}`, fix);
}

export async function checkConnect(ctx: ServerContext): Promise<CheckResult> {
  const { server, choice } = ctx;
  const title = server.protocol === 'https:' ? 'TCP and TLS' : 'TCP';
  const host = bare(server.hostname);
  const port = Number(server.port) || DEFAULT_PORTS[server.protocol]!;
  const target = `${server.hostname}:${port}`;
  const proxy = choice.proxy;
  const shown = proxy ? redact(proxy.href) : undefined;
  if (proxy && !/^https?:$/.test(proxy.protocol)) {
    return { id: 'connect', title, status: 'skip', summary: `The doctor opens its own connections through HTTP proxies only; ${shown} is a SOCKS proxy. The calls below go through it as the client's do.` };
  }
  const data: Record<string, unknown> = { target };
  let socket: Socket | undefined;
  try {
    const parts: string[] = [];
    let started = performance.now();
    if (proxy) {
      const proxyPort = Number(proxy.port) || DEFAULT_PORTS[proxy.protocol]!;
      const where = `the proxy ${shown}`;
      const fix = `Check ${choice.source} (the proxy's host and port), or whether you must be on the company network or VPN to use it.`;
      socket = await (proxy.protocol === 'https:' ? openTls({ host: bare(proxy.hostname), port: proxyPort, servername: isIP(bare(proxy.hostname)) ? undefined : bare(proxy.hostname) }) : openTcp(bare(proxy.hostname), proxyPort)).catch((e: unknown) => {
        throw connectFailure(e, where, fix);
      });
      const toProxy = Math.round(performance.now() - started);
      started = performance.now();
      const { status, line } = await askTunnel(socket, target, proxy).catch((e: unknown) => {
        throw connectFailure(e, `${target} through ${where}`, fix);
      });
      if (status !== 200) throw proxyRefusal(status, line, target, shown!, choice.source);
      const tunnel = Math.round(performance.now() - started);
      Object.assign(data, { proxyConnectMs: toProxy, tunnelMs: tunnel });
      parts.push(`Connected to the proxy in ${toProxy} ms; it opened a tunnel to ${target} in ${tunnel} ms (CONNECT 200)`);
    } else {
      socket = await openTcp(host, port).catch((e: unknown) => {
        throw connectFailure(e, target, `Check the host and port in --server, that the server runs, and whether you need the VPN or a proxy (HTTPS_PROXY) to reach it.`);
      });
      const ms = Math.round(performance.now() - started);
      Object.assign(data, { connectMs: ms, address: socket.remoteAddress });
      parts.push(`Connected to ${target}${socket.remoteAddress && socket.remoteAddress !== host ? ` (${socket.remoteAddress})` : ''} in ${ms} ms`);
    }
    if (server.protocol !== 'https:') {
      const loopback = /^(127\.|::1$|localhost$)/.test(host);
      return { id: 'connect', title, status: 'pass', summary: `${parts.join('')}; plain http, no TLS${loopback ? '' : ' (the token crosses the network readable)'}.`, data };
    }
    started = performance.now();
    const tls = await openTls({ socket, host, port, servername: isIP(host) ? undefined : host }).catch((e: unknown) => {
      const { code, text } = failureText(e);
      if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number|packet length too long/i.test(text)) {
        throw new StepError(`${target} does not speak TLS (it answered the handshake in plain HTTP).`, `Use ${server.href.replace(/^https:/, 'http:')} in --server / DEVTUNNEL_SERVER, or put TLS in front of the tunnel server.`);
      }
      throw new StepError(`The TLS handshake with ${target} failed: ${text}.`, 'A firewall may cut connections to this name (it reads the name in the handshake); ask IT whether it is blocked.');
    });
    socket = tls;
    const tlsMs = Math.round(performance.now() - started);
    const chain = describeChain(tls.getPeerCertificate(true));
    const identity = chain.length ? checkServerIdentity(host, tls.getPeerCertificate()) : undefined;
    const extraPath = ctx.env.NODE_EXTRA_CA_CERTS;
    const verdict = judgeTls({
      host,
      proxy: shown,
      authorized: tls.authorized,
      authorizationError: tls.authorizationError ? String(tls.authorizationError) : undefined,
      identityError: identity?.message,
      chain,
      publicRoot: chain.length > 0 && isPublicRoot(chain[chain.length - 1]!.der),
      extraCa: extraPath ? { path: extraPath, exists: existsSync(extraPath) } : undefined,
      checksOff: ctx.env.NODE_TLS_REJECT_UNAUTHORIZED === '0',
    });
    Object.assign(data, { tlsMs, tlsVersion: tls.getProtocol(), authorized: tls.authorized, authorizationError: tls.authorizationError ?? null, certificates: chain.map(({ der: _der, ...c }) => c) });
    parts.push(`; ${tls.getProtocol()} in ${tlsMs} ms. ${verdict.summary}`);
    return { id: 'connect', title, status: verdict.status, summary: parts.join(''), ...(verdict.fix ? { fix: verdict.fix } : {}), data };
  } catch (error) {
    if (error instanceof StepError) return { id: 'connect', title, status: 'fail', summary: error.message, fix: error.fix, data };
    throw error;
  } finally {
    socket?.destroy();
  }
}
