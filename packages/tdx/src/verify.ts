import { createHash, createPublicKey, verify as cryptoVerify, type KeyObject, type X509Certificate } from 'node:crypto';
import { BoundedMap, reject, inputError, wrapError, equalBytes, toHex } from '@joinguard/core';
import { decodeQuote, type TdxQuote } from './decode.js';
import { checkChainTimeAndRevocation, checkWindow, certificateExtension, fingerprintOf, parsePemChain, sha256Hex, verifyChain, verifyChainSignatures, verifyCrl, type TrustAnchor, type VerifiedCrl } from './certs.js';
import { parsePckExtensions, SGX_EXTENSIONS_OID, type PckExtensions } from './pck.js';
import { checkEnclaveIdentityShape, checkTcbInfoShape, evaluateQeIdentity, evaluateTdxTcb, parseSignedJson, type EnclaveIdentity, type QeEvaluation, type TcbEvaluation, type TcbInfo } from './tcb.js';
import { intelSgxRootCa } from './roots.js';
import { tdBodyHex } from './inspect.js';

/** Which Intel PCK CA issued the PCK certificate (it names the PCK CRL to use). */
export type PckCa = 'platform' | 'processor';

/**
 * The collateral for one quote, as Intel PCS serves it (see collateral.ts for fetching and the offline
 * bundle directory). Issuer chains are PEM, leaf first.
 */
export interface CollateralBundle {
  tcbInfo: string;
  tcbInfoIssuerChain: string;
  qeIdentity: string;
  qeIdentityIssuerChain: string;
  pckCrl: Uint8Array;
  pckCrlIssuerChain: string;
  rootCaCrl: Uint8Array;
}

interface Window {
  what: string;
  from: Date;
  until: Date;
  code: string;
}

/**
 * Collateral whose signatures and chains have been checked. Checking is the expensive part, so a
 * verifier keeps this and re-uses it for every quote of the same platform; each piece's validity
 * window is still checked against the time given with every quote.
 */
export interface VerifiedCollateral {
  anchor: TrustAnchor;
  tcbInfo: TcbInfo;
  qeIdentity: EnclaveIdentity;
  crls: VerifiedCrl[];
  /** The PCK CA whose CRL this bundle carries, and that CA certificate's SHA-256 fingerprint. */
  pckCa: PckCa;
  pckCaFingerprint256: string;
  windows: Window[];
  /** Every certificate of the collateral's issuer chains (their windows are re-checked too). */
  issuerPaths: { what: string; path: X509Certificate[] }[];
}

export interface VerifyCollateralOptions {
  now: Date;
  trustAnchor?: TrustAnchor;
}

function p256Verify(key: KeyObject, data: Uint8Array, sig: Uint8Array): boolean {
  try {
    return cryptoVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig);
  } catch {
    return false;
  }
}

function pckCaOf(issuer: X509Certificate): PckCa | undefined {
  if (/CN=Intel SGX PCK Platform CA/.test(issuer.subject)) return 'platform';
  if (/CN=Intel SGX PCK Processor CA/.test(issuer.subject)) return 'processor';
  return undefined;
}

function parseDate(s: string, what: string): Date {
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) throw reject('TDX_COLLATERAL_MALFORMED', `${what} is not a date: ${JSON.stringify(s)}`, { what, value: s });
  return d;
}

async function verifySignedJson<T>(text: string, member: string, chainPem: string, what: string, anchor: TrustAnchor, now: Date, rootCrl: VerifiedCrl, check: (v: unknown) => T): Promise<{ value: T; path: X509Certificate[] }> {
  const signed = parseSignedJson<unknown>(text, member, what);
  const path = verifyChain(parsePemChain(chainPem, `${what} issuer chain`), anchor, now, [rootCrl], `${what} issuer chain`);
  // Any key certified under the root (a PCK key sits in every platform) must not be able to sign TCB
  // collateral: the signer is the Intel SGX TCB Signing certificate, issued by the root itself.
  if (path.length !== 2 || !/(^|\n)CN=Intel SGX TCB Signing(\n|$)/.test(path[0]!.subject)) {
    throw reject('TDX_COLLATERAL_BAD_SIGNER', `${what} is signed by ${path[0]!.subject.replace(/\n/g, ', ')}, not by an Intel SGX TCB Signing certificate issued by the root`, { what, signer: path[0]!.subject.replace(/\n/g, ', ') });
  }
  if (!p256Verify(path[0]!.publicKey, signed.signedBytes, signed.signature)) {
    throw reject('TDX_COLLATERAL_BAD_SIGNATURE', `${what} signature does not verify with ${path[0]!.subject.replace(/\n/g, ', ')}`, { what });
  }
  return { value: check(signed.value), path };
}

