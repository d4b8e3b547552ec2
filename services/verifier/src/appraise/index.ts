// The verifier's appraisal engine: one evidence bundle (DESIGN.md "Evidence and binding") in, an Appraisal
// with every check named out. Used by the HTTP verifier, `joinguard verify` and `joinguard audit verify
// --reappraise`. Checks, in order (names are stable):
//
//   evidence.decode                  shape, sizes, base64; d = SHA-512(nonce ‖ SHA-256(JCS(runtimeData)))
//   <tee>.hardware                   SNP report / TDX quote: signature, chain to a trusted root, TCB collateral
//                                    (Azure: the HCL report; for TDX also the TD quote in hardware.certs.tdQuote)
//   binding.reportData               bare SNP/TDX: REPORT_DATA = d
//   binding.azure.userData           Azure: runtime claims user-data = hex(d)
//   binding.azure.varDataDigest      Azure: REPORT_DATA[0:32] = SHA-256(runtime claims)
//   binding.akPublic                 bare: SHA-256(TPMT_PUBLIC) = runtimeData.akPublicSha256 (Azure: HCLAkPub)
//   tpm.quote                        signature by a restricted signing AK, pcrDigest over tpm.pcrs
//   binding.tpmExtraData             extraData = SHA-256(d)
//   eventlog.replay                  every PCR the log extends equals the quoted value
//   teeKey                           P-256 / X25519 public JWK, nothing private
//   policy.<rule>                    every rule of @joinguard/policy's evaluate()
//   policy.tpm.akPinned              tpm.pinAk policies: the AK is the one the node is pinned to (ctx.pinnedAkSha256)
//
// The first failing check before the policy stops the chain (later ones are "skip"); the policy runs on
// whatever claims were verified. Bad evidence never throws; only internal faults do. The nonce's own
// checks (MAC, expiry, replay) belong to the server.
import type { Evidence } from '@joinguard/protocol';
import { appraiseInternal, type AppraisalContext, type AppraisalOutcome } from './engine.js';

export { notePassedEdgeSchema } from './engine.js';

export type { AppraisalContext, AppraisalOutcome } from './engine.js';
export type { AppraisalTrust } from './trust.js';
export { defaultTrust, readCollateralDir } from './trust.js';
export { decodeHclReport } from './azure.js';
export type { HclReport } from './azure.js';

export async function appraiseEvidence(evidence: Evidence, ctx: AppraisalContext): Promise<AppraisalOutcome> {
  return appraiseInternal(evidence, ctx);
}
