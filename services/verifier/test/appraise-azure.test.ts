import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { newKeyPair } from '@joinguard/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { readVector, readVectorText } from '@joinguard/core/testing';
import { POLICY_API_VERSION, POLICY_KIND, policyDigest, type Policy } from '@joinguard/policy';
import { defaultTrust, type AppraisalContext, type AppraisalOutcome } from '../src/appraise/index.js';
import { appraiseWithExpectedBinding } from '../src/appraise/testing.js';
import { AZURE_VECTORS_TIME, CHALLENGE, ZERO_USER_DATA, azureEvidence, hclAkSpki, tpmtSignatureRsassa } from './support/azure.js';

/*
 * The published Azure CVM bundles (MANIFEST.md "azure/"), fed through the engine with their own binding:
 * they were made for Azure's challenge, so runtime claims user-data is 64 zero bytes and the vTPM quote's
 * extraData is "challenge" (MANIFEST), not a d of ours. appraiseWithExpectedBinding substitutes exactly
 * those two values; every other check runs as in production.
 *
 * Checks these real vectors exercise (and must pass):
 *   azure-snp-vtpm: evidence.decode; azure-snp-vtpm.hardware (HCL layout, SNP report v2 signature with the
 *     VCEK, VCEK → ASK → AMD's pinned Milan ARK, VCEK TCB/chip id = report); binding.azure.userData;
 *     binding.azure.varDataDigest (REPORT_DATA[0:32] = SHA-256(runtime claims)); tpm.quote (RSASSA signature
 *     by HCLAkPub, pcrDigest over the 24 SHA-256 PCRs); binding.tpmExtraData; teeKey (ours).
 *   azure-tdx-vtpm: the same, with azure-tdx-vtpm.hardware = TD quote v4 signature, QE report, PCK chain to
 *     Intel's SGX Root CA, and TDREPORT (in the HCL report) = quote body; TCB collateral for FMSPC
 *     00806f050000 is not published, so the TCB status is not judged (tdxWithoutCollateral).
 * Not exercised: binding.reportData and binding.akPublic (bare SNP/TDX only); eventlog.replay is run on a
 * header-only log (the bundles carry no event log), so it compares nothing.
 *
 * With no event log, the SecureBoot variable is not measured, so these policies say that they do not require
 * Secure Boot (the default requires it: see 'the default policy rules' below); every event the empty log
 * holds is still required to be verified, and is.
 */

const NOW = AZURE_VECTORS_TIME;

function policyFor(tee: 'azure-snp-vtpm' | 'azure-tdx-vtpm'): Policy {
  return {
    apiVersion: POLICY_API_VERSION,
    kind: POLICY_KIND,
    name: `azure-vectors-${tee}`,
    tee: { allowed: [tee] },
    snp: { guestPolicy: { allowDebug: false, allowMigrateMa: false, allowSmt: true } },
    tdx: { allowedTcbStatuses: ['UpToDate'], allowDebug: false },
    tpm: { requiredBanks: ['sha256'] },
    boot: { requireSecureBoot: false },
  };
}

function ctxFor(policy: Policy): AppraisalContext {
  return { now: NOW, policy, policyRef: { id: policy.name, digest: policyDigest(policy) }, trust: defaultTrust() };
}

const outcome = (o: AppraisalOutcome, name: string) => o.appraisal.checks.find((c) => c.name === name)?.outcome;
const failed = (o: AppraisalOutcome) => o.appraisal.checks.filter((c) => c.outcome === 'fail').map((c) => `${c.name}:${c.code}`);
/** Failures of the hardware/crypto/binding chain (the policy still runs on the claims verified before). */
const chainFailed = (o: AppraisalOutcome) => failed(o).filter((x) => !x.startsWith('policy.'));

const EXERCISED = ['evidence.decode', 'binding.azure.userData', 'binding.azure.varDataDigest', 'tpm.quote', 'binding.tpmExtraData', 'eventlog.replay', 'teeKey'];
const expected = { azureUserData: ZERO_USER_DATA, tpmExtraData: CHALLENGE };

