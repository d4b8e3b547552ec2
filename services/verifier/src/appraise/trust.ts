import { existsSync, readdirSync } from 'node:fs';
import { inputError, isJoinguardError } from '@joinguard/core';
import { amdTrustStore, certificatesFromBytes, parseAmdCert, parseProduct, trustStoreFrom, type SnpTrustStore } from '@joinguard/snp';
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
export function defaultTrust(opts: { snpTestRootsPem?: string[]; tdxTestRootsPem?: string[]; tdxCollateralDir?: string } = {}): AppraisalTrust {
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
  return trust;
}
