import { existsSync, readdirSync, readFileSync, statSync, type Dirent } from 'node:fs';
import { join } from 'node:path';
import { inputError, isAllZero, isJoinguardError, reject, toHex } from '@joinguard/core';
import {
  amdTrustStore, certificatesFromBytes, decodeTcb, KdsClient, kdsCertChainPath, kdsCrlPath, kdsVcekPath, parseAmdCert, parseCrl, parseProduct, productFromCpuid,
  reportCpuid, SNP_PRODUCTS, SnpErrorCode, tcbLayoutFor, trustStoreFrom, type SnpCollateral, type SnpProduct, type SnpReport, type SnpTrustStore,
} from '@joinguard/snp';
import { BUNDLE_FILES, intelSgxRootCa, readCollateralBundle, trustAnchorFromPem, type CollateralBundle, type PckCa, type TrustAnchor } from '@joinguard/tdx';

export interface AppraisalTrust {
  /** AMD's pinned roots (amdTrustStore()) unless a caller chose otherwise. */
  snp: SnpTrustStore;
  /**
   * Further SNP stores tried when the chain does not verify against `snp`: test roots of the simulated
   * CVM. A store holds one ARK per product, so a test Milan root cannot sit beside AMD's Milan ARK.
   */
  snpExtra?: SnpTrustStore[];
  /** Intel SGX Root CA, plus test roots when configured. */
  tdxRoots: TrustAnchor[];
  /** Offline TDX collateral; without it TDX evidence fails its hardware check. */
  tdxCollateral?: CollateralBundle;
  /**
   * Offline AMD KDS cache: where SNP evidence that carries no VCEK finds its VCEK (and chain and CRL).
   * Evidence with its VCEK in `hardware.certs` never looks here.
   */
  snpCollateral?: SnpOfflineCollateral;
  /**
   * Told each time an appraisal needs collateral the configured sources do not hold (the verifier counts
   * these in joinguard_collateral_fetch_failures_total{kind}). Never changes the outcome.
   */
  onCollateralMiss?: (kind: CollateralMissKind, code: string) => void;
}

/** `snp_vcek`: a VCEK (or VLEK) missing from the offline KDS cache; `tdx`: no TDX collateral for the quote's platform. */
export type CollateralMissKind = 'snp_vcek' | 'tdx';

/** What `SnpOfflineCollateral.ages` reports on: the KDS cache's certificates and CRLs. */
export type SnpCacheKind = 'snp_vcek' | 'snp_cert_chain' | 'snp_crl';

/**
 * An offline AMD KDS cache, in the layout `KdsClient({ cacheDir })` of packages/snp writes (and serves in
 * its offline mode): `vcek/v1/<Product>/<hwid>_blSPL_…` (one VCEK, DER, per chip and TCB),
 * `vcek/v1/<Product>/cert_chain` (ASK + ARK, PEM) and `vcek/v1/<Product>/crl` (the ARK's CRL, DER). The
 * appraisal is synchronous, so this reads the files itself (by KdsClient's own path mapping) instead of
 * going through KdsClient's asynchronous getters; it never touches the network. The folder is read as it is
 * at each appraisal (a file's content is kept until the file changes), so an operator may refresh it live.
 */
export class SnpOfflineCollateral {
  private readonly layout: KdsClient;
  /** File contents by path, re-read when the file changes (a refreshed CRL) and forgotten when it goes. */
  private readonly files = new Map<string, { stamp: string; bytes: Uint8Array }>();

  constructor(readonly dir: string) {
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw inputError('APPRAISE_SNP_COLLATERAL_DIR', `SNP collateral directory (KDS cache) ${dir} does not exist`, { dir });
    this.layout = new KdsClient({ cacheDir: dir, offline: true });
  }

  private file(kdsPath: string): string {
    return this.layout.cachePath(kdsPath)!;
  }

  private read(path: string): Uint8Array | undefined {
    let stamp: string;
    try {
      const st = statSync(path);
      stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      this.files.delete(path);
      return undefined;
    }
    const hit = this.files.get(path);
    if (hit?.stamp === stamp) return hit.bytes;
    try {
      const bytes = new Uint8Array(readFileSync(path));
      if (this.files.size >= 4096) this.files.clear();
      this.files.set(path, { stamp, bytes });
      return bytes;
    } catch {
      return undefined;
    }
  }