/** An RSA signing key as a TPMT_PUBLIC (TPM 2.0 Part 2, 12.2.4): restricted signing AK, RSASSA-SHA256. */
function rsaTpmtPublic(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' });
  const n = Buffer.from(jwk.n!, 'base64url');
  const e = Buffer.from(jwk.e!, 'base64url').readUIntBE(0, Buffer.from(jwk.e!, 'base64url').length);
  const b = Buffer.alloc(2 + 2 + 4 + 2 + 2 + 2 + 2 + 2 + 4 + 2 + n.length);
  let o = 0;
  o = b.writeUInt16BE(0x0001, o); // type TPM_ALG_RSA
  o = b.writeUInt16BE(0x000b, o); // nameAlg SHA-256
  o = b.writeUInt32BE(0x00050072, o); // fixedTPM fixedParent sensitiveDataOrigin userWithAuth restricted sign
  o = b.writeUInt16BE(0, o); // authPolicy: empty
  o = b.writeUInt16BE(0x0010, o); // symmetric: TPM_ALG_NULL
  o = b.writeUInt16BE(0x0014, o); // scheme: RSASSA
  o = b.writeUInt16BE(0x000b, o); // scheme hash: SHA-256
  o = b.writeUInt16BE(n.length * 8, o); // keyBits
  o = b.writeUInt32BE(e === 65537 ? 0 : e, o); // exponent (0 = 2^16 + 1)
  o = b.writeUInt16BE(n.length, o);
  n.copy(b, o);
  return b;
}

