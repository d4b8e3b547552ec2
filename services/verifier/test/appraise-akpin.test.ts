import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { policyDigest, type Policy } from '@joinguard/policy';
import { createSimCvm, type SimCvm } from '@joinguard/simcvm';
import { defaultTrust, appraiseEvidence, type AppraisalOutcome } from '../src/appraise/index.js';
import { appraiseWithExpectedBinding } from '../src/appraise/testing.js';
import { ctxFor, failedChecks } from './appraise-helpers.js';
import { AZURE_VECTORS_TIME, CHALLENGE, ZERO_USER_DATA, azureEvidence } from './support/azure.js';

// Rule tpm.akPinned in the engine: the check is there only under a policy with tpm.pinAk, compares the verified
// AK with ctx.pinnedAkSha256, and is skipped where the pin is not known (offline) or the AK did not verify.

const pinCheck = (o: AppraisalOutcome) => o.appraisal.checks.find((c) => c.name === 'policy.tpm.akPinned');
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const pinning = (p: Policy): Policy => ({ ...p, tpm: { ...p.tpm, pinAk: true } });

describe('simulated SNP CVM under tpm.pinAk', () => {
  let sim: SimCvm;
  let ak: string;
  beforeAll(async () => {
    sim = await createSimCvm({ tee: 'snp', vtpm: 'software', nodeName: 'pin-engine-0' });
    ak = sha256(sim.vtpm.akPublic);
  });
  afterAll(() => sim?.close());

  it('has no pin check without the setting, and names the verified AK in the outcome', async () => {
    const o = await appraiseEvidence(await sim.evidence(), ctxFor(sim));
    expect(pinCheck(o)).toBeUndefined();
    expect(o.appraisal.verdict).toBe('pass');
    expect(o.akPublicSha256).toBe(ak);
  });

  it('passes a node pinned to none, and the pinned AK; fails another, with the evidence still verified', async () => {
    const policy = pinning(sim.goodPolicy());
    const ev = await sim.evidence();
    const none = await appraiseEvidence(ev, { ...ctxFor(sim, { policy }), pinnedAkSha256: null });
    expect(pinCheck(none)).toMatchObject({ outcome: 'pass', actual: ak });
    expect(none.appraisal.verdict).toBe('pass');
    const same = await appraiseEvidence(ev, { ...ctxFor(sim, { policy }), pinnedAkSha256: ak });
    expect(pinCheck(same)).toMatchObject({ outcome: 'pass', expected: ak, actual: ak });
    const other = 'cd'.repeat(32);
    const wrong = await appraiseEvidence(ev, { ...ctxFor(sim, { policy }), pinnedAkSha256: other });
    expect(failedChecks(wrong)).toEqual(['policy.tpm.akPinned:POLICY_AK_PIN_MISMATCH']);
    expect(pinCheck(wrong)).toMatchObject({ expected: other, actual: ak });
    expect(wrong.appraisal.verdict).toBe('fail');
    expect(wrong.evidenceVerified).toBe(true);
  });

  it('skips the rule offline (pin not known) and when the quote did not verify', async () => {
    const policy = pinning(sim.goodPolicy());
    const offline = await appraiseEvidence(await sim.evidence(), ctxFor(sim, { policy }));
    expect(pinCheck(offline)).toMatchObject({ outcome: 'skip', actual: ak });
    expect(offline.appraisal.verdict).toBe('pass');
    const badQuote = await appraiseEvidence(await sim.evidence({ tamper: { extraData: new Uint8Array(32) } }), { ...ctxFor(sim, { policy }), pinnedAkSha256: 'cd'.repeat(32) });
    expect(pinCheck(badQuote)).toMatchObject({ outcome: 'skip' });
    expect(badQuote.akPublicSha256).toBeUndefined();
    expect(badQuote.appraisal.verdict).toBe('fail');
  });
});

describe('a real Azure SNP vTPM bundle under tpm.pinAk', () => {
  it('is pinned by the digest of the tpm.akPublic that is the HCL report\'s HCLAkPub', async () => {
    const ev = azureEvidence('az_snp_vtpm_milan_v2', 'azure-snp-vtpm');
    const policy: Policy = {
      apiVersion: 'joinguard.io/v1alpha1',
      kind: 'AppraisalPolicy',
      name: 'azure-pinned',
      tee: { allowed: ['azure-snp-vtpm'] },
      tpm: { requiredBanks: ['sha256'], pinAk: true },
      boot: { requireSecureBoot: false },
    };
    const ctx = { now: AZURE_VECTORS_TIME, policy, policyRef: { id: policy.name, digest: policyDigest(policy) }, trust: defaultTrust(), pinnedAkSha256: null };
    const o = await appraiseWithExpectedBinding(ev, ctx, { azureUserData: ZERO_USER_DATA, tpmExtraData: CHALLENGE });
    expect(failedChecks(o)).toEqual([]);
    const ak = sha256(Buffer.from(ev.tpm.akPublic, 'base64'));
    expect(o.akPublicSha256).toBe(ak);
    expect(pinCheck(o)).toMatchObject({ outcome: 'pass', actual: ak });
  });
});