  /**
   * The VCEK for the report's CHIP_ID and REPORTED_TCB, with the product's chain and CRL when cached. The
   * product comes from the report's CPUID; a report without one (version 2) is looked up under each product.
   * Throws SNP_KDS_OFFLINE_MISS (a rejection) when the cache cannot provide a VCEK.
   */
  find(report: SnpReport): SnpCollateral {
    if (report.signingKey === 1) {
      throw reject(SnpErrorCode.KDS_OFFLINE_MISS, 'the report is signed by a VLEK and hardware.certs has no "vlek": AMD KDS does not serve VLEKs, so no KDS cache holds one', { signingKey: 'vlek' });
    }
    if (isAllZero(report.chipId)) {
      throw reject(SnpErrorCode.KDS_OFFLINE_MISS, 'the report masks its CHIP_ID (MASK_CHIP_KEY) and hardware.certs has no "vcek": the VCEK cannot be looked up in the KDS cache', {});
    }
    const cpuid = reportCpuid(report);
    const stated = cpuid ? productFromCpuid(cpuid.family, cpuid.model) : undefined;
    const products: readonly SnpProduct[] = stated ? [stated] : SNP_PRODUCTS;
    const tried: string[] = [];
    for (const product of products) {
      const kdsPath = kdsVcekPath(product, report.chipId, decodeTcb(report.reportedTcb, tcbLayoutFor(product)));
      tried.push(kdsPath);
      const vcek = this.read(this.file(kdsPath));
      if (!vcek) continue;
      const out: SnpCollateral = { vcek };
      const chain = this.read(this.file(kdsCertChainPath(product, 'vcek')));
      if (chain) out.chain = chain;
      const crl = this.read(this.file(kdsCrlPath(product, 'vcek')));
      if (crl) out.crl = crl;
      return out;
    }
    // The message goes back to the attester: it names KDS paths, not the verifier's folders.
    throw reject(SnpErrorCode.KDS_OFFLINE_MISS, `hardware.certs has no "vcek" and the offline KDS cache holds none for chip ${toHex(report.chipId).slice(0, 16)}… at this REPORTED_TCB (${tried.join(', ')})`, {
      kdsPaths: tried,
    });
  }