describe('real Azure SNP vTPM bundle (az_snp_vtpm_milan_v2)', () => {
  let out: AppraisalOutcome;
  beforeAll(async () => {
    out = await appraiseWithExpectedBinding(azureEvidence('az_snp_vtpm_milan_v2', 'azure-snp-vtpm'), ctxFor(policyFor('azure-snp-vtpm')), expected);
  });

  it('passes hardware, every applicable binding and the vTPM quote', () => {
    expect(failed(out)).toEqual([]);
    for (const name of ['azure-snp-vtpm.hardware', ...EXERCISED]) expect(outcome(out, name), name).toBe('pass');
    expect(outcome(out, 'binding.reportData')).toBeUndefined();
    expect(outcome(out, 'binding.akPublic')).toBeUndefined();
    expect(outcome(out, 'policy.boot.secureBoot')).toBe('skip');
    expect(outcome(out, 'policy.boot.events.verified')).toBe('pass');
    expect(out.appraisal.verdict).toBe('pass');
  });

  it('fails policy.boot.secureBoot under a policy that does not say otherwise: the bundle measures no SecureBoot variable', async () => {
    const { boot: _, ...policy } = policyFor('azure-snp-vtpm');
    const o = await appraiseWithExpectedBinding(azureEvidence('az_snp_vtpm_milan_v2', 'azure-snp-vtpm'), ctxFor(policy), expected);
    expect(chainFailed(o)).toEqual([]);
    expect(failed(o)).toEqual(['policy.boot.secureBoot:POLICY_SECURE_BOOT']);
    expect(outcome(o, 'policy.boot.events.verified')).toBe('pass');
    expect(o.appraisal.verdict).toBe('fail');
  });

  it('yields the report claims the MANIFEST lists (measurement 9ac48fca…c315, policy 0x3001f, TCB 0x7308000000000003)', () => {
    const m = out.measurements.measurement!;
    expect(m.startsWith('9ac48fca')).toBe(true);
    expect(m.endsWith('c315')).toBe(true);
    expect(out.claims?.snp?.reportedTcb).toMatchObject({ bootloader: 3, tee: 0, snp: 8, microcode: 115 });
    expect(out.claims?.snp?.policy).toMatchObject({ smt: true, debug: false, migrateMa: false });
    expect(Object.keys(out.claims?.tpm?.pcrs.sha256 ?? {})).toHaveLength(24);
    expect(out.measurements['pcr.sha256.0']).toMatch(/^[0-9a-f]{64}$/);
  });

  it('fails binding.azure.userData when the bundle is judged by our d (it was bound to Azure\'s challenge)', async () => {
    const o = await appraiseWithExpectedBinding(azureEvidence('az_snp_vtpm_milan_v2', 'azure-snp-vtpm'), ctxFor(policyFor('azure-snp-vtpm')), { tpmExtraData: CHALLENGE });
    expect(chainFailed(o)).toEqual(['binding.azure.userData:AZURE_USER_DATA_MISMATCH']);
    expect(outcome(o, 'tpm.quote')).toBe('skip');
  });

  it('fails binding.tpmExtraData when extraData must be SHA-256(d)', async () => {
    const o = await appraiseWithExpectedBinding(azureEvidence('az_snp_vtpm_milan_v2', 'azure-snp-vtpm'), ctxFor(policyFor('azure-snp-vtpm')), { azureUserData: ZERO_USER_DATA });
    expect(chainFailed(o)).toEqual(['binding.tpmExtraData:APPRAISE_TPM_EXTRA_DATA_MISMATCH']);
  });

  it('fails binding.azure.varDataDigest on the derived report whose runtime data was changed (0x6e0 + 1)', async () => {
    // MANIFEST: byte 0x6e0 of the HCL report + 1, as in the source test. It lies in the runtime claims JSON,
    // inside HCLEkPub's modulus: user-data (64 zero bytes) and HCLAkPub are untouched, the SNP report (and its
    // signature) is too, so only REPORT_DATA[0:32] = SHA-256(runtime claims) can catch it.
    const hclFile = 'azure/derived/az_snp_hcl_report_vardata_0x6e0_plus1.bin';
    const o = await appraiseWithExpectedBinding(azureEvidence('az_snp_vtpm_milan_v2', 'azure-snp-vtpm', hclFile), ctxFor(policyFor('azure-snp-vtpm')), expected);
    expect(outcome(o, 'azure-snp-vtpm.hardware')).toBe('pass');
    expect(outcome(o, 'binding.azure.userData')).toBe('pass');
    expect(chainFailed(o)).toEqual(['binding.azure.varDataDigest:AZURE_VAR_DATA_DIGEST_MISMATCH']);
    for (const later of ['tpm.quote', 'binding.tpmExtraData', 'eventlog.replay', 'teeKey']) expect(outcome(o, later), later).toBe('skip');
    // expected = SHA-256 of the changed runtime claims, actual = REPORT_DATA[0:32] (b3fbad65…afac, MANIFEST).
    const c = o.appraisal.checks.find((x) => x.name === 'binding.azure.varDataDigest')!;
    const hcl = Buffer.from(readVector(hclFile));
    const at = 0x20 + 1184;
    const runtimeClaims = hcl.subarray(at + 20, at + 20 + hcl.readUInt32LE(at + 16));
    expect(c.expected).toBe(createHash('sha256').update(runtimeClaims).digest('hex'));
    expect(c.actual).toMatch(/^b3fbad65[0-9a-f]{52}afac$/);
    expect(o.appraisal.verdict).toBe('fail');
  });

  it('fails tpm.quote with AZURE_AK_MISMATCH when tpm.akPublic is another RSA key than HCLAkPub (SPKI, as the bundle carries it)', async () => {
    // The AK of the trustee vTPM vector (MANIFEST: an SPKI DER, RSA-2048): a real AK, just not this CVM's.
    const other = Buffer.from((JSON.parse(readVectorText('tpm/trustee_tpm_evidence/tpm_evidence.json')) as { ak_public: string }).ak_public, 'base64');
    expect(createPublicKey({ key: other, format: 'der', type: 'spki' }).asymmetricKeyDetails?.modulusLength).toBe(2048);
    const ev = azureEvidence('az_snp_vtpm_milan_v2', 'azure-snp-vtpm');
    expect(other.equals(Buffer.from(ev.tpm.akPublic, 'base64'))).toBe(false);
    ev.tpm.akPublic = other.toString('base64');
    const o = await appraiseWithExpectedBinding(ev, ctxFor(policyFor('azure-snp-vtpm')), expected);
    expect(outcome(o, 'binding.azure.varDataDigest')).toBe('pass');
    expect(chainFailed(o)).toEqual(['tpm.quote:AZURE_AK_MISMATCH']);
    expect(outcome(o, 'binding.tpmExtraData')).toBe('skip');
    expect(o.claims?.tpm).toBeUndefined();
    expect(o.appraisal.verdict).toBe('fail');
  });

  it('fails tpm.quote with AZURE_AK_MISMATCH for another RSA key as a TPMT_PUBLIC, and passes with HCLAkPub as one', async () => {
    const ctx = ctxFor(policyFor('azure-snp-vtpm'));
    const ev = azureEvidence('az_snp_vtpm_milan_v2', 'azure-snp-vtpm');
    ev.tpm.akPublic = rsaTpmtPublic(newKeyPair({ type: 'rsa', modulusLength: 2048 }).publicKey).toString('base64');
    expect(chainFailed(await appraiseWithExpectedBinding(ev, ctx, expected))).toEqual(['tpm.quote:AZURE_AK_MISMATCH']);
    // The same encoding of the HCL report's own AK is accepted: the failure above is the key, not the format.
    const hclAk = createPublicKey({ key: hclAkSpki(readVector('azure/az_snp_vtpm_milan_v2/hcl-report.bin')), format: 'der', type: 'spki' });
    ev.tpm.akPublic = rsaTpmtPublic(hclAk).toString('base64');
    const same = await appraiseWithExpectedBinding(ev, ctx, expected);
    expect(failed(same)).toEqual([]);
    expect(outcome(same, 'tpm.quote')).toBe('pass');
  });

  it('fails tpm.quote with the derived quote whose signature byte 0 was flipped', async () => {
    const ev = azureEvidence('az_snp_vtpm_milan_v2', 'azure-snp-vtpm');
    const bad = JSON.parse(readVectorText('tpm/derived/az_snp_tpm_quote_sig_byte0_xor1.json')) as { signature: string };
    ev.tpm.signature = tpmtSignatureRsassa(Buffer.from(bad.signature, 'hex')).toString('base64');
    const o = await appraiseWithExpectedBinding(ev, ctxFor(policyFor('azure-snp-vtpm')), expected);
    expect(chainFailed(o)).toEqual(['tpm.quote:TPM_BAD_SIGNATURE']);
  });

  it('fails the hardware check when the Milan ARK is not trusted (a store without AMD roots)', async () => {
    const ctx = ctxFor(policyFor('azure-snp-vtpm'));
    ctx.trust = defaultTrust({ snpTestRootsPem: [] });
    ctx.trust.snp = (await import('@joinguard/snp')).trustStoreFrom([]);
    const o = await appraiseWithExpectedBinding(azureEvidence('az_snp_vtpm_milan_v2', 'azure-snp-vtpm'), ctx, expected);
    expect(failed(o)[0]).toMatch(/^azure-snp-vtpm\.hardware:SNP_/);
    expect(o.claims).toBeUndefined();
  });
});

