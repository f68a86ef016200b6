import type { CheckResult } from './types';

/**
 * Which proxy the client's connection to the server goes through. The client hands `--proxy` to
 * undici's `ProxyAgent`, or, without it, lets undici's `EnvHttpProxyAgent` choose from the
 * environment (control/dispatcher.ts). This is that choice written out, rule for rule, after
 * undici's lib/dispatcher/env-http-proxy-agent.js, so the doctor can say which one applies and
 * why; the doctor then makes its calls through exactly that proxy (a test compares the two):
 * - `--proxy` wins and ignores `NO_PROXY`;
 * - the lower-case variable wins over the upper-case one, even when empty (`http_proxy=""`);
 * - an https server uses `HTTPS_PROXY`, else `HTTP_PROXY`; an http server only `HTTP_PROXY`;
 * - `NO_PROXY`: `*` for every host, else entries split at commas and spaces, `host` or
 *   `host:port`, a leading `.` or `*.` dropped, each matching the host and its subdomains.
 */
export interface ProxyChoice {
  /** The proxy, or undefined for a direct connection. */
  proxy: URL | undefined;
  /** Where it comes from: `--proxy`, the variable's name, or undefined when nothing set one. */
  source: string | undefined;
  /** When a `NO_PROXY` entry sends the server direct: the variable and the entry. */
  bypass?: { variable: string; entry: string };
  /** The proxy variables that are set, by name, with any password hidden. */
  seen: Record<string, string>;
}

const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443 };

/** A URL for output, its password (if any) replaced: `http://ann:****@proxy:3128`. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '****';
    return u.pathname === '/' && !u.search && !u.hash ? u.href.slice(0, -1) : u.href;
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:****@');
  }
}

type Env = Record<string, string | undefined>;

/** `env[lower] ?? env[UPPER]`, as undici reads them, with the name that gave the value. */
function variable(env: Env, lower: string): { name: string; value: string | undefined } {
  if (env[lower] !== undefined) return { name: lower, value: env[lower] };
  const upper = lower.toUpperCase();
  return { name: upper, value: env[upper] };
}

/** The proxy the client would use for `server` (undici's rules, above). Throws nothing. */
export function chooseProxy(server: URL, flag: string | false | undefined, env: Env): ProxyChoice & { invalid?: { source: string; value: string } } {
  const seen: Record<string, string> = {};
  for (const name of ['https_proxy', 'HTTPS_PROXY', 'http_proxy', 'HTTP_PROXY', 'no_proxy', 'NO_PROXY']) {
    if (env[name] !== undefined) seen[name] = redact(env[name]!);
  }
  const parsed = (value: string, source: string) => {
    try {
      const proxy = new URL(value);
      // `proxy.corp:3128` parses, with `proxy.corp:` as its scheme.
      if (!/^(https?|socks5?):$/.test(proxy.protocol)) return { proxy: undefined, source, seen, invalid: { source, value } };
      return { proxy, source, seen };
    } catch {
      return { proxy: undefined, source, seen, invalid: { source, value } };
    }
  };
  if (flag === false) return { proxy: undefined, source: undefined, seen };
  if (flag) return parsed(flag, '--proxy');

  const http = variable(env, 'http_proxy');
  const https = variable(env, 'https_proxy');
  const noProxy = variable(env, 'no_proxy');
  const hostname = server.host.replace(/:\d*$/, '').toLowerCase();
  const port = Number.parseInt(server.port, 10) || DEFAULT_PORTS[server.protocol] || 0;
  const value = noProxy.value ?? '';
  if (value === '*') return { proxy: undefined, source: undefined, bypass: { variable: noProxy.name, entry: '*' }, seen };
  for (const entry of value.split(/[,\s]/)) {
    if (!entry) continue;
    const m = /^(.+):(\d+)$/.exec(entry);
    const host = (m ? m[1]! : entry).replace(/^\*?\./, '').toLowerCase();
    const entryPort = m ? Number.parseInt(m[2]!, 10) : 0;
    if (entryPort && entryPort !== port) continue;
    if (hostname === host || hostname.endsWith(`.${host}`)) return { proxy: undefined, source: undefined, bypass: { variable: noProxy.name, entry }, seen };
  }
  const chosen = server.protocol === 'https:' && https.value ? https : http;
  if (!chosen.value) return { proxy: undefined, source: undefined, seen };
  return parsed(chosen.value, chosen.name);
}

/** The proxy check: which proxy applies, and why; a proxy setting that is no URL fails. */
export function checkProxy(server: URL, flag: string | false | undefined, env: Env): { result: CheckResult; choice?: ProxyChoice } {
  const title = 'Proxy';
  const choice = chooseProxy(server, flag, env);
  const data = { proxy: choice.proxy ? redact(choice.proxy.href) : null, source: choice.source ?? null, variables: choice.seen };
  if (choice.invalid) {
    const { source, value } = choice.invalid;
    const scheme = /^[\w.-]+:\d+$/.test(value) ? ` It lacks its scheme: write http://${value}.` : '';
    return { result: { id: 'proxy', title, status: 'fail', summary: `${source} is "${redact(value)}", which is not a proxy URL.${scheme}`, fix: `Set ${source} to the proxy's URL, such as http://proxy.corp:3128 (http://user:password@… if it wants a login).`, data } };
  }
  const others = Object.keys(choice.seen).filter((name) => !/no_proxy/i.test(name) && name !== choice.source);
  const set = Object.keys(choice.seen).length ? ` (set: ${Object.entries(choice.seen).map(([k, v]) => `${k}=${v}`).join(', ')})` : '';
  let summary: string;
  if (choice.proxy) {
    const why = choice.source === '--proxy' ? '--proxy wins over the variables and NO_PROXY' : `${choice.source} applies to ${server.protocol === 'https:' ? 'an https' : 'a plain http'} server${others.length ? `; ${others.join(', ')} ${others.length > 1 ? 'do' : 'does'} not` : ''}`;
    summary = `Through ${redact(choice.proxy.href)}: ${why}.`;
  } else if (choice.bypass) {
    summary = `Direct: ${choice.bypass.variable} entry "${choice.bypass.entry}" matches ${server.hostname}${set}.`;
  } else if (flag === false) {
    summary = 'Direct: proxies are switched off for this run.';
  } else {
    const httpsOnly = server.protocol === 'http:' && (choice.seen.https_proxy ?? choice.seen.HTTPS_PROXY) ? ' (HTTPS_PROXY is for https servers only)' : '';
    const vars = server.protocol === 'https:' ? 'HTTPS_PROXY or HTTP_PROXY' : `HTTP_PROXY${httpsOnly}`;
    summary = `Direct: no --proxy, and no ${vars}${set}.`;
  }
  // `https_proxy=""` left over in a shell hides `HTTPS_PROXY` from Node, while other tools may differ.
  const hidden = ['https_proxy', 'http_proxy', 'no_proxy'].filter((lower) => flag === undefined && env[lower] !== undefined && env[lower.toUpperCase()] !== undefined && env[lower] !== env[lower.toUpperCase()]);
  if (hidden.length) {
    const which = hidden.map((l) => `${l}=${JSON.stringify(redact(env[l]!))} hides ${l.toUpperCase()}=${JSON.stringify(redact(env[l.toUpperCase()]!))}`).join('; ');
    return { result: { id: 'proxy', title, status: 'warn', summary: `${summary} Note: ${which} (the lower-case variable wins).`, fix: 'Unset one of each pair, or give both the same value, so every tool takes the same proxy.', data }, choice };
  }
  return { result: { id: 'proxy', title, status: 'pass', summary, data }, choice };
}
