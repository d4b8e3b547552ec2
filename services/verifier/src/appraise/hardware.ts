import { digest, equalBytes, inputError, isJoinguardError, pemDecode, reject, toHex, type JoinguardError } from '@joinguard/core';
import type { SnpClaims as PolicySnpClaims, TdxClaims as PolicyTdxClaims } from '@joinguard/policy';
import { TDX_TCB_STATUSES } from '@joinguard/policy';
import { fromB64 } from '@joinguard/protocol';
import {
  certificatesFromBytes, decodeReport, parseAmdCert, parseProduct, reportCpuid, verifyReport, type ChainCache, type SnpCollateral, type SnpProduct, type SnpReport, type SnpTrustStore, type VerifiedSnpReport,
} from '@joinguard/snp';
import {
  decodeQuote, verifyCollateral, verifyQuoteSignatures, verifyQuoteWithCollateral, type CollateralBundle, type PckChainCache, type TdxQuote, type TdxVerification, type TrustAnchor, type VerifiedCollateral,
} from '@joinguard/tdx';
import { TDREPORT } from './azure.js';
import type { AppraisalTrust } from './trust.js';

/** Certificates in evidence.hardware.certs are PEM text or base64 DER. */
export function certBytes(value: string, name: string): Uint8Array {
  if (value.includes('-----BEGIN')) {
    // Checked whole here (nothing but certificate blocks and whitespace), decoded by the SNP package.
    pemDecode(value, 'CERTIFICATE', { code: 'APPRAISE_BAD_CERT_ENCODING', what: `hardware.certs.${name}`, onlyBlocks: true });
    return new Uint8Array(Buffer.from(value, 'latin1'));
  }
  const der = value.replace(/[ \t\r\n]+/g, '');
  try {
    if (der.length > 0) return fromB64(der, 'APPRAISE_BAD_CERT_ENCODING', `hardware.certs.${name}`);
  } catch {
    // refused below, as a rejection of the evidence
  }
  throw reject('APPRAISE_BAD_CERT_ENCODING', `hardware.certs.${name} is neither PEM nor base64`, { cert: name });
}

export interface SnpHardwareResult {
  verified: VerifiedSnpReport;
  claims: PolicySnpClaims;
  reportData: Uint8Array;
}

const storeByVcek = new WeakMap<AppraisalTrust, Map<string, SnpTrustStore>>();

const CHAIN_CODES = new Set(['SNP_ARK_NOT_TRUSTED', 'SNP_CHAIN_ISSUER_MISMATCH', 'SNP_CHAIN_BAD_SIGNATURE', 'SNP_NO_TRUST_ANCHOR', 'SNP_CHAIN_INCOMPLETE']);

