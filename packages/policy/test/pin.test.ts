import { describe, expect, it } from 'vitest';
import { AK_PIN_RULE, ALL_POLICY_ERROR_CODES, checkPolicy, evaluateAkPin, loadPolicy, parsePolicy, policyDigest, schemaErrors, type Policy } from '../src/index.js';
import { basePolicy, h, thrown } from './fixtures.js';

const now = new Date('2026-11-23T10:00:00Z');
const AK = h(0xa1, 32);
const OTHER = h(0xb2, 32);
const pinning = (allowed: Policy['tee']['allowed'] = ['azure-snp-vtpm', 'azure-tdx-vtpm']) => basePolicy({ tee: { allowed }, tpm: { pinAk: true } });

describe('tpm.pinAk (schema and policy check)', () => {
  it('is a boolean of the tpm section, and part of the policy digest', () => {
    expect(schemaErrors(pinning())).toEqual([]);
    expect(schemaErrors({ ...basePolicy(), tpm: { pinAk: 'yes' } }).map((e) => e.path)).toEqual(['$.tpm.pinAk']);
    expect(thrown(() => parsePolicy({ ...basePolicy(), tpm: { pinAk: 1 } })).code).toBe('POLICY_SCHEMA');
    expect(policyDigest(pinning())).not.toBe(policyDigest(basePolicy({ tee: pinning().tee, tpm: {} })));
  });

  it('warns where an allowed tee usually has an ephemeral vTPM (bare SNP or TDX), and not for Azure alone', () => {
    expect(checkPolicy(pinning(), now)).toEqual({ errors: [], warnings: [] });
    const w = checkPolicy(pinning(['snp', 'azure-snp-vtpm', 'tdx']), now).warnings;
    expect(w).toEqual([expect.objectContaining({ path: '$.tpm.pinAk', code: 'POLICY_AK_PIN_EPHEMERAL' })]);
    expect(w[0]!.message).toContain('snp, tdx');
    // A warning only: such a policy still loads.
    expect(loadPolicy(pinning(['snp']), now).warnings.map((x) => x.code)).toEqual(['POLICY_AK_PIN_EPHEMERAL']);
    expect(ALL_POLICY_ERROR_CODES).toContain('POLICY_AK_PIN_EPHEMERAL');
  });
});

describe('rule tpm.akPinned (evaluateAkPin)', () => {
  it('is not judged at all when the policy does not pin AKs (off by default)', () => {
    expect(evaluateAkPin(basePolicy(), { akPublicSha256: AK, pinned: OTHER })).toBeUndefined();
    expect(evaluateAkPin(basePolicy({ tpm: { pinAk: false } }), { akPublicSha256: AK, pinned: OTHER })).toBeUndefined();
  });

  it('passes a node pinned to no AK yet, naming the AK that the pass pins', () => {
    expect(evaluateAkPin(pinning(), { akPublicSha256: AK, pinned: null })).toEqual({
      rule: AK_PIN_RULE,
      outcome: 'pass',
      expected: null,
      actual: AK,
      message: `no AK is pinned for this node yet: this pass pins AK ${AK}`,
    });
  });

  it('passes the pinned AK and fails another one with the expected and actual digests', () => {
    expect(evaluateAkPin(pinning(), { akPublicSha256: AK, pinned: AK })).toMatchObject({ rule: 'tpm.akPinned', outcome: 'pass', expected: AK, actual: AK });
    // Digests compare as hex, whatever their case.
    expect(evaluateAkPin(pinning(), { akPublicSha256: AK.toUpperCase(), pinned: AK })).toMatchObject({ outcome: 'pass' });
    const r = evaluateAkPin(pinning(), { akPublicSha256: OTHER, pinned: AK })!;
    expect(r).toMatchObject({ rule: 'tpm.akPinned', outcome: 'fail', code: 'POLICY_AK_PIN_MISMATCH', expected: AK, actual: OTHER });
    expect(r.message).toContain(AK);
    expect(r.message).toContain(OTHER);
    expect(ALL_POLICY_ERROR_CODES).toContain(r.code);
  });

  it('skips when the AK was not verified, or the pin is not known (offline)', () => {
    expect(evaluateAkPin(pinning(), { pinned: AK })).toMatchObject({ outcome: 'skip', expected: null, actual: null });
    expect(evaluateAkPin(pinning(), { akPublicSha256: AK })).toMatchObject({ outcome: 'skip', actual: AK });
  });
});
