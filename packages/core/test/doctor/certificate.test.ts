import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { rootCertificates, type DetailedPeerCertificate } from 'node:tls';
import { describeChain, isPublicRoot, judgeTls, type CertificateInfo, type TlsOutcome } from '../../src/doctor/certificate';

const derOf = (pem: string) => Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
const fixtures = join(__dirname, '..', '..', '..', '..', 'test', 'fixtures');

const leaf: CertificateInfo = { subject: 'CN "devtunnel.test"', issuer: 'CN "Example Corp TLS Inspection CA", O "Example Corp"', names: ['devtunnel.test'], validTo: 'Nov  1 00:00:00 2126 GMT', fingerprint256: 'AA:BB', selfSigned: false };
const root: CertificateInfo = { ...leaf, subject: leaf.issuer, names: [], selfSigned: true };
const outcome = (o: Partial<TlsOutcome>): TlsOutcome => ({ host: 'devtunnel.test', proxy: undefined, authorized: true, authorizationError: undefined, identityError: undefined, chain: [leaf, root], publicRoot: false, extraCa: undefined, checksOff: false, ...o });

describe('certificates', () => {
  test('an inspecting proxy\'s certificate that Node does not trust: named, and how to trust its CA', () => {
    const v = judgeTls(outcome({ authorized: false, authorizationError: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', chain: [leaf], proxy: 'http://proxy.corp:3128/' }));
    expect(v.status).toBe('fail');
    expect(v.summary).toContain('issued by CN "Example Corp TLS Inspection CA", O "Example Corp"');
    expect(v.summary).toContain('proxy http://proxy.corp:3128/');
    expect(v.fix).toContain('certificate of CN "Example Corp TLS Inspection CA"');
    expect(v.fix).toContain('NODE_EXTRA_CA_CERTS=');
  });

  test('NODE_EXTRA_CA_CERTS set to a missing file, or to a file without that CA, is said', () => {
    expect(judgeTls(outcome({ authorized: false, authorizationError: 'SELF_SIGNED_CERT_IN_CHAIN', extraCa: { path: '/nope.pem', exists: false } })).summary).toContain('there is no such file');
    expect(judgeTls(outcome({ authorized: false, authorizationError: 'SELF_SIGNED_CERT_IN_CHAIN', extraCa: { path: '/ca.pem', exists: true } })).summary).toContain('does not hold that CA');
  });

  test('trusted through NODE_EXTRA_CA_CERTS: a pass that names the CA as not public', () => {
    const v = judgeTls(outcome({ extraCa: { path: '/ca.pem', exists: true } }));
    expect(v.status).toBe('pass');
    expect(v.summary).toContain('not a public CA');
    expect(v.summary).toContain('NODE_EXTRA_CA_CERTS=/ca.pem');
    expect(judgeTls(outcome({ publicRoot: true })).summary).not.toContain('public CA');
  });

  test('expired, or for another name: failures with their own fix', () => {
    expect(judgeTls(outcome({ authorized: false, authorizationError: 'CERT_HAS_EXPIRED' })).fix).toContain('renew');
    const other = judgeTls(outcome({ identityError: "Host: devtunnel.test. is not in the cert's altnames", chain: [{ ...leaf, names: ['other.test'] }, root] }));
    expect(other.status).toBe('fail');
    expect(other.fix).toContain('https://other.test');
  });

  test('NODE_TLS_REJECT_UNAUTHORIZED=0: the client would connect, so a warning that says to trust the CA instead', () => {
    const v = judgeTls(outcome({ authorized: false, authorizationError: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', chain: [leaf], checksOff: true }));
    expect(v.status).toBe('warn');
    expect(v.fix).toContain('NODE_EXTRA_CA_CERTS');
    expect(v.fix).toContain('unset NODE_TLS_REJECT_UNAUTHORIZED');
  });

  test('the chain, leaf first, up to a root that issued itself; public roots are Node\'s own', () => {
    const rootCert = { subject: { CN: 'Root' }, issuer: { CN: 'Root' }, raw: Buffer.from('r'), valid_to: 'x', fingerprint256: 'R' } as unknown as DetailedPeerCertificate;
    rootCert.issuerCertificate = rootCert;
    const leafCert = { subject: { CN: 'a.test' }, issuer: { CN: 'Root' }, subjectaltname: 'DNS:a.test, IP Address:10.0.0.1', raw: Buffer.from('l'), valid_to: 'y', fingerprint256: 'L', issuerCertificate: rootCert } as unknown as DetailedPeerCertificate;
    expect(describeChain(leafCert).map(({ subject, names, selfSigned }) => ({ subject, names, selfSigned }))).toEqual([
      { subject: 'CN "a.test"', names: ['a.test', '10.0.0.1'], selfSigned: false },
      { subject: 'CN "Root"', names: [], selfSigned: true },
    ]);
    expect(isPublicRoot(derOf(rootCertificates[0]!))).toBe(true);
    expect(isPublicRoot(derOf(readFileSync(join(fixtures, 'inspection-ca.pem'), 'utf8')))).toBe(false);
  });
});
