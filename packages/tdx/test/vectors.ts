import { mkdtempSync, copyFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vectorPath } from '@joinguard/core/testing';

/** The TDX quotes of ../shared/vectors (MANIFEST.md) with the time at which their PCK chain is valid. */
export const QUOTES = {
  v4spr: { path: 'tdx/gotdxguest_v4_spr/quote.dat', at: '2023-07-01T00:00:00Z' },
  v5: { path: 'tdx/gotdxguest_v5/quote.dat', at: '2026-02-03T00:00:00Z' },
  cos113: { path: 'tdx/gotdxguest_cos113_v4_ccel/quote.dat', at: '2025-01-01T00:00:00Z' },
  azure: { path: 'azure/az_tdx_vtpm/td-quote.bin', at: '2025-01-01T00:00:00Z' },
} as const;

/**
 * Assembles an offline collateral directory (README "Offline collateral") in a temp dir from the files
 * in ../shared/vectors/tdx; nothing is copied into the repository.
 */
export function assembleCollateralDir(tcbInfoRel: string, fmspc: string, opts: { qeIdentityJson?: string } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'jg-tdx-collateral-'));
  const roots = (f: string) => vectorPath(`tdx/intel_roots/${f}`);
  copyFileSync(roots('root_ca_crl.der'), join(dir, 'root_ca_crl.der'));
  copyFileSync(roots('pck_platform_crl.der'), join(dir, 'pck_crl_platform.der'));
  copyFileSync(roots('pck_crl_issuer_chain.pem'), join(dir, 'pck_crl_platform_issuer_chain.pem'));
  copyFileSync(roots('tcb_info_issuer_chain.pem'), join(dir, 'tcb_info_issuer_chain.pem'));
  copyFileSync(roots('qe_identity_issuer_chain.pem'), join(dir, 'qe_identity_issuer_chain.pem'));
  if (opts.qeIdentityJson) writeFileSync(join(dir, 'qe_identity.json'), opts.qeIdentityJson);
  else copyFileSync(roots('qe_identity_td_qe_2023-06.json'), join(dir, 'qe_identity.json'));
  copyFileSync(vectorPath(tcbInfoRel), join(dir, `tcb_info_${fmspc}.json`));
  return dir;
}