/**
 * Verifies a collateral bundle at `now`: the Root CA CRL (signed by the anchor), the PCK CRL and its
 * issuer chain, the TCB info and QE identity signatures and chains, and every nextUpdate.
 */
export async function verifyCollateral(bundle: CollateralBundle, opts: VerifyCollateralOptions): Promise<VerifiedCollateral> {
  const anchor = opts.trustAnchor ?? intelSgxRootCa();
  const now = opts.now;
  const rootCrl = await verifyCrl(bundle.rootCaCrl, anchor.cert, now, 'Root CA CRL');
  const pckCrlPath = verifyChain(parsePemChain(bundle.pckCrlIssuerChain, 'PCK CRL issuer chain'), anchor, now, [rootCrl], 'PCK CRL issuer chain');
  const pckCa = pckCaOf(pckCrlPath[0]!);
  if (!pckCa || pckCrlPath.length !== 2) throw reject('TDX_COLLATERAL_BAD_SIGNER', `PCK CRL issuer ${pckCrlPath[0]!.subject.replace(/\n/g, ', ')} is not an Intel SGX PCK CA issued by the root`, {});
  const pckCrl = await verifyCrl(bundle.pckCrl, pckCrlPath[0]!, now, `PCK CRL (${pckCa})`);
  const tcb = await verifySignedJson(bundle.tcbInfo, 'tcbInfo', bundle.tcbInfoIssuerChain, 'TCB info', anchor, now, rootCrl, checkTcbInfoShape);
  const qe = await verifySignedJson(bundle.qeIdentity, 'enclaveIdentity', bundle.qeIdentityIssuerChain, 'QE identity', anchor, now, rootCrl, checkEnclaveIdentityShape);
  const windows: Window[] = [
    { what: rootCrl.what, from: rootCrl.thisUpdate, until: rootCrl.nextUpdate, code: 'TDX_CRL' },
    { what: pckCrl.what, from: pckCrl.thisUpdate, until: pckCrl.nextUpdate, code: 'TDX_CRL' },
    { what: 'TCB info', from: parseDate(tcb.value.issueDate, 'TCB info issueDate'), until: parseDate(tcb.value.nextUpdate, 'TCB info nextUpdate'), code: 'TDX_COLLATERAL' },
    { what: 'QE identity', from: parseDate(qe.value.issueDate, 'QE identity issueDate'), until: parseDate(qe.value.nextUpdate, 'QE identity nextUpdate'), code: 'TDX_COLLATERAL' },
  ];
  for (const w of windows) checkWindow(w.what, w.from, w.until, now, w.code);
  return {
    anchor,
    tcbInfo: tcb.value,
    qeIdentity: qe.value,
    crls: [rootCrl, pckCrl],
    pckCa,
    pckCaFingerprint256: pckCrl.issuerFingerprint256,
    windows,
    issuerPaths: [
      { what: 'PCK CRL issuer chain', path: pckCrlPath },
      { what: 'TCB info issuer chain', path: tcb.path },
      { what: 'QE identity issuer chain', path: qe.path },
    ],
  };
}

/** The PCK chain as checked once: signatures and the parsed SGX extensions (time and CRLs are re-checked per quote). */
export interface CheckedPckChain {
  path: X509Certificate[];
  leafKey: KeyObject;
  pck: PckExtensions;
  pckCa: PckCa;
}

/**
 * Cache of PCK chains whose signatures have been checked, keyed by the SHA-256 of the chain text and
 * the anchor. A platform's quotes all carry the same chain, so after the first quote a verification
 * costs the two P-256 verifies of the quote itself.
 */
