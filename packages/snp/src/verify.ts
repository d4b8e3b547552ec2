import type { KeyObject } from 'node:crypto';
import { digest, equalBytes, isAllZero, reject, toHex } from '@joinguard/core';
import { SnpErrorCode } from './errors.js';
import { decodeReport, reportCpuid, SIG_COMPONENT_SIZE, SIGNING_KEY_NONE, SIGNING_KEY_VLEK, type SnpReport } from './decode.js';
import { certificatesFromBytes, checkPssSha384, parseAmdCert, parseCrl, verifyPss, type AmdCert, type ParsedCrl } from './cert.js';
import { readTlv } from './der.js';
import { amdTrustStore, type SnpTrustStore } from './roots.js';
import { decodeTcb, resolveProduct, tcbLayoutFor, type SnpProduct } from './tcb.js';
import { buildClaims, type SnpClaims } from './claims.js';
import { verifyP384Sha384 } from './p384.js';

export type SigningKeyKind = 'vcek' | 'vlek';

/** Certificates and CRL that come with a report. Each may be DER or PEM. */
export interface SnpCollateral {
  /** The VCEK or VLEK. A PEM bundle may also carry the ASK/ASVK and ARK after it. */
  vcek: Uint8Array;
  /** The ASK (for a VCEK) or ASVK (for a VLEK); the trust store's is used when absent. */
  ask?: Uint8Array;
  /** The ARK; must equal the pinned ARK of the product. */
  ark?: Uint8Array;
  /** A PEM bundle with the intermediate and the ARK (KDS cert_chain); an alternative to ask/ark. */
  chain?: Uint8Array;
  /** The ARK's CRL (KDS /vcek/v1/{product}/crl), DER or PEM. */
  crl?: Uint8Array;
}

export interface SnpVerifyOptions {
  /** The time at which certificates and the CRL must be valid. */
  now: Date;
  /** The product when the report does not say (version 2 has no CPUID). */
  product?: SnpProduct;
  /** Trust anchors; AMD's pinned roots by default. */
  trust?: SnpTrustStore;
  /** A chain-result cache shared across calls (see ChainCache). */
  cache?: ChainCache;
}

/** A chain that verified, with the window in which that result stays true. */
export interface VerifiedChain {
  product: SnpProduct;
  signingKey: SigningKeyKind;
  leaf: AmdCert;
  intermediate: AmdCert;
  ark: AmdCert;
  crl?: ParsedCrl;
  validFrom: Date;
  validUntil: Date;
}

export interface VerifiedSnpReport {
  report: SnpReport;
  product: SnpProduct;
  signingKey: SigningKeyKind;
  claims: SnpClaims;
  chain: VerifiedChain;
}

/**
 * Caches verified chains keyed by the SHA-256 of the leaf, intermediate, ARK and CRL, per trust store.
 * A hit is used only inside the chain's validity window; outside it the chain is verified again, so
 * the error for an expired certificate is the same as without the cache. Bounded (oldest dropped).
 */
export class ChainCache {
  private readonly byStore = new WeakMap<SnpTrustStore, Map<string, VerifiedChain>>();
  constructor(readonly maxEntries = 1024) {}

  get(store: SnpTrustStore, key: string): VerifiedChain | undefined {
    return this.byStore.get(store)?.get(key);
  }

  set(store: SnpTrustStore, key: string, value: VerifiedChain): void {
    let m = this.byStore.get(store);
    if (!m) {
      m = new Map();
      this.byStore.set(store, m);
    }
    if (m.size >= this.maxEntries) {
      const oldest = m.keys().next();
      if (!oldest.done) m.delete(oldest.value);
    }
    m.set(key, value);
  }
}

function sha256Hex(b: Uint8Array): string {
  return digest('sha256', b, 'hex');
}