describe('real Azure TDX vTPM bundle (az_tdx_vtpm)', () => {
  let out: AppraisalOutcome;
  beforeAll(async () => {
    out = await appraiseWithExpectedBinding(azureEvidence('az_tdx_vtpm', 'azure-tdx-vtpm'), ctxFor({ ...policyFor('azure-tdx-vtpm'), tdx: { allowedTcbStatuses: ['UpToDate'], allowDebug: false } }), {
      ...expected,
      tdxWithoutCollateral: true,
    });
  });

  it('passes the TD quote, the TDREPORT match, every applicable binding and the vTPM quote', () => {
    for (const name of ['azure-tdx-vtpm.hardware', ...EXERCISED]) expect(outcome(out, name), name).toBe('pass');
    // The TCB status is not judged without collateral, so only that policy rule fails.
    expect(failed(out)).toEqual(['policy.tdx.tcbStatus:POLICY_TDX_TCB_STATUS']);
    expect(outcome(out, 'policy.boot.secureBoot')).toBe('skip');
    expect(outcome(out, 'policy.boot.events.verified')).toBe('pass');
  });

  it('yields MRTD 024a32b0…ab7b and all-zero RTMRs (MANIFEST)', () => {
    expect(out.measurements.mrTd!.startsWith('024a32b0')).toBe(true);
    expect(out.measurements.mrTd!.endsWith('ab7b')).toBe(true);
    for (const r of ['rtmr0', 'rtmr1', 'rtmr2', 'rtmr3']) expect(out.measurements[r]).toBe('0'.repeat(96));
  });

  it('without collateral (production mode) the hardware check fails and says why', async () => {
    const o = await appraiseWithExpectedBinding(azureEvidence('az_tdx_vtpm', 'azure-tdx-vtpm'), ctxFor(policyFor('azure-tdx-vtpm')), expected);
    expect(failed(o)).toEqual(['azure-tdx-vtpm.hardware:APPRAISE_TDX_NO_COLLATERAL']);
  });

  it('refuses a TD quote that is not of the HCL report\'s TDREPORT (the SNP bundle\'s HCL with the TDX quote)', async () => {
    const ev = azureEvidence('az_tdx_vtpm', 'azure-tdx-vtpm');
    const hcl = Buffer.from(readVector('azure/az_tdx_vtpm/hcl-report.bin'));
    hcl[0x20 + 528] ^= 1; // MRTD inside the TDREPORT
    ev.hardware.report = hcl.toString('base64');
    const o = await appraiseWithExpectedBinding(ev, ctxFor(policyFor('azure-tdx-vtpm')), { ...expected, tdxWithoutCollateral: true });
    expect(failed(o)).toEqual(['azure-tdx-vtpm.hardware:AZURE_TDREPORT_QUOTE_MISMATCH']);
  });

  it('refuses an azure-tdx-vtpm bundle without hardware.certs.tdQuote', async () => {
    const ev = azureEvidence('az_tdx_vtpm', 'azure-tdx-vtpm');
    ev.hardware.certs = {};
    const o = await appraiseWithExpectedBinding(ev, ctxFor(policyFor('azure-tdx-vtpm')), { ...expected, tdxWithoutCollateral: true });
    expect(failed(o)).toEqual(['azure-tdx-vtpm.hardware:AZURE_TD_QUOTE_MISSING']);
  });

  it('refuses the TDX HCL report presented as azure-snp-vtpm (report type 4, not 2)', async () => {
    const ev = azureEvidence('az_tdx_vtpm', 'azure-tdx-vtpm');
    ev.tee = 'azure-snp-vtpm';
    const o = await appraiseWithExpectedBinding(ev, ctxFor(policyFor('azure-snp-vtpm')), expected);
    expect(failed(o)).toEqual(['azure-snp-vtpm.hardware:AZURE_HCL_WRONG_REPORT_TYPE']);
  });
});