export class PckChainCache {
  private readonly map: BoundedMap<string, CheckedPckChain>;
  /** Attestation keys as KeyObjects (importing a key costs about as much as a verification). */
  private readonly keys: BoundedMap<string, KeyObject>;
  /**
   * QE reports whose PCK signature verified, per checked chain. A platform's QE signs one report for its
   * attestation key and every quote of that platform repeats it, so once the exact bytes (report and
   * signature) verified under that exact PCK, they need not be verified again; the binding of the report to
   * the quote's attestation key is still checked on every quote.
   */
  private readonly qeReports = new WeakMap<CheckedPckChain, Set<string>>();
  constructor(maxEntries = 1024) {
    this.map = new BoundedMap(maxEntries);
    this.keys = new BoundedMap(maxEntries);
  }
  qeReportVerified(chain: CheckedPckChain, digest: string): boolean {
    return this.qeReports.get(chain)?.has(digest) === true;
  }
  markQeReportVerified(chain: CheckedPckChain, digest: string): void {
    let set = this.qeReports.get(chain);
    if (!set) {
      set = new Set();
      this.qeReports.set(chain, set);
    }
    if (set.size >= 64) set.clear();
    set.add(digest);
  }
  attestationKey(raw: Uint8Array): KeyObject {
    const k = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('latin1');
    let key = this.keys.get(k);
    if (!key) {
      key = attestationKeyObject(raw);
      this.keys.set(k, key);
    }
    return key;
  }
  get(key: string): CheckedPckChain | undefined {
    return this.map.get(key);
  }
  set(key: string, v: CheckedPckChain): void {
    this.map.set(key, v);
  }
  get size(): number {
    return this.map.size;
  }
}

/** Checks a PCK chain (PEM text or its bytes) to the anchor and reads the SGX extensions of the leaf. */
export function checkPckChain(pem: string | Uint8Array, anchor: TrustAnchor, cache?: PckChainCache): CheckedPckChain {
  const key = cache ? `${anchor.fingerprint256}:${sha256Hex(pem)}` : '';
  const hit = cache?.get(key);
  if (hit) return hit;
  const text = typeof pem === 'string' ? pem : Buffer.from(pem.buffer, pem.byteOffset, pem.byteLength).toString('latin1');
  const path = verifyChainSignatures(parsePemChain(text, 'PCK certificate chain'), anchor, 'PCK certificate chain');
  if (path.length < 3) throw reject('TDX_CHAIN_INCOMPLETE', `PCK certificate chain has ${path.length} certificates with the anchor; PCK → PCK CA → Root expected`, { length: path.length });
  const pckCa = pckCaOf(path[1]!);
  if (!pckCa) throw reject('TDX_CHAIN_BAD_ISSUER', `PCK certificate issuer ${path[1]!.subject.replace(/\n/g, ', ')} is not an Intel SGX PCK CA`, {});
  const ext = certificateExtension(path[0]!, SGX_EXTENSIONS_OID);
  if (!ext) throw reject('TDX_PCK_EXTENSION_MISSING', `PCK certificate has no SGX extensions (${SGX_EXTENSIONS_OID})`, {});
  const out: CheckedPckChain = { path, leafKey: path[0]!.publicKey, pck: parsePckExtensions(ext), pckCa };
  cache?.set(key, out);
  return out;
}

// SubjectPublicKeyInfo prefix of an uncompressed P-256 point (id-ecPublicKey, prime256v1).
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');

export function attestationKeyObject(raw: Uint8Array): KeyObject {
  try {
    return createPublicKey({ key: Buffer.concat([P256_SPKI_PREFIX, Buffer.from([0x04]), raw]), format: 'der', type: 'spki' });
  } catch (e) {
    throw wrapError('TDX_BAD_ATTESTATION_KEY', 'attestation key is not a P-256 point', e, { attestationKey: toHex(raw) });
  }
}

export interface QuoteSignatureCheckOptions {
  now: Date;
  trustAnchor?: TrustAnchor;
  /** CRLs to apply to the PCK chain (already verified); none means revocation is not checked here. */
  crls?: readonly VerifiedCrl[];
  cache?: PckChainCache;
}

/**
 * The quote's own evidence, without TCB collateral: the attestation key's signature over header ‖ body,
 * the QE report signed by the PCK leaf, QE report data[0:32] = SHA-256(attestation key ‖ QE auth data)
 * (and zeros after), and the PCK chain to the anchor at `now`.
 */