function checkValidity(cert: AmdCert, role: string, now: Date): void {
  if (now.getTime() < cert.notBefore.getTime()) {
    throw reject(SnpErrorCode.CERT_NOT_YET_VALID, `${role} certificate "${cert.subject}" is not valid before ${cert.notBefore.toISOString()} (checked at ${now.toISOString()})`, { certificate: role, notBefore: cert.notBefore.toISOString(), at: now.toISOString() });
  }
  if (now.getTime() > cert.notAfter.getTime()) {
    throw reject(SnpErrorCode.CERT_EXPIRED, `${role} certificate "${cert.subject}" expired at ${cert.notAfter.toISOString()} (checked at ${now.toISOString()})`, { certificate: role, notAfter: cert.notAfter.toISOString(), at: now.toISOString() });
  }
}

function checkIssued(child: AmdCert, childRole: string, issuer: AmdCert, issuerRole: string): void {
  if (!equalBytes(child.issuerDer, issuer.subjectDer)) {
    throw reject(SnpErrorCode.CHAIN_ISSUER_MISMATCH, `${childRole} is issued by "${child.issuer}", not by the ${issuerRole} "${issuer.subject}"`, { certificate: childRole, issuer: child.issuer, expectedIssuer: issuer.subject });
  }
  checkPssSha384(readTlv(child.signatureAlgorithm, 0, SnpErrorCode.CERT_MALFORMED, childRole), `${childRole} certificate`);
  if (!verifyPss(issuer.publicKey, child.tbs, child.signature)) {
    throw reject(SnpErrorCode.CHAIN_BAD_SIGNATURE, `the ${childRole} certificate's signature does not verify with the ${issuerRole} key`, { certificate: childRole, issuer: issuer.subject });
  }
}

function leafKind(leaf: AmdCert): SigningKeyKind {
  if (leaf.commonName === 'SEV-VLEK') return 'vlek';
  if (leaf.commonName === 'SEV-VCEK') return 'vcek';
  return leaf.extensions.cspId !== undefined ? 'vlek' : 'vcek';
}

/** Splits the collateral into leaf, optional intermediate and optional ARK, by subject/issuer names. */
function arrangeCollateral(c: SnpCollateral): { leafDer: Uint8Array; interDer?: Uint8Array; arkDer?: Uint8Array } {
  const leafBlocks = certificatesFromBytes(c.vcek, 'VCEK/VLEK');
  const leafDer = leafBlocks[0]!;
  const extra: Uint8Array[] = [...leafBlocks.slice(1)];
  if (c.chain) extra.push(...certificatesFromBytes(c.chain, 'certificate chain'));
  let interDer = c.ask ? certificatesFromBytes(c.ask, 'ASK/ASVK')[0] : undefined;
  let arkDer = c.ark ? certificatesFromBytes(c.ark, 'ARK')[0] : undefined;
  if (extra.length > 0 && (!interDer || !arkDer)) {
    // A chain bundle is ASK (or ASVK) then ARK; tell them apart by self-issuance, not by position.
    for (const der of extra.slice(0, 4)) {
      const cert = parseAmdCert(der, 'chain certificate');
      const selfIssued = equalBytes(cert.subjectDer, cert.issuerDer);
      if (selfIssued && !arkDer) arkDer = der;
      else if (!selfIssued && !interDer) interDer = der;
    }
  }
  const out: { leafDer: Uint8Array; interDer?: Uint8Array; arkDer?: Uint8Array } = { leafDer };
  if (interDer) out.interDer = interDer;
  if (arkDer) out.arkDer = arkDer;
  return out;
}

/**
 * Verifies VCEK → ASK → ARK or VLEK → ASVK → ARK: names, RSASSA-PSS/SHA-384 signatures, validity at
 * `now`, the ARK self-signed and equal to the pinned ARK, and, with a CRL, that the intermediate is not
 * revoked by the ARK.
 */