/** A report v2 names no product (no CPUID): take it from the VCEK's productName extension ("Milan-B0"). */
function productFromVcek(vcek: Uint8Array): SnpProduct | undefined {
  try {
    const leaf = parseAmdCert(certificatesFromBytes(vcek, 'VCEK')[0]!, 'VCEK');
    const name = leaf.extensions.productName?.split('-')[0];
    return name ? parseProduct(name) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The VCEK and chain of evidence that carries no VCEK, from the offline KDS cache (certificates the evidence
 * does carry, an ASK or a CRL, still win). A miss is a rejection, reported to `trust.onCollateralMiss`.
 */
function offlineSnpCollateral(decoded: SnpReport, certs: Record<string, string>, trust: AppraisalTrust): SnpCollateral {
  let found: SnpCollateral;
  try {
    found = trust.snpCollateral!.find(decoded);
  } catch (e) {
    if (isJoinguardError(e) && e.kind !== 'internal') trust.onCollateralMiss?.('snp_vcek', e.code);
    throw e;
  }
  return withEvidenceCerts({ ...found }, certs);
}

/** The ASK, ARK, chain and CRL the evidence carries, over whatever `collateral` holds. */
function withEvidenceCerts(collateral: SnpCollateral, certs: Record<string, string>): SnpCollateral {
  if (certs.ask) collateral.ask = certBytes(certs.ask, 'ask');
  if (certs.ark) collateral.ark = certBytes(certs.ark, 'ark');
  if (certs.chain) collateral.chain = certBytes(certs.chain, 'chain');
  if (certs.crl) collateral.crl = certBytes(certs.crl, 'crl');
  return collateral;
}

/**
 * SEV-SNP report: signature, VCEK/VLEK chain to a trusted ARK (AMD's, then any configured test root), the
 * VCEK's TCB and chip id against the report, and the ARK's CRL when supplied. Evidence without a VCEK is
 * refused, unless an offline KDS cache is configured (`trust.snpCollateral`) and holds the VCEK.
 */
export function verifySnpHardware(report: Uint8Array, certs: Record<string, string>, trust: AppraisalTrust, now: Date, cache?: ChainCache): SnpHardwareResult {
  let collateral: SnpCollateral;
  let decoded: SnpReport;
  if (!certs.vcek && !certs.vlek) {
    if (!trust.snpCollateral) throw reject('APPRAISE_SNP_NO_VCEK', 'hardware.certs has no "vcek" (or "vlek"): the report signature cannot be checked', { certs: Object.keys(certs) });
    decoded = decodeReport(report);
    collateral = offlineSnpCollateral(decoded, certs, trust);
  } else {
    collateral = withEvidenceCerts({ vcek: certBytes((certs.vcek ?? certs.vlek)!, certs.vcek ? 'vcek' : 'vlek') }, certs);
    decoded = decodeReport(report);
  }
  const product = reportCpuid(decoded) ? undefined : productFromVcek(collateral.vcek);
  const all: SnpTrustStore[] = [trust.snp, ...(trust.snpExtra ?? [])];
  // Try first the store that verified this VCEK before: a failed chain is not cached, so trying AMD's roots
  // for every simulated CVM's report would cost a chain verification each time.
  let seen = storeByVcek.get(trust);
  if (!seen) storeByVcek.set(trust, (seen = new Map()));
  const vcekKey = digest('sha256', collateral.vcek, 'hex');
  const preferred = seen.get(vcekKey);
  const stores = preferred ? [preferred, ...all.filter((x) => x !== preferred)] : all;
  let first: JoinguardError | undefined;
  for (const store of stores) {
    try {
      const verified = verifyReport(decoded, collateral, { now, trust: store, ...(product ? { product } : {}), ...(cache ? { cache } : {}) });
      if (preferred !== store) {
        if (seen.size >= 4096) seen.clear();
        seen.set(vcekKey, store);
      }
      return { verified, claims: verified.claims as unknown as PolicySnpClaims, reportData: decoded.reportData };
    } catch (e) {
      if (!isJoinguardError(e) || e.kind === 'internal') throw e;
      first ??= e;
      // Only a chain that ends elsewhere is worth another store; anything else fails the same way everywhere.
      if (!CHAIN_CODES.has(e.code)) throw e;
    }
  }
  throw first!;
}

export interface TdxHardwareResult {
  quote: TdxQuote;
  verification?: TdxVerification;
  claims: PolicyTdxClaims;
  reportData: Uint8Array;
}

/** Statuses handed to the policy rather than refused here; only a revoked TCB is no TDX at all. */
const TCB_STATUSES_FOR_POLICY = TDX_TCB_STATUSES.filter((s) => s !== 'Revoked');

const TDX_MISSING_COLLATERAL_CODES = new Set(['TDX_TCB_INFO_FMSPC_MISMATCH', 'TDX_TCB_INFO_PCEID_MISMATCH', 'TDX_PCK_CRL_ISSUER_MISMATCH']);

const collateralCache = new WeakMap<CollateralBundle, Map<string, VerifiedCollateral>>();

async function verifiedCollateral(bundle: CollateralBundle, roots: TrustAnchor[], now: Date): Promise<VerifiedCollateral> {
  let perRoot = collateralCache.get(bundle);
  if (!perRoot) collateralCache.set(bundle, (perRoot = new Map()));
  for (const anchor of roots) {
    const hit = perRoot.get(anchor.fingerprint256);
    if (hit) return hit;
  }
  let first: unknown;
  for (const anchor of roots) {
    try {
      const v = await verifyCollateral(bundle, { now, trustAnchor: anchor });
      perRoot.set(anchor.fingerprint256, v);
      return v;
    } catch (e) {
      if (isJoinguardError(e) && e.kind === 'internal') throw e;
      first ??= e;
    }
  }
  throw first ?? inputError('APPRAISE_NO_TDX_ROOT', 'no TDX trust anchor is configured', {});
}

function tdxClaims(quote: TdxQuote, v: TdxVerification | undefined): PolicyTdxClaims {
  const b = quote.body;
  return {
    tcbStatus: v?.tcbStatus ?? 'Unknown',
    advisoryIds: v?.advisoryIds ?? [],
    tdAttributes: toHex(b.tdAttributes),
    mrTd: toHex(b.mrTd),
    mrConfigId: toHex(b.mrConfigId),
    mrOwner: toHex(b.mrOwner),
    mrOwnerConfig: toHex(b.mrOwnerConfig),
    rtmr0: toHex(b.rtmr0),
    rtmr1: toHex(b.rtmr1),
    rtmr2: toHex(b.rtmr2),
    rtmr3: toHex(b.rtmr3),
    mrSeam: toHex(b.mrSeam),
    teeTcbSvn: toHex(b.teeTcbSvn),
    reportData: toHex(b.reportData),
  };
}

/**
 * TDX quote: attestation-key signature, QE report signed by the PCK, PCK chain to a configured root, then
 * TCB info and QE identity from the offline collateral. Without collateral the quote is refused (the TCB
 * cannot be judged) unless `withoutCollateral` (tests of real quotes whose collateral is not published).
 */
export async function verifyTdxHardware(quoteBytes: Uint8Array, trust: AppraisalTrust, now: Date, cache?: PckChainCache, withoutCollateral = false): Promise<TdxHardwareResult> {
  const quote = decodeQuote(quoteBytes);
  if (!trust.tdxCollateral) {
    let checked = false;
    let first: unknown;
    for (const anchor of trust.tdxRoots) {
      try {
        verifyQuoteSignatures(quote, { now, trustAnchor: anchor, ...(cache ? { cache } : {}) });
        checked = true;
        break;
      } catch (e) {
        if (isJoinguardError(e) && (e.kind === 'internal' || e.code === 'TDX_QUOTE_BAD_SIGNATURE')) throw e;
        first ??= e;
      }
    }
    if (!checked) throw first ?? inputError('APPRAISE_NO_TDX_ROOT', 'no TDX trust anchor is configured', {});
    if (!withoutCollateral) {
      trust.onCollateralMiss?.('tdx', 'APPRAISE_TDX_NO_COLLATERAL');
      throw reject('APPRAISE_TDX_NO_COLLATERAL', 'the quote signature, QE report and PCK chain verify, but no TDX collateral (TCB info, QE identity, CRLs) is configured, so the TCB cannot be judged', {});
    }
    return { quote, claims: tdxClaims(quote, undefined), reportData: quote.body.reportData };
  }
  const collateral = await verifiedCollateral(trust.tdxCollateral, trust.tdxRoots, now);
  let verification: TdxVerification;
  try {
    verification = verifyQuoteWithCollateral(quote, collateral, {
      now,
      policy: { allowedTcbStatuses: TCB_STATUSES_FOR_POLICY, allowedQeTcbStatuses: TCB_STATUSES_FOR_POLICY },
      ...(cache ? { cache } : {}),
    });
  } catch (e) {
    // The bundle is another platform's (FMSPC) or carries the other PCK CA's CRL: this quote's collateral is missing.
    if (isJoinguardError(e) && TDX_MISSING_COLLATERAL_CODES.has(e.code)) trust.onCollateralMiss?.('tdx', e.code);
    throw e;
  }
  return { quote, verification, claims: tdxClaims(quote, verification), reportData: quote.body.reportData };
}

/** The Azure TDX quote must be the quote of the HCL report's TDREPORT: same REPORTDATA and TDINFO. */
export function checkTdReportMatchesQuote(tdReport: Uint8Array, quote: TdxQuote): void {
  const b = quote.body;
  const pairs: [keyof typeof TDREPORT, Uint8Array][] = [
    ['REPORT_DATA', b.reportData], ['TD_ATTRIBUTES', b.tdAttributes], ['XFAM', b.xfam], ['MR_TD', b.mrTd], ['MR_CONFIG_ID', b.mrConfigId],
    ['MR_OWNER', b.mrOwner], ['MR_OWNER_CONFIG', b.mrOwnerConfig], ['RTMR0', b.rtmr0], ['RTMR1', b.rtmr1], ['RTMR2', b.rtmr2], ['RTMR3', b.rtmr3],
  ];
  for (const [field, fromQuote] of pairs) {
    const [off, len] = TDREPORT[field];
    const fromReport = tdReport.subarray(off, off + len);
    if (!equalBytes(fromReport, fromQuote)) {
      throw reject('AZURE_TDREPORT_QUOTE_MISMATCH', `the TD quote's ${field} differs from the HCL report's TDREPORT: the quote is not of this TD report`, {
        field, expected: toHex(fromReport), actual: toHex(fromQuote),
      });
    }
  }
}
