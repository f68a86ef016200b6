import { rootCertificates, type DetailedPeerCertificate } from 'node:tls';

/**
 * What a server's (or an inspecting proxy's) certificate says, and what to do when Node does not
 * trust it. Pure: the TLS handshake is connect.ts's; this reads its outcome.
 */
export interface CertificateInfo {
  /** `CN "devtunnel.test.example.com"` (with `O` when it has one). */
  subject: string;
  issuer: string;
  /** Host names it is valid for. */
  names: string[];
  validTo: string;
  /** SHA-256 fingerprint, to compare with what IT says their CA's is. */
  fingerprint256: string;
  /** Issued by itself: a root (or a lone self-signed certificate). */
  selfSigned: boolean;
}

type Entity = Partial<Record<string, string | string[]>> | undefined;

/** `CN "Example Corp TLS Inspection CA", O "Example Corp"`. */
export function entityName(entity: Entity): string {
  const field = (k: string) => {
    const v = entity?.[k];
    return Array.isArray(v) ? v.join(', ') : v;
  };
  const parts = [['CN', field('CN')], ['O', field('O')]].filter(([, v]) => v).map(([k, v]) => `${k} "${v}"`);
  return parts.length ? parts.join(', ') : 'no name';
}

const sameEntity = (a: Entity, b: Entity) => JSON.stringify(a) === JSON.stringify(b);

/** The chain as Node gives it, leaf first: what the server sent, and the root it was verified against. */
export function describeChain(leaf: DetailedPeerCertificate): Array<CertificateInfo & { der: Buffer }> {
  const out: Array<CertificateInfo & { der: Buffer }> = [];
  const seen = new Set<DetailedPeerCertificate>();
  for (let c: DetailedPeerCertificate | undefined = leaf; c && c.raw && !seen.has(c) && out.length < 10; c = c.issuerCertificate) {
    seen.add(c);
    out.push({
      subject: entityName(c.subject as unknown as Entity),
      issuer: entityName(c.issuer as unknown as Entity),
      names: (c.subjectaltname ?? '').split(', ').filter((n) => n.startsWith('DNS:') || n.startsWith('IP Address:')).map((n) => n.replace(/^(DNS|IP Address):/, '')),
      validTo: c.valid_to,
      fingerprint256: c.fingerprint256,
      selfSigned: sameEntity(c.subject as unknown as Entity, c.issuer as unknown as Entity),
      der: c.raw,
    });
  }
  return out;
}

let publicRoots: Set<string> | undefined;

/** Whether a certificate is one of the public roots Node ships with (Mozilla's list). */
export function isPublicRoot(der: Buffer): boolean {
  publicRoots ??= new Set(rootCertificates.map((pem) => pem.replace(/-----[^-]+-----|\s/g, '')));
  return publicRoots.has(der.toString('base64'));
}

export interface TlsOutcome {
  /** The name the client asks for (SNI, and what the certificate must be valid for). */
  host: string;
  /** The proxy the connection went through, if any (redacted). */
  proxy: string | undefined;
  /** Node's verdict on the chain (`rejectUnauthorized` would have refused otherwise). */
  authorized: boolean;
  /** OpenSSL's reason when not: `UNABLE_TO_VERIFY_LEAF_SIGNATURE`, `CERT_HAS_EXPIRED`, … */
  authorizationError: string | undefined;
  /** `tls.checkServerIdentity`'s complaint, if the certificate is not for `host`. */
  identityError: string | undefined;
  chain: CertificateInfo[];
  /** Whether the chain ends in one of Node's own public roots. */
  publicRoot: boolean;
  /** `NODE_EXTRA_CA_CERTS` as set, and whether that file exists. */
  extraCa: { path: string; exists: boolean } | undefined;
  /** `NODE_TLS_REJECT_UNAUTHORIZED=0`: every Node program of that shell skips certificate checks. */
  checksOff: boolean;
}

