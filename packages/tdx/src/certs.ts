import { X509Certificate, createHash, type KeyObject } from 'node:crypto';
import * as px509 from './x509.js';
import { pemDecode, reject, wrapError } from '@joinguard/core';

/*
 * Certificate chains and CRLs of the Intel SGX PKI. Chains are checked with node:crypto (synchronous, fast:
 * the PCK chain is checked per quote unless cached); CRLs are parsed and checked with @peculiar/x509 once
 * per collateral bundle.
 */

/** Longest chain accepted from hostile input; Intel chains have 2 or 3 certificates. */
const MAX_CHAIN_LENGTH = 5;

export interface TrustAnchor {
  cert: X509Certificate;
  der: Uint8Array;
  /** SHA-256 fingerprint, colon-separated upper-case hex (as openssl prints it). */
  fingerprint256: string;
}

export function trustAnchorFromPem(pem: string): TrustAnchor {
  const certs = parsePemChain(pem, 'trust anchor');
  if (certs.length !== 1) throw reject('TDX_CERT_MALFORMED', `trust anchor must be exactly one certificate, got ${certs.length}`, { count: certs.length });
  const cert = certs[0]!;
  return { cert, der: new Uint8Array(cert.raw), fingerprint256: fingerprintOf(cert) };
}

/** Parses concatenated PEM certificates, in order. Anything that is not a certificate is refused. */
export function parsePemChain(pem: string, what: string): X509Certificate[] {
  const ders = pemDecode(pem, 'CERTIFICATE', { code: 'TDX_CERT_MALFORMED', what, onlyBlocks: true });
  if (ders.length === 0) throw reject('TDX_CERT_MALFORMED', `${what} holds no PEM certificate`, {});
  if (ders.length > MAX_CHAIN_LENGTH) {
    throw reject('TDX_CERT_MALFORMED', `${what} has more than ${MAX_CHAIN_LENGTH} certificates`, { max: MAX_CHAIN_LENGTH });
  }
  return ders.map((der, index) => {
    try {
      return new X509Certificate(der);
    } catch (e) {
      throw wrapError('TDX_CERT_MALFORMED', `${what} certificate ${index} cannot be parsed`, e, { index });
    }
  });
}

export interface VerifiedCrl {
  /** What this CRL is, for messages ("PCK CRL (platform)", "Root CA CRL"). */
  what: string;
  issuerFingerprint256: string;
  thisUpdate: Date;
  nextUpdate: Date;
  revokedSerials: Set<string>;
}

function normSerial(s: string): string {
  const t = s.toLowerCase().replace(/^0+/, '');
  return t === '' ? '0' : t;
}

/** Checks a DER CRL: parse, issued and signed by `issuer`, thisUpdate ≤ now ≤ nextUpdate. */
export async function verifyCrl(der: Uint8Array, issuer: X509Certificate, now: Date, what: string): Promise<VerifiedCrl> {
  let crl: px509.X509Crl;
  let entries: readonly px509.X509CrlEntry[];
  try {
    crl = new px509.X509Crl(new Uint8Array(der));
    entries = crl.entries;
  } catch (e) {
    throw wrapError('TDX_CRL_MALFORMED', `${what} cannot be parsed`, e, { what });
  }
  let ok: boolean;
  try {
    ok = await crl.verify({ publicKey: new px509.X509Certificate(new Uint8Array(issuer.raw)) });
  } catch (e) {
    throw wrapError('TDX_CRL_BAD_SIGNATURE', `${what} signature cannot be checked against ${issuer.subject.replace(/\n/g, ', ')}`, e, { what });
  }
  if (!ok) throw reject('TDX_CRL_BAD_SIGNATURE', `${what} is not signed by ${issuer.subject.replace(/\n/g, ', ')}`, { what, issuer: issuer.subject });
  const nextUpdate = crl.nextUpdate;
  if (!nextUpdate) throw reject('TDX_CRL_MALFORMED', `${what} has no nextUpdate`, { what });
  checkWindow(what, crl.thisUpdate, nextUpdate, now, 'TDX_CRL');
  return {
    what,
    issuerFingerprint256: fingerprintOf(issuer),
    thisUpdate: crl.thisUpdate,
    nextUpdate,
    revokedSerials: new Set(entries.map((e) => normSerial(e.serialNumber))),
  };
}

/** `<prefix>_NOT_YET_VALID` / `<prefix>_EXPIRED` when now is outside [from, until]. */
export function checkWindow(what: string, from: Date, until: Date, now: Date, prefix: string): void {
  if (now.getTime() < from.getTime()) {
    throw reject(`${prefix}_NOT_YET_VALID`, `${what} is not valid before ${from.toISOString()} (time checked: ${now.toISOString()})`, { what, from: from.toISOString(), now: now.toISOString() });
  }
  if (now.getTime() > until.getTime()) {
    throw reject(`${prefix}_EXPIRED`, `${what} expired at ${until.toISOString()} (time checked: ${now.toISOString()})`, { what, until: until.toISOString(), now: now.toISOString() });
  }
}