export function verifyChain(c: SnpCollateral, product: SnpProduct, expectedKind: SigningKeyKind | undefined, now: Date, trust: SnpTrustStore = amdTrustStore()): VerifiedChain {
  const { leafDer, interDer, arkDer } = arrangeCollateral(c);
  const leaf = parseAmdCert(leafDer, 'VCEK/VLEK');
  const kind = leafKind(leaf);
  const leafRole = kind.toUpperCase();
  if (expectedKind && kind !== expectedKind) {
    throw reject(SnpErrorCode.SIGNING_KEY_MISMATCH, `the report says it is signed by a ${expectedKind.toUpperCase()}, but the certificate given is a ${leafRole} ("${leaf.subject}")`, { reportSigningKey: expectedKind, certificate: leafRole });
  }
  const anchor = trust.get(product);
  const interRole = kind === 'vlek' ? 'ASVK' : 'ASK';
  let ark = anchor.ark;
  if (arkDer) {
    const given = parseAmdCert(arkDer, 'ARK');
    if (!equalBytes(given.der, anchor.ark.der)) {
      throw reject(SnpErrorCode.ARK_NOT_TRUSTED, `the ARK given ("${given.subject}", sha256 ${given.sha256}) is not the pinned ${product} ARK (sha256 ${anchor.ark.sha256})`, { product, given: given.sha256, pinned: anchor.ark.sha256 });
    }
    ark = given;
  }
  let intermediate = kind === 'vlek' ? anchor.asvk : anchor.ask;
  if (interDer) intermediate = parseAmdCert(interDer, interRole);
  if (!intermediate) {
    throw reject(SnpErrorCode.CHAIN_INCOMPLETE, `no ${interRole} was given and none is built in for ${product}`, { product, certificate: interRole });
  }
  if (!equalBytes(ark.subjectDer, ark.issuerDer)) {
    throw reject(SnpErrorCode.ARK_NOT_SELF_SIGNED, `the ARK "${ark.subject}" is not self-issued (issuer "${ark.issuer}")`, { subject: ark.subject, issuer: ark.issuer });
  }
  checkPssSha384(readTlv(ark.signatureAlgorithm, 0, SnpErrorCode.CERT_MALFORMED, 'ARK'), 'ARK certificate');
  if (!verifyPss(ark.publicKey, ark.tbs, ark.signature)) {
    throw reject(SnpErrorCode.ARK_NOT_SELF_SIGNED, `the ARK "${ark.subject}" self-signature does not verify`, { subject: ark.subject });
  }
  checkIssued(intermediate, interRole, ark, 'ARK');
  checkIssued(leaf, leafRole, intermediate, interRole);
  const keyDetails = leaf.publicKey.asymmetricKeyDetails;
  if (leaf.publicKey.asymmetricKeyType !== 'ec' || keyDetails?.namedCurve !== 'secp384r1') {
    throw reject(SnpErrorCode.CERT_BAD_KEY, `the ${leafRole} key is ${leaf.publicKey.asymmetricKeyType ?? '?'} ${keyDetails?.namedCurve ?? ''}, not ECDSA P-384`, { keyType: leaf.publicKey.asymmetricKeyType, curve: keyDetails?.namedCurve });
  }
  checkValidity(ark, 'ARK', now);
  checkValidity(intermediate, interRole, now);
  checkValidity(leaf, leafRole, now);

  let validFrom = Math.max(ark.notBefore.getTime(), intermediate.notBefore.getTime(), leaf.notBefore.getTime());
  let validUntil = Math.min(ark.notAfter.getTime(), intermediate.notAfter.getTime(), leaf.notAfter.getTime());
  const result: VerifiedChain = { product, signingKey: kind, leaf, intermediate, ark, validFrom: new Date(validFrom), validUntil: new Date(validUntil) };
  if (c.crl) {
    const crl = checkCrl(c.crl, ark, intermediate, interRole, now);
    result.crl = crl;
    validFrom = Math.max(validFrom, crl.thisUpdate.getTime());
    if (crl.nextUpdate) validUntil = Math.min(validUntil, crl.nextUpdate.getTime());
    result.validFrom = new Date(validFrom);
    result.validUntil = new Date(validUntil);
  }
  return result;
}