/** Codes by which OpenSSL says: nobody Node trusts signed this. */
const UNTRUSTED = new Set(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_GET_ISSUER_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT']);

/** The TLS part of the connect check: pass, warn or fail, what was found, what to do. */
export function judgeTls(t: TlsOutcome): { status: 'pass' | 'warn' | 'fail'; summary: string; fix?: string } {
  const verdict = judgeChain(t);
  if (!t.checksOff) return verdict;
  // The client would connect anyway: Node checks nothing. It works, and anyone on the way can read it.
  const off = 'NODE_TLS_REJECT_UNAUTHORIZED=0 is set: every Node program in this shell skips certificate checks';
  if (verdict.status === 'pass') return { status: 'warn', summary: verdict.summary, fix: `${off}. Unset it.` };
  return { status: 'warn', summary: `${verdict.summary} The client connects anyway: ${off}.`, fix: `${verdict.fix} Then unset NODE_TLS_REJECT_UNAUTHORIZED.` };
}

function judgeChain(t: TlsOutcome): { status: 'pass' | 'fail'; summary: string; fix?: string } {
  const leaf = t.chain[0];
  if (!leaf) return { status: 'fail', summary: 'The server sent no certificate.', fix: 'Check that --server names the tunnel server and that it speaks https.' };
  const top = t.chain[t.chain.length - 1]!;
  /** The CA to trust: the top of what was sent, or the one that issued it. */
  const anchor = top.selfSigned ? top.subject : top.issuer;
  const presented = `The certificate for ${t.host} (${leaf.subject}) is issued by ${leaf.issuer}`;
  if (t.authorizationError === 'CERT_HAS_EXPIRED' || t.authorizationError === 'CERT_NOT_YET_VALID') {
    return { status: 'fail', summary: `${presented}, and it is ${t.authorizationError === 'CERT_HAS_EXPIRED' ? `expired (valid to ${leaf.validTo})` : 'not valid yet'}.`, fix: 'The server\'s operator must renew the certificate (or this machine\'s clock is wrong).' };
  }
  if (!t.authorized && UNTRUSTED.has(t.authorizationError ?? '')) {
    const who = t.proxy
      ? `Your proxy ${t.proxy} probably inspects TLS (it presents certificates of its own, made by its CA), or the server uses a company CA.`
      : 'Something on the way inspects TLS (a company firewall or antivirus), or the server uses a company CA.';
    const extra = t.extraCa
      ? t.extraCa.exists
        ? ` NODE_EXTRA_CA_CERTS=${t.extraCa.path} is set but does not hold that CA.`
        : ` NODE_EXTRA_CA_CERTS=${t.extraCa.path} is set, but there is no such file.`
      : '';
    return {
      status: 'fail',
      summary: `${presented}, which Node does not trust (${t.authorizationError}). ${who}${extra}`,
      fix: `Get the certificate of ${anchor} as a PEM file (from IT, or exported from your system's keychain or the browser's certificate viewer for this site; its SHA-256 fingerprint must match what IT says), and start devtunnel with NODE_EXTRA_CA_CERTS=/path/to/that-ca.pem (Node reads it at start; the plugins need it in the dev server's environment).`,
    };
  }
  if (!t.authorized) {
    return { status: 'fail', summary: `${presented}, which Node refuses (${t.authorizationError ?? 'unknown reason'}).`, fix: 'Ask the server\'s operator to fix its certificate.' };
  }
  if (t.identityError) {
    return { status: 'fail', summary: `${presented}, but it is for ${leaf.names.join(', ') || 'other names'}, not ${t.host}: ${t.identityError}`, fix: `Use a URL with a name the certificate holds${leaf.names[0] ? ` (https://${leaf.names[0]})` : ''}, or ask the server's operator for a certificate that names ${t.host}.` };
  }
  const how = t.publicRoot
    ? ''
    : ` ${anchor} is not a public CA (a TLS-inspecting ${t.proxy ? `proxy's, ${t.proxy}` : 'firewall\'s'}, or the company's own): Node trusts it through ${t.extraCa ? `NODE_EXTRA_CA_CERTS=${t.extraCa.path}` : 'the system\'s store'}.`;
  return { status: 'pass', summary: `${presented}.${how}` };
}