export function verifyQuoteSignatures(quote: TdxQuote, opts: QuoteSignatureCheckOptions): CheckedPckChain {
  const anchor = opts.trustAnchor ?? intelSgxRootCa();
  const sd = quote.signatureData;
  const ak = opts.cache ? opts.cache.attestationKey(sd.attestationKey) : attestationKeyObject(sd.attestationKey);
  if (!p256Verify(ak, quote.signedData, sd.quoteSignature)) {
    throw reject('TDX_QUOTE_BAD_SIGNATURE', 'quote signature over header ‖ TD report body does not verify with the attestation key', { attestationKey: toHex(sd.attestationKey) });
  }
  const cd = sd.certificationData;
  const chain = checkPckChain(cd.pckCertChain, anchor, opts.cache);
  checkChainTimeAndRevocation(chain.path, opts.now, opts.crls ?? [], 'PCK certificate chain');
  const qeDigest = opts.cache ? createHash('sha256').update(cd.qeReport.raw).update(cd.qeReportSignature).digest('base64') : '';
  if (!opts.cache?.qeReportVerified(chain, qeDigest)) {
    if (!p256Verify(chain.leafKey, cd.qeReport.raw, cd.qeReportSignature)) {
      throw reject('TDX_QE_REPORT_BAD_SIGNATURE', 'QE report signature does not verify with the PCK certificate key', {});
    }
    opts.cache?.markQeReportVerified(chain, qeDigest);
  }
  const expected = createHash('sha256').update(sd.attestationKey).update(cd.qeAuthData).digest();
  const rd = cd.qeReport.reportData;
  if (!equalBytes(rd.subarray(0, 32), expected) || rd.subarray(32).some((b) => b !== 0)) {
    throw reject('TDX_QE_REPORT_DATA_MISMATCH', 'QE report data is not SHA-256(attestation key ‖ QE authentication data) ‖ 32 zero bytes', {
      qeReportData: toHex(rd), expected: toHex(expected),
    });
  }
  return chain;
}

export interface TdxTcbPolicy {
  /** TCB statuses accepted for the platform/module (default ["UpToDate"]). */
  allowedTcbStatuses?: readonly string[];
  /** TCB statuses accepted for the QE (default ["UpToDate"]). */
  allowedQeTcbStatuses?: readonly string[];
}

export interface TdxClaims {
  version: number;
  teeType: number;
  bodyType: number;
  fmspc: string;
  pceId: string;
  pckCa: PckCa;
  sgxTcbComponents: number[];
  pceSvn: number;
  teeTcbSvn: string;
  teeTcbSvn2?: string;
  mrSeam: string;
  mrSignerSeam: string;
  seamAttributes: string;
  tdAttributes: string;
  xfam: string;
  mrTd: string;
  mrConfigId: string;
  mrOwner: string;
  mrOwnerConfig: string;
  mrServiceTd?: string;
  rtmr0: string;
  rtmr1: string;
  rtmr2: string;
  rtmr3: string;
  reportData: string;
  tcbDate: string;
  tcbEvaluationDataNumber: number;
  platformTcbStatus: string;
  tdxModule?: TcbEvaluation['tdxModule'];
  qe: QeEvaluation;
}

export interface TdxVerification {
  verified: true;
  tcbStatus: string;
  advisoryIds: string[];
  qeTcbStatus: string;
  claims: TdxClaims;
}

export interface VerifyQuoteOptions {
  now: Date;
  policy?: TdxTcbPolicy;
  cache?: PckChainCache;
}

/**
 * Full verification of a quote against verified collateral at `now`. TCB statuses are claims; the
 * policy (UpToDate only by default) decides which pass.
 */