/** The ARK's CRL: signed by the ARK, current at `now`, and not listing the intermediate. */
export function checkCrl(crlBytes: Uint8Array, ark: AmdCert, intermediate: AmdCert, interRole: string, now: Date): ParsedCrl {
  let der = crlBytes;
  if (der.length > 0 && der[0] !== 0x30) {
    const text = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('latin1');
    const m = /-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/.exec(text);
    if (!m) throw reject(SnpErrorCode.CRL_MALFORMED, 'the CRL is neither DER nor PEM', {});
    der = new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
  }
  const crl = parseCrl(der);
  if (!equalBytes(crl.issuerDer, ark.subjectDer)) {
    throw reject(SnpErrorCode.CRL_ISSUER_MISMATCH, `the CRL is not issued by the ARK "${ark.subject}"`, { ark: ark.subject });
  }
  checkPssSha384(crl.signatureAlgorithm, 'CRL');
  if (!verifyPss(ark.publicKey, crl.tbs, crl.signature)) {
    throw reject(SnpErrorCode.CRL_BAD_SIGNATURE, `the CRL signature does not verify with the ARK "${ark.subject}"`, { ark: ark.subject });
  }
  if (now.getTime() < crl.thisUpdate.getTime() || (crl.nextUpdate && now.getTime() > crl.nextUpdate.getTime())) {
    throw reject(SnpErrorCode.CRL_STALE, `the CRL (thisUpdate ${crl.thisUpdate.toISOString()}, nextUpdate ${crl.nextUpdate?.toISOString() ?? 'none'}) is not current at ${now.toISOString()}`, { thisUpdate: crl.thisUpdate.toISOString(), nextUpdate: crl.nextUpdate?.toISOString(), at: now.toISOString() });
  }
  if (crl.revokedSerials.has(intermediate.serialNumber)) {
    throw reject(SnpErrorCode.CERT_REVOKED, `the ${interRole} "${intermediate.subject}" (serial ${intermediate.serialNumber}) is revoked by the ARK's CRL`, { certificate: interRole, serialNumber: intermediate.serialNumber });
  }
  return crl;
}

/**
 * A report's r and s (72-byte little-endian fields) as r ‖ s, 48 bytes each, big-endian: the form P-384
 * verification takes. undefined when either has a non-zero byte beyond its 48th, i.e. is no P-384 value.
 */
export function reportSignatureP1363(r: Uint8Array, s: Uint8Array): Buffer | undefined {
  for (let i = 48; i < SIG_COMPONENT_SIZE; i++) if (r[i] !== 0 || s[i] !== 0) return undefined;
  const sig = Buffer.allocUnsafe(96);
  for (let i = 0; i < 48; i++) {
    sig[47 - i] = r[i]!;
    sig[95 - i] = s[i]!;
  }
  return sig;
}

/** ECDSA P-384/SHA-384 over bytes 0x000-0x29F; r and s are little-endian in the report. */
export function verifyReportSignature(report: SnpReport, key: KeyObject): void {
  const sig = reportSignatureP1363(report.signatureR, report.signatureS);
  if (!sig) throw reject(SnpErrorCode.BAD_SIGNATURE, 'the report signature is not a P-384 signature: r or s exceeds 48 bytes', {});
  if (!verifyP384Sha384(key, report.signedBytes, sig)) {
    throw reject(SnpErrorCode.BAD_SIGNATURE, 'the report signature (ECDSA P-384 over bytes 0x000-0x29F) does not verify with the VCEK/VLEK key', { signingKey: report.signingKey === SIGNING_KEY_VLEK ? 'vlek' : 'vcek' });
  }
}

