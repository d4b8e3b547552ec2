import { describe, expect, it } from 'vitest';
import { checkPolicy, evaluate, loadPolicy, validity, type AppraisalClaims, type Policy } from '../src/index.js';
import { basePolicy, bootClaims, h, readExample, snpClaimsFromVector } from './fixtures.js';

// An OS update: image N has kernel A, image N+1 kernel B; shim and grub are the same. N+1 becomes
// valid on 2026-11-01, N is retired on 2026-12-31.
const shim = h(0xa1, 32);
const grub = h(0xa2, 32);
const kernelN = h(0xa3, 32);
const kernelN1 = h(0xb3, 32);
const retire = '2026-12-31T00:00:00Z';

const policy: Policy = basePolicy({
  boot: { requireSecureBoot: true },
  referenceValues: [
    { id: 'os', version: 'N', expires: retire, boot: { bootApps: [shim, grub, kernelN] } },
    { id: 'os', version: 'N+1', notBefore: '2026-11-01T00:00:00Z', boot: { bootApps: [shim, grub, kernelN1] } },
  ],
});

function node(kernel: string): AppraisalClaims {
  const boot = bootClaims();
  boot.bootApps[2]!.digestSha256 = kernel;
  return { ...snpClaimsFromVector(), tee: 'azure-snp-vtpm', boot };
}

const kernelResult = (kernel: string, at: string) => evaluate(policy, node(kernel), new Date(at)).results.filter((r) => r.rule === 'boot.bootApps.allowed')[2]!;

describe('reference values N and N+1', () => {
  it('accepts N and N+1 side by side during the rollout, naming the one that matched', () => {
    const during = '2026-11-23T10:00:00Z';
    expect(evaluate(policy, node(kernelN), new Date(during)).verdict).toBe('pass');
    expect(evaluate(policy, node(kernelN1), new Date(during)).verdict).toBe('pass');
    expect(kernelResult(kernelN, during).referenceValue).toEqual({ id: 'os', version: 'N' });
    expect(kernelResult(kernelN1, during).referenceValue).toEqual({ id: 'os', version: 'N+1' });
    expect(kernelResult(kernelN, during).expected).toEqual(expect.arrayContaining([kernelN, kernelN1]));
  });

  it('retires N at its expiry (exclusive) while N+1 keeps passing', () => {
    const justBefore = new Date(Date.parse(retire) - 1).toISOString();
    expect(evaluate(policy, node(kernelN), new Date(justBefore)).verdict).toBe('pass');
    const r = kernelResult(kernelN, retire);
    expect(r).toMatchObject({ outcome: 'fail', code: 'POLICY_REFERENCE_EXPIRED', referenceValue: { id: 'os', version: 'N' }, actual: kernelN, eventIndex: 30 });
    expect(r.expected).not.toContain(kernelN);
    expect(r.message).toContain(retire);
    // Shim and grub are still in N+1, so only the kernel fails.
    const failures = evaluate(policy, node(kernelN), new Date(retire)).failures;
    expect(failures.map((f) => f.eventIndex)).toEqual([30]);
    expect(evaluate(policy, node(kernelN1), new Date(retire)).verdict).toBe('pass');
  });

  it('does not accept N+1 before its notBefore', () => {
    const r = kernelResult(kernelN1, '2026-10-31T23:59:59Z');
    expect(r).toMatchObject({ outcome: 'fail', code: 'POLICY_REFERENCE_NOT_YET_VALID', referenceValue: { id: 'os', version: 'N+1' } });
  });

  it('validity follows notBefore (inclusive) and expires (exclusive)', () => {
    const [n, n1] = policy.referenceValues!;
    expect(validity(n!, new Date('2026-12-30T23:59:59.999Z'))).toBe('active');
    expect(validity(n!, new Date(retire))).toBe('expired');
    expect(validity(n1!, new Date('2026-11-01T00:00:00Z'))).toBe('active');
    expect(validity(n1!, new Date('2026-10-31T23:59:59.999Z'))).toBe('notYetValid');
    // An unreadable date (a policy that skipped checkPolicy) never makes a reference value valid.
    expect(validity({ id: 'x', version: '1', expires: 'soon' }, new Date(0))).toBe('expired');
    expect(validity({ id: 'x', version: '1', notBefore: 'later' }, new Date(0))).toBe('notYetValid');
  });

  it('check warns once N has expired, and errors when only expired values are left', () => {
    expect(checkPolicy(policy, new Date('2027-01-01T00:00:00Z')).warnings.map((w) => w.code)).toEqual(['POLICY_REFERENCE_EXPIRED']);
    const onlyN = { ...policy, referenceValues: [policy.referenceValues![0]!] };
    expect(checkPolicy(onlyN, new Date('2027-01-01T00:00:00Z')).errors.map((e) => e.code)).toEqual(['POLICY_REFERENCE_EXPIRED']);
  });

  it('the example policy carries the same rollout', () => {
    const { policy: ex } = loadPolicy(readExample('worker-pool.yaml'), new Date('2026-11-23T00:00:00Z'));
    const versions = ex.referenceValues!.filter((r) => r.id === 'rhcos-boot');
    expect(versions.map((r) => [r.version, r.notBefore, r.expires])).toEqual([
      ['4.16.3', undefined, '2026-12-31T00:00:00Z'],
      ['4.16.8', '2026-11-01T00:00:00Z', undefined],
    ]);
    // After retirement only 4.16.8 is left for boot applications: still usable, with a warning.
    const later = checkPolicy(ex, new Date('2027-01-01T00:00:00Z'));
    expect(later.errors).toEqual([]);
    expect(later.warnings.map((w) => w.path)).toEqual(['$.referenceValues[2]']);
  });
});