export function verifyQuoteWithCollateral(quoteBytes: Uint8Array | TdxQuote, collateral: VerifiedCollateral, opts: VerifyQuoteOptions): TdxVerification {
  const quote = quoteBytes instanceof Uint8Array ? decodeQuote(quoteBytes) : quoteBytes;
  const now = opts.now;
  // The quote's own signatures first: a tampered quote is reported as such whatever the collateral's state.
  const chain = verifyQuoteSignatures(quote, { now, trustAnchor: collateral.anchor, crls: collateral.crls, cache: opts.cache });
  for (const w of collateral.windows) checkWindow(w.what, w.from, w.until, now, w.code);
  for (const p of collateral.issuerPaths) checkChainTimeAndRevocation(p.path, now, collateral.crls, p.what);
  if (chain.pckCa !== collateral.pckCa) {
    throw inputError('TDX_COLLATERAL_MISMATCH', `the PCK certificate is issued by the ${chain.pckCa} CA but the collateral carries the ${collateral.pckCa} CA's CRL`, { pckCa: chain.pckCa, crlCa: collateral.pckCa });
  }
  // Revocation of the PCK leaf is only checked if the PCK CRL is the one of the CA that issued it.
  if (fingerprintOf(chain.path[1]!) !== collateral.pckCaFingerprint256) {
    throw reject('TDX_PCK_CRL_ISSUER_MISMATCH', `the PCK certificate's issuer (SHA-256 ${fingerprintOf(chain.path[1]!)}) is not the issuer of the PCK CRL (SHA-256 ${collateral.pckCaFingerprint256})`, {
      pckIssuer: fingerprintOf(chain.path[1]!), crlIssuer: collateral.pckCaFingerprint256,
    });
  }
  const tcb = evaluateTdxTcb(collateral.tcbInfo, chain.pck, quote.body);
  const qe = evaluateQeIdentity(collateral.qeIdentity, quote.signatureData.certificationData.qeReport);
  const advisoryIds = [...tcb.advisoryIds];
  for (const a of qe.advisoryIds) if (!advisoryIds.includes(a)) advisoryIds.push(a);
  const allowed = opts.policy?.allowedTcbStatuses ?? ['UpToDate'];
  if (!allowed.includes(tcb.tcbStatus)) {
    throw reject('TDX_TCB_STATUS_NOT_ALLOWED', `TCB status ${tcb.tcbStatus}${tcb.advisoryIds.length ? ` (advisories ${tcb.advisoryIds.join(', ')})` : ''} is not allowed by policy (allowed: ${allowed.join(', ')})`, {
      tcbStatus: tcb.tcbStatus, advisoryIds: tcb.advisoryIds, allowed, tcbDate: tcb.tcbDate,
    });
  }
  const allowedQe = opts.policy?.allowedQeTcbStatuses ?? ['UpToDate'];
  if (!allowedQe.includes(qe.qeTcbStatus)) {
    throw reject('TDX_QE_TCB_STATUS_NOT_ALLOWED', `QE TCB status ${qe.qeTcbStatus}${qe.advisoryIds.length ? ` (advisories ${qe.advisoryIds.join(', ')})` : ''} is not allowed by policy (allowed: ${allowedQe.join(', ')})`, {
      qeTcbStatus: qe.qeTcbStatus, advisoryIds: qe.advisoryIds, allowed: allowedQe,
    });
  }
  const b = quote.body;
  const claims: TdxClaims = {
    version: quote.header.version,
    teeType: quote.header.teeType,
    bodyType: quote.bodyType,
    fmspc: toHex(chain.pck.fmspc),
    pceId: toHex(chain.pck.pceId),
    pckCa: chain.pckCa,
    sgxTcbComponents: chain.pck.sgxTcbComponents,
    pceSvn: chain.pck.pceSvn,
    ...tdBodyHex(b),
    ...(b.teeTcbSvn2 ? { teeTcbSvn2: toHex(b.teeTcbSvn2) } : {}),
    ...(b.mrServiceTd ? { mrServiceTd: toHex(b.mrServiceTd) } : {}),
    tcbDate: tcb.tcbDate,
    tcbEvaluationDataNumber: collateral.tcbInfo.tcbEvaluationDataNumber,
    platformTcbStatus: tcb.platformTcbStatus,
    ...(tcb.tdxModule ? { tdxModule: tcb.tdxModule } : {}),
    qe,
  };
  return { verified: true, tcbStatus: tcb.tcbStatus, advisoryIds, qeTcbStatus: qe.qeTcbStatus, claims };
}

export interface VerifyQuoteFullOptions extends VerifyQuoteOptions {
  collateral: CollateralBundle | VerifiedCollateral;
  trustAnchor?: TrustAnchor;
}

function isVerified(c: CollateralBundle | VerifiedCollateral): c is VerifiedCollateral {
  return 'windows' in c;
}

/** Decodes and verifies a quote; collateral given raw is verified first (at the same `now`). */
export async function verifyQuote(quoteBytes: Uint8Array, opts: VerifyQuoteFullOptions): Promise<TdxVerification> {
  const quote = decodeQuote(quoteBytes);
  // Before the (slower) collateral: the attestation key's signature over the quote.
  if (!p256Verify(attestationKeyObject(quote.signatureData.attestationKey), quote.signedData, quote.signatureData.quoteSignature)) {
    throw reject('TDX_QUOTE_BAD_SIGNATURE', 'quote signature over header ‖ TD report body does not verify with the attestation key', { attestationKey: toHex(quote.signatureData.attestationKey) });
  }
  const collateral = isVerified(opts.collateral) ? opts.collateral : await verifyCollateral(opts.collateral, { now: opts.now, trustAnchor: opts.trustAnchor });
  if (opts.trustAnchor && collateral.anchor.fingerprint256 !== opts.trustAnchor.fingerprint256) {
    throw inputError('TDX_COLLATERAL_MISMATCH', 'the collateral was verified against another trust anchor', {});
  }
  return verifyQuoteWithCollateral(quote, collateral, opts);
}
