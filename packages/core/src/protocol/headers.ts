import type { HeaderPairs } from './messages';

/** Header names used on the control channel (lower case, as Node and undici report them). */
export const HEADER = Object.freeze({
  /** Machine-readable error code on every error answer, browser-facing or API. */
  error: 'x-devtunnel-error',
  /** On a response upload: `1` asks the server to answer it like a poll (saves a round trip). */
  poll: 'x-devtunnel-poll',
  /**
   * On a downstream request: how many requests the client takes at once. The option `maxInFlight`
   * (`--max-in-flight`), the one option named otherwise on the wire: there it is the downstream's
   * window. The server hands it no more than that, counting the ones polls carried.
   */
  window: 'x-devtunnel-window',
  /** On a tunnel check: the key of the downstream's first notice, which confirms that downstream. */
  downstream: 'x-devtunnel-downstream',
  /** The client's protocol version, sent on registration. */
  protocol: 'x-devtunnel-protocol',
  /** Request id added for the local app and echoed to the browser (kept when the caller set one). */
  requestId: 'x-request-id',
});

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1) plus the framing headers each hop computes for itself.
 * Stripped in both directions, together with every header a `Connection` header names.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
  // `Expect: 100-continue` is answered by the hop that receives it (RFC 9110 §10.1.1).
  'expect',
  'http2-settings',
]);

/** Lower-case names that `Connection` headers list (RFC 9110 §7.6.1); undefined when there is none. */
function namedByConnection(at: (i: number) => string | undefined, count: number): Set<string> | undefined {
  let named: Set<string> | undefined;
  for (let i = 0; i < count; i++) {
    const name = at(2 * i)!;
    if (name.length !== 10 || name.toLowerCase() !== 'connection') continue;
    named ??= new Set();
    for (const token of at(2 * i + 1)!.split(',')) {
      const t = token.trim().toLowerCase();
      // Host names the request's target on every hop (RFC 9112 §3.2): a Connection header cannot
      // make it this hop's only, nor have the next hop's request go to the proxy's own upstream.
      if (t && t !== 'host') named.add(t);
    }
  }
  return named;
}

const dropped = (name: string, named: Set<string> | undefined): boolean => {
  const lower = name.toLowerCase();
  return HOP_BY_HOP.has(lower) || (named !== undefined && named.has(lower));
};

/**
 * Copy of `headers` without hop-by-hop and framing headers, nor any header listed in a
 * `Connection` header (RFC 9110 §7.6.1). Names keep their case; order is preserved.
 */
export function stripHopByHop(headers: HeaderPairs): HeaderPairs {
  const named = namedByConnection((i) => headers[i >> 1]![i & 1], headers.length);
  const out: HeaderPairs = [];
  for (const pair of headers) if (!dropped(pair[0], named)) out.push(pair);
  return out;
}

/**
 * {@link stripHopByHop} for Node's flat `rawHeaders` (`[name, value, name, value…]`), giving pairs;
 * `also` (lower case) is dropped as well. One pass, no intermediate copy: it runs per request.
 */
export function endToEndPairs(raw: readonly string[], also?: string): HeaderPairs {
  const named = namedByConnection((i) => raw[i], raw.length >> 1);
  const out: HeaderPairs = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    if (dropped(name, named) || (also !== undefined && name.length === also.length && name.toLowerCase() === also)) continue;
    out.push([name, raw[i + 1]!]);
  }
  return out;
}

/** {@link stripHopByHop}, flat (`[name, value, name, value…]`, as Node's `writeHead` takes them). */
export function endToEndFlat(headers: HeaderPairs): string[] {
  const named = namedByConnection((i) => headers[i >> 1]![i & 1], headers.length);
  const out: string[] = [];
  for (const [name, value] of headers) if (!dropped(name, named)) out.push(name, value);
  return out;
}

/** Turns Node's flat `rawHeaders` (`[name, value, name, value…]`) into pairs. */
export function pairsFromRaw(raw: readonly string[]): HeaderPairs {
  const out: HeaderPairs = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}

/** First value of a header, case-insensitive. */
export function headerValue(headers: HeaderPairs, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [n, v] of headers) if (n.toLowerCase() === lower) return v;
  return undefined;
}

/**
 * Every value of a list header (`Accept-Encoding`, `Vary`), joined with commas as RFC 9110 §5.3
 * allows; undefined when absent. Lengths are compared first: it runs per request.
 */
export function headerList(headers: HeaderPairs, lower: string): string | undefined {
  let out: string | undefined;
  for (const [n, v] of headers) {
    if (n.length !== lower.length || n.toLowerCase() !== lower) continue;
    out = out === undefined ? v : `${out}, ${v}`;
  }
  return out;
}