/** The VCEK/VLEK extensions must describe this report: product, REPORTED_TCB and (VCEK) CHIP_ID. */
export function checkExtensions(report: SnpReport, chain: VerifiedChain): void {
  const ext = chain.leaf.extensions;
  const role = chain.signingKey.toUpperCase();
  if (ext.productName !== undefined) {
    const named = ext.productName.split('-')[0]!.toLowerCase();
    if (named !== chain.product) {
      throw reject(SnpErrorCode.PRODUCT_MISMATCH, `the ${role} is for product "${ext.productName}", the report is ${chain.product}`, { certificate: ext.productName, product: chain.product });
    }
  }
  const layout = tcbLayoutFor(chain.product);
  if (chain.signingKey === 'vcek') {
    if (!ext.hwId) throw reject(SnpErrorCode.EXTENSION_MISSING, 'the VCEK has no hwID extension', { extension: 'hwID' });
    // A host may mask CHIP_ID (MASK_CHIP_KEY); then there is nothing to compare.
    const masked = report.maskChipKey && isAllZero(report.chipId);
    const chip = layout === 'turin' ? report.chipId.subarray(0, 8) : report.chipId;
    if (!masked && !equalBytes(ext.hwId, chip)) {
      throw reject(SnpErrorCode.CHIP_ID_MISMATCH, `the VCEK is for chip ${toHex(ext.hwId)}, the report's CHIP_ID is ${toHex(chip)}`, { hwId: toHex(ext.hwId), chipId: toHex(chip) });
    }
  }
  const tcb = decodeTcb(report.reportedTcb, layout);
  const pairs: [string, number, number | undefined][] = [
    ['bootloader', tcb.bootloader, ext.blSpl],
    ['tee', tcb.tee, ext.teeSpl],
    ['snp', tcb.snp, ext.snpSpl],
    ['microcode', tcb.microcode, ext.ucodeSpl],
  ];
  if (layout === 'turin') pairs.unshift(['fmc', tcb.fmc ?? 0, ext.fmcSpl]);
  for (const [name, reported, certified] of pairs) {
    if (certified === undefined) {
      throw reject(SnpErrorCode.EXTENSION_MISSING, `the ${role} has no ${name} SPL extension`, { component: name });
    }
    if (certified !== reported) {
      throw reject(SnpErrorCode.TCB_MISMATCH, `REPORTED_TCB ${name} is ${reported}, the ${role} is for ${name} ${certified}`, { component: name, reported, certificate: certified });
    }
  }
}

function chainCacheKey(c: SnpCollateral, product: SnpProduct): string {
  return [sha256Hex(c.vcek), c.ask ? sha256Hex(c.ask) : '-', c.ark ? sha256Hex(c.ark) : '-', c.chain ? sha256Hex(c.chain) : '-', c.crl ? sha256Hex(c.crl) : '-', product].join(':');
}

/** The product of a report: CPUID (v3+) or the caller's statement. */
export function reportProduct(report: SnpReport, stated?: SnpProduct): SnpProduct {
  return resolveProduct(reportCpuid(report), stated);
}

/**
 * Full verification of an attestation report: decode, product, chain (cached), extensions against
 * the report, then the report signature. Returns the claims a policy needs.
 */
export function verifyReport(input: Uint8Array | SnpReport, collateral: SnpCollateral, opts: SnpVerifyOptions): VerifiedSnpReport {
  const report = input instanceof Uint8Array ? decodeReport(input) : input;
  if (report.signingKey === SIGNING_KEY_NONE) {
    throw reject(SnpErrorCode.REPORT_UNSIGNED, 'the report says it is not signed (SIGNING_KEY 7)', {});
  }
  const expectedKind: SigningKeyKind = report.signingKey === SIGNING_KEY_VLEK ? 'vlek' : 'vcek';
  const product = reportProduct(report, opts.product);
  const trust = opts.trust ?? amdTrustStore();
  let chain: VerifiedChain | undefined;
  let key: string | undefined;
  if (opts.cache) {
    key = chainCacheKey(collateral, product);
    const hit = opts.cache.get(trust, key);
    const t = opts.now.getTime();
    if (hit && t >= hit.validFrom.getTime() && t <= hit.validUntil.getTime()) chain = hit;
  }
  if (!chain) {
    chain = verifyChain(collateral, product, expectedKind, opts.now, trust);
    if (opts.cache && key) opts.cache.set(trust, key, chain);
  }
  if (chain.signingKey !== expectedKind) {
    throw reject(SnpErrorCode.SIGNING_KEY_MISMATCH, `the report says it is signed by a ${expectedKind.toUpperCase()}, the certificate is a ${chain.signingKey.toUpperCase()}`, { reportSigningKey: expectedKind, certificate: chain.signingKey });
  }
  checkExtensions(report, chain);
  verifyReportSignature(report, chain.leaf.publicKey);
  return { report, product, signingKey: expectedKind, claims: buildClaims(report, product), chain };
}