// node:crypto computes these on every access (a fingerprint costs about a fifth of an ECDSA verify), and
// chains are re-checked for time and revocation with every quote, so they are computed once per certificate.
const fingerprints = new WeakMap<X509Certificate, string>();
const validities = new WeakMap<X509Certificate, { from: Date; until: Date; serial: string }>();

export function fingerprintOf(c: X509Certificate): string {
  let f = fingerprints.get(c);
  if (f === undefined) {
    f = c.fingerprint256;
    fingerprints.set(c, f);
  }
  return f;
}

function validityOf(c: X509Certificate): { from: Date; until: Date; serial: string } {
  let v = validities.get(c);
  if (v === undefined) {
    v = { from: new Date(c.validFrom), until: new Date(c.validTo), serial: normSerial(c.serialNumber) };
    validities.set(c, v);
  }
  return v;
}

function name(c: X509Certificate): string {
  return c.subject.replace(/\n/g, ', ');
}

/**
 * The signature-only part of a chain check (cacheable: it does not depend on time or CRLs): each
 * certificate is issued and signed by the next, issuers are CAs, and the chain ends at the trust
 * anchor (either the anchor itself is the last certificate, or the last certificate is signed by it).
 * Returns the full path, anchor last.
 */
export function verifyChainSignatures(certs: X509Certificate[], anchor: TrustAnchor, what: string): X509Certificate[] {
  if (certs.length === 0) throw reject('TDX_CHAIN_INCOMPLETE', `${what} is empty`, { what });
  const path = [...certs];
  const last = path[path.length - 1]!;
  if (fingerprintOf(last) !== anchor.fingerprint256) {
    if (last.checkIssued(last) && safeVerify(last, last.publicKey)) {
      throw reject('TDX_CHAIN_UNTRUSTED_ROOT', `${what} ends at ${name(last)} (SHA-256 ${fingerprintOf(last)}), not the pinned trust anchor (SHA-256 ${anchor.fingerprint256})`, {
        what, root: fingerprintOf(last), anchor: anchor.fingerprint256,
      });
    }
    path.push(anchor.cert);
  }
  for (let i = 0; i + 1 < path.length; i++) {
    const c = path[i]!;
    const issuer = path[i + 1]!;
    if (!issuer.ca) throw reject('TDX_CERT_NOT_CA', `${what}: ${name(issuer)} issues ${name(c)} but is not a CA`, { what, issuer: name(issuer) });
    if (!c.checkIssued(issuer) || !safeVerify(c, issuer.publicKey)) {
      const anchorStep = i + 1 === path.length - 1 && issuer === anchor.cert;
      throw reject(anchorStep ? 'TDX_CHAIN_UNTRUSTED_ROOT' : 'TDX_CHAIN_BAD_SIGNATURE', `${what}: ${name(c)} is not signed by ${name(issuer)}${anchorStep ? ' (the pinned trust anchor)' : ''}`, {
        what, subject: name(c), issuer: name(issuer), index: i,
      });
    }
  }
  return path;
}

function safeVerify(c: X509Certificate, key: KeyObject): boolean {
  try {
    return c.verify(key);
  } catch {
    return false;
  }
}

/** Time and revocation part of a chain check: every certificate valid at `now`, none revoked by a CRL of its issuer. */
export function checkChainTimeAndRevocation(path: X509Certificate[], now: Date, crls: readonly VerifiedCrl[], what: string): void {
  for (const c of path) {
    const v = validityOf(c);
    if (now < v.from || now > v.until) checkWindow(`${what}: certificate ${name(c)}`, v.from, v.until, now, 'TDX_CERT');
  }
  for (let i = 0; i + 1 < path.length; i++) {
    const c = path[i]!;
    if (crls.length === 0) break;
    const issuerFp = fingerprintOf(path[i + 1]!);
    for (const crl of crls) {
      if (crl.issuerFingerprint256 === issuerFp && crl.revokedSerials.has(validityOf(c).serial)) {
        throw reject('TDX_CERT_REVOKED', `${what}: ${name(c)} (serial ${c.serialNumber}) is revoked by the ${crl.what}`, { what, subject: name(c), serial: c.serialNumber, crl: crl.what });
      }
    }
  }
}

export function verifyChain(certs: X509Certificate[], anchor: TrustAnchor, now: Date, crls: readonly VerifiedCrl[], what: string): X509Certificate[] {
  const path = verifyChainSignatures(certs, anchor, what);
  checkChainTimeAndRevocation(path, now, crls, what);
  return path;
}

/** Raw extension value (DER) of `oid` in a certificate, via @peculiar/x509 (node:crypto does not expose it). */
export function certificateExtension(cert: X509Certificate, oid: string): Uint8Array | undefined {
  try {
    const ext = new px509.X509Certificate(new Uint8Array(cert.raw)).getExtension(oid);
    return ext ? new Uint8Array(ext.value) : undefined;
  } catch (e) {
    throw wrapError('TDX_CERT_MALFORMED', `extensions of ${name(cert)} cannot be read`, e, {});
  }
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}
