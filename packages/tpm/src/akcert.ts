// @peculiar/x509 resolves its algorithm providers through tsyringe, which needs the Reflect metadata polyfill first.
import 'reflect-metadata';
import { createHash } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { equalBytes, inputError, pemDecode, reject, toHex, wrapError } from '@joinguard/core';
import { resolveAk, type AkPublicInput } from './verify.js';

export type CertInput = Uint8Array | string;

export interface VerifyAkCertificateInput {
  /** The AK certificate (DER or PEM), e.g. read from the vTPM's NV index. */
  certificate: CertInput;
  /** Configured trust anchors (DER or PEM; a PEM string may hold several). */
  roots: CertInput[];
  /** Intermediate CA certificates the path may use. */
  intermediates?: CertInput[];
  /** The time the chain is checked at. */
  now: Date;
  /** When given, the certificate must certify exactly this key. */
  akPublic?: AkPublicInput;
}

export interface AkCertificateClaims {
  subject: string;
  issuer: string;
  serialNumber: string;
  notBefore: string;
  notAfter: string;
  /** SHA-256 of the AK's SubjectPublicKeyInfo DER. */
  spkiSha256: string;
  /** Subjects from the leaf up to the trust anchor. */
  chain: string[];
  /** SHA-256 fingerprint of the trust anchor the path ends in. */
  rootSha256: string;
}

/** Longest path tried; real AK chains are leaf → 1 or 2 CAs → root. */
const MAX_DEPTH = 8;

function parseCerts(input: CertInput, what: string): x509.X509Certificate[] {
  try {
    if (typeof input === 'string' || (input.length > 10 && Buffer.from(input.subarray(0, 10)).toString('latin1') === '-----BEGIN')) {
      const text = typeof input === 'string' ? input : Buffer.from(input).toString('latin1');
      const blocks = pemDecode(text, 'CERTIFICATE', { code: 'TPM_AK_CERT_BAD_ENCODING', what });
      if (blocks.length === 0) throw new Error('no CERTIFICATE block');
      return blocks.map((der) => new x509.X509Certificate(der));
    }
    return [new x509.X509Certificate(Buffer.from(input))];
  } catch (e) {
    throw wrapError('TPM_AK_CERT_BAD_ENCODING', `${what} is not an X.509 certificate`, e, { what });
  }
}

function derOf(c: x509.X509Certificate): Uint8Array {
  return new Uint8Array(c.rawData);
}

function isCa(c: x509.X509Certificate): boolean {
  const bc = c.getExtension(x509.BasicConstraintsExtension);
  return bc?.ca === true;
}

function checkValidity(c: x509.X509Certificate, now: Date, role: string): void {
  if (now < c.notBefore) {
    throw reject('TPM_AK_CERT_NOT_YET_VALID', `${role} certificate ${c.subject} is valid from ${c.notBefore.toISOString()}, after ${now.toISOString()}`, { subject: c.subject, notBefore: c.notBefore.toISOString(), now: now.toISOString() });
  }
  if (now > c.notAfter) {
    throw reject('TPM_AK_CERT_EXPIRED', `${role} certificate ${c.subject} expired at ${c.notAfter.toISOString()}, before ${now.toISOString()}`, { subject: c.subject, notAfter: c.notAfter.toISOString(), now: now.toISOString() });
  }
}

async function signedBy(child: x509.X509Certificate, issuer: x509.X509Certificate): Promise<boolean> {
  if (child.issuer !== issuer.subject) return false;
  try {
    return await child.verify({ publicKey: issuer.publicKey, signatureOnly: true });
  } catch {
    return false;
  }
}

/**
 * Verifies an AK certificate to a configured root: every certificate of the path valid at `now`, each
 * signature by the next certificate's key, every issuer a CA, the path ending in one of `roots`, and
 * (when `akPublic` is given) the certificate's key equal to the AK.
 */
export async function verifyAkCertificate(input: VerifyAkCertificateInput): Promise<AkCertificateClaims> {
  if (!(input.now instanceof Date) || Number.isNaN(input.now.getTime())) throw inputError('TPM_BAD_INPUT', 'verifyAkCertificate needs `now` as a valid Date');
  const leaf = parseCerts(input.certificate, 'AK certificate')[0]!;
  const roots = input.roots.flatMap((r, i) => parseCerts(r, `root ${i}`));
  if (roots.length === 0) throw inputError('TPM_AK_CERT_NO_ROOTS', 'no trust anchor configured for AK certificates');
  const intermediates = (input.intermediates ?? []).flatMap((c, i) => parseCerts(c, `intermediate ${i}`));
  checkValidity(leaf, input.now, 'AK');

  const chain: x509.X509Certificate[] = [leaf];
  let current = leaf;
  let anchor: x509.X509Certificate | undefined;
  for (let depth = 0; depth < MAX_DEPTH && !anchor; depth++) {
    for (const r of roots) {
      if (await signedBy(current, r)) {
        anchor = r;
        break;
      }
    }
    if (anchor) break;
    let next: x509.X509Certificate | undefined;
    for (const c of intermediates) {
      if (chain.some((x) => equalBytes(derOf(x), derOf(c)))) continue;
      if (await signedBy(current, c)) {
        next = c;
        break;
      }
    }
    if (!next) break;
    if (!isCa(next)) throw reject('TPM_AK_CERT_NOT_CA', `intermediate ${next.subject} is not a CA (basicConstraints cA is not set)`, { subject: next.subject });
    checkValidity(next, input.now, 'intermediate');
    chain.push(next);
    current = next;
  }
  if (!anchor) {
    throw reject('TPM_AK_CERT_UNTRUSTED', `AK certificate ${leaf.subject} does not chain to a configured root (path ends at ${current.subject}, issuer ${current.issuer})`, { subject: leaf.subject, pathEnd: current.subject, issuer: current.issuer });
  }
  checkValidity(anchor, input.now, 'root');

  const spki = new Uint8Array(leaf.publicKey.rawData);
  if (input.akPublic !== undefined) {
    const ak = resolveAk(input.akPublic).key.export({ type: 'spki', format: 'der' });
    if (!equalBytes(new Uint8Array(ak), spki)) {
      throw reject('TPM_AK_CERT_KEY_MISMATCH', `AK certificate ${leaf.subject} certifies key ${createHash('sha256').update(spki).digest('hex')}, not the AK ${createHash('sha256').update(ak).digest('hex')}`, {});
    }
  }
  return {
    subject: leaf.subject,
    issuer: leaf.issuer,
    serialNumber: leaf.serialNumber,
    notBefore: leaf.notBefore.toISOString(),
    notAfter: leaf.notAfter.toISOString(),
    spkiSha256: createHash('sha256').update(spki).digest('hex'),
    chain: [...chain, anchor].map((c) => c.subject),
    rootSha256: toHex(createHash('sha256').update(derOf(anchor)).digest()),
  };
}
