import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { beforeAll, describe, expect, it } from 'vitest';
import { isJoinguardError } from '@joinguard/core';
import { verifyAkCertificate } from '@joinguard/tpm';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIG = { name: 'ECDSA', hash: 'SHA-256' } as const;
const RSA = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 } as const;
const DAY = 86400_000;
const now = new Date('2026-06-01T00:00:00Z');

async function ca(name: string, issuer: { name: string; key: CryptoKey } | undefined, isCa = true) {
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '0' + Math.floor(Math.random() * 1e9).toString(16),
    subject: `CN=${name}`,
    issuer: issuer?.name ?? `CN=${name}`,
    notBefore: new Date(now.getTime() - 30 * DAY),
    notAfter: new Date(now.getTime() + 3650 * DAY),
    publicKey: keys.publicKey,
    signingKey: issuer?.key ?? keys.privateKey,
    signingAlgorithm: SIG,
    extensions: [new x509.BasicConstraintsExtension(isCa, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
  });
  return { name: `CN=${name}`, key: keys.privateKey, cert };
}

let root: Awaited<ReturnType<typeof ca>>;
let inter: Awaited<ReturnType<typeof ca>>;
let akKeys: CryptoKeyPair;
let akSpki: Uint8Array;
let leaf: x509.X509Certificate;

async function akCert(issuer: { name: string; key: CryptoKey }, notBefore: Date, notAfter: Date) {
  return x509.X509CertificateGenerator.create({
    serialNumber: '01',
    subject: 'CN=vTPM AK',
    issuer: issuer.name,
    notBefore,
    notAfter,
    publicKey: akKeys.publicKey,
    signingKey: issuer.key,
    signingAlgorithm: SIG,
    extensions: [new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)],
  });
}

beforeAll(async () => {
  root = await ca('Test AK Root', undefined);
  inter = await ca('Test AK Intermediate', root);
  akKeys = (await webcrypto.subtle.generateKey(RSA, true, ['sign', 'verify'])) as CryptoKeyPair;
  akSpki = new Uint8Array(await webcrypto.subtle.exportKey('spki', akKeys.publicKey));
  leaf = await akCert(inter, new Date(now.getTime() - DAY), new Date(now.getTime() + 365 * DAY));
});

async function code(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    if (isJoinguardError(e)) return e.code;
    throw e;
  }
  return undefined;
}

describe('verifyAkCertificate', () => {
  it('accepts leaf → intermediate → root at a time inside every validity, as openssl verify does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jg-akcert-'));
    writeFileSync(join(dir, 'root.pem'), root.cert.toString('pem'));
    writeFileSync(join(dir, 'inter.pem'), inter.cert.toString('pem'));
    writeFileSync(join(dir, 'leaf.pem'), leaf.toString('pem'));
    const out = execFileSync('openssl', ['verify', '-attime', String(now.getTime() / 1000), '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'inter.pem'), join(dir, 'leaf.pem')], { encoding: 'utf8' });
    expect(out).toMatch(/: OK/);
    const claims = await verifyAkCertificate({ certificate: new Uint8Array(leaf.rawData), roots: [root.cert.toString('pem')], intermediates: [inter.cert.toString('pem')], now, akPublic: akSpki });
    expect(claims.chain).toEqual(['CN=vTPM AK', 'CN=Test AK Intermediate', 'CN=Test AK Root']);
    expect(claims.subject).toBe('CN=vTPM AK');
  });

  it('refuses a path that ends outside the configured roots', async () => {
    const other = await ca('Other Root', undefined);
    expect(await code(verifyAkCertificate({ certificate: leaf.toString('pem'), roots: [other.cert.toString('pem')], intermediates: [inter.cert.toString('pem')], now }))).toBe('TPM_AK_CERT_UNTRUSTED');
    expect(await code(verifyAkCertificate({ certificate: leaf.toString('pem'), roots: [root.cert.toString('pem')], now }))).toBe('TPM_AK_CERT_UNTRUSTED');
  });

  it('refuses expired and not yet valid certificates', async () => {
    const later = new Date(now.getTime() + 400 * DAY);
    expect(await code(verifyAkCertificate({ certificate: leaf.toString('pem'), roots: [root.cert.toString('pem')], intermediates: [inter.cert.toString('pem')], now: later }))).toBe('TPM_AK_CERT_EXPIRED');
    const earlier = new Date(now.getTime() - 2 * DAY);
    expect(await code(verifyAkCertificate({ certificate: leaf.toString('pem'), roots: [root.cert.toString('pem')], intermediates: [inter.cert.toString('pem')], now: earlier }))).toBe('TPM_AK_CERT_NOT_YET_VALID');
  });

  it('refuses a certificate for another key', async () => {
    const other = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
    const otherSpki = new Uint8Array(await webcrypto.subtle.exportKey('spki', other.publicKey));
    expect(await code(verifyAkCertificate({ certificate: leaf.toString('pem'), roots: [root.cert.toString('pem')], intermediates: [inter.cert.toString('pem')], now, akPublic: otherSpki }))).toBe('TPM_AK_CERT_KEY_MISMATCH');
  });

  it('refuses an intermediate that is not a CA', async () => {
    const notCa = await ca('Not A CA', root, false);
    const l = await akCert(notCa, new Date(now.getTime() - DAY), new Date(now.getTime() + DAY));
    expect(await code(verifyAkCertificate({ certificate: l.toString('pem'), roots: [root.cert.toString('pem')], intermediates: [notCa.cert.toString('pem')], now }))).toBe('TPM_AK_CERT_NOT_CA');
  });

  it('refuses a certificate whose signature was altered', async () => {
    const der = new Uint8Array(leaf.rawData);
    der[der.length - 3] ^= 1;
    const r = await code(verifyAkCertificate({ certificate: der, roots: [root.cert.toString('pem')], intermediates: [inter.cert.toString('pem')], now }));
    expect(r === 'TPM_AK_CERT_UNTRUSTED' || r === 'TPM_AK_CERT_BAD_ENCODING').toBe(true);
  });

  it('garbage is a typed error', async () => {
    expect(await code(verifyAkCertificate({ certificate: new Uint8Array([0x30, 0x82, 0xff, 0xff, 1, 2]), roots: [root.cert.toString('pem')], now }))).toBe('TPM_AK_CERT_BAD_ENCODING');
    expect(await code(verifyAkCertificate({ certificate: leaf.toString('pem'), roots: [], now }))).toBe('TPM_AK_CERT_NO_ROOTS');
  });
});