  /**
   * Seconds since the oldest file of each kind in the cache was written (KdsClient writes a file when it fetches
   * it; copying a cache should keep the modification times), at `now`. Kinds the cache holds nothing of are absent.
   */
  ages(now: Date): Partial<Record<SnpCacheKind, number>> {
    const oldest: Partial<Record<SnpCacheKind, number>> = {};
    const walk = (d: string, depth: number): void => {
      let entries: Dirent[];
      try {
        entries = readdirSync(d, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        const p = join(d, e.name);
        if (e.isDirectory()) {
          if (depth < 4) walk(p, depth + 1);
          continue;
        }
        if (!e.isFile() || e.name.endsWith('.tmp')) continue;
        const kind: SnpCacheKind = e.name === 'crl' ? 'snp_crl' : e.name === 'cert_chain' ? 'snp_cert_chain' : 'snp_vcek';
        try {
          const m = statSync(p).mtimeMs;
          if (oldest[kind] === undefined || m < oldest[kind]!) oldest[kind] = m;
        } catch {
          // removed meanwhile
        }
      }
    };
    walk(this.dir, 0);
    const out: Partial<Record<SnpCacheKind, number>> = {};
    for (const [k, m] of Object.entries(oldest) as [SnpCacheKind, number][]) out[k] = Math.max(0, (now.getTime() - m) / 1000);
    return out;
  }
}

/**
 * When the TDX offline bundle was issued: the earliest of its TCB info's and QE identity's `issueDate` and its
 * CRLs' `thisUpdate` (a part whose date cannot be read is left out). The verifier reports now minus this as
 * joinguard_collateral_cache_age_seconds{kind="tdx"}.
 */
export function tdxCollateralIssuedAt(b: CollateralBundle): Date | undefined {
  const times: number[] = [];
  for (const [text, member] of [[b.tcbInfo, 'tcbInfo'], [b.qeIdentity, 'enclaveIdentity']] as const) {
    try {
      const t = Date.parse((JSON.parse(text) as Record<string, { issueDate?: string }>)[member]?.issueDate ?? '');
      if (!Number.isNaN(t)) times.push(t);
    } catch {
      // not JSON: verification will say so
    }
  }
  for (const crl of [b.pckCrl, b.rootCaCrl]) {
    try {
      times.push(parseCrl(crl).thisUpdate.getTime());
    } catch {
      // not a DER CRL: left out
    }
  }
  return times.length > 0 ? new Date(Math.min(...times)) : undefined;
}

/** A PEM with a test ARK and its ASK/ASVK; the product comes from the ARK's name ("ARK-Milan"). */
function snpStoreFromPem(pem: string, i: number): SnpTrustStore {
  const what = `SNP test root ${i}`;
  const ders = certificatesFromBytes(new Uint8Array(Buffer.from(pem, 'latin1')), what);
  const certs = ders.map((der, j) => ({ der, cert: parseAmdCert(der, `${what} certificate ${j}`) }));
  const ark = certs.find((c) => c.cert.subject === c.cert.issuer || /^ARK-/.test(c.cert.commonName ?? ''));
  if (!ark) throw inputError('APPRAISE_BAD_TRUST_ROOT', `${what} holds no self-signed ARK`, {});
  const name = /^ARK-(\w+)/.exec(ark.cert.commonName ?? '')?.[1];
  if (!name) throw inputError('APPRAISE_BAD_TRUST_ROOT', `${what}: the ARK's common name ${JSON.stringify(ark.cert.commonName)} names no product`, {});
  const product = parseProduct(name);
  const ask = certs.find((c) => c !== ark && !/VLEK/.test(c.cert.commonName ?? ''));
  const asvk = certs.find((c) => c !== ark && /VLEK/.test(c.cert.commonName ?? ''));
  return trustStoreFrom([{ product, ark: ark.der, ...(ask ? { ask: ask.der } : {}), ...(asvk ? { asvk: asvk.der } : {}) }]);
}

/** Reads the one platform's bundle in an offline collateral directory (tdx package layout). */
export function readCollateralDir(dir: string): CollateralBundle {
  if (!existsSync(dir)) throw inputError('APPRAISE_TDX_COLLATERAL_DIR', `TDX collateral directory ${dir} does not exist`, { dir });
  const fmspcs = readdirSync(dir)
    .map((f) => /^tcb_info_([0-9a-f]{12})\.json$/.exec(f)?.[1])
    .filter((x): x is string => x !== undefined);
  if (fmspcs.length !== 1) {
    throw inputError('APPRAISE_TDX_COLLATERAL_DIR', `TDX collateral directory ${dir} must hold the TCB info of exactly one platform, found ${fmspcs.length}`, { dir, fmspcs });
  }
  const ca: PckCa = existsSync(`${dir}/${BUNDLE_FILES.pckCrl('platform')}`) ? 'platform' : 'processor';
  return readCollateralBundle(dir, fmspcs[0]!, ca);
}

/**
 * The production trust anchors (AMD's ARKs, Intel's SGX Root CA), plus test roots when a deployment
 * names them (the demo and the tests: a simulated CVM is trusted only where its root is configured).
 */
export function defaultTrust(opts: { snpTestRootsPem?: string[]; tdxTestRootsPem?: string[]; tdxCollateralDir?: string; snpCollateralDir?: string } = {}): AppraisalTrust {
  const trust: AppraisalTrust = { snp: amdTrustStore(), tdxRoots: [intelSgxRootCa()] };
  if (opts.snpTestRootsPem?.length) {
    trust.snpExtra = opts.snpTestRootsPem.map((pem, i) => {
      try {
        return snpStoreFromPem(pem, i);
      } catch (e) {
        // A trust root that cannot be read is a configuration error (exit 2 / refusing to start), not a rejection.
        if (isJoinguardError(e) && e.kind === 'input') throw e;
        throw inputError('APPRAISE_BAD_TRUST_ROOT', `SNP test root ${i} is not a PEM with an AMD-style ARK: ${e instanceof Error ? e.message : String(e)}`, {});
      }
    });
  }
  for (const [i, pem] of (opts.tdxTestRootsPem ?? []).entries()) {
    try {
      trust.tdxRoots.push(trustAnchorFromPem(pem));
    } catch (e) {
      throw inputError('APPRAISE_BAD_TRUST_ROOT', `TDX test root ${i} is not one PEM certificate: ${e instanceof Error ? e.message : String(e)}`, {});
    }
  }
  if (opts.tdxCollateralDir !== undefined) {
    try {
      trust.tdxCollateral = readCollateralDir(opts.tdxCollateralDir);
    } catch (e) {
      if (isJoinguardError(e) && e.kind === 'input') throw e;
      throw inputError('APPRAISE_TDX_COLLATERAL_DIR', `cannot read TDX collateral from ${opts.tdxCollateralDir}: ${e instanceof Error ? e.message : String(e)}`, { dir: opts.tdxCollateralDir });
    }
  }
  if (opts.snpCollateralDir !== undefined) trust.snpCollateral = new SnpOfflineCollateral(opts.snpCollateralDir);
  return trust;
}
