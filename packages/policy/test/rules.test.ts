import { describe, expect, it } from 'vitest';
import { evaluate, appraisalError, defaultPolicy, RULE_NAMES, type AppraisalClaims, type Policy, type RuleResult, type ReferenceValue } from '../src/index.js';
import { basePolicy, bootClaims, h, pcrsFromVector, snpClaimsFromVector, tdxClaimsFromVector } from './fixtures.js';

const now = new Date('2026-11-23T10:00:00Z');

function results(policy: Policy, claims: AppraisalClaims, rule: string): RuleResult[] {
  const a = evaluate(policy, claims, now);
  // The verdict always agrees with the outcomes.
  expect(a.verdict).toBe(a.results.some((r) => r.outcome === 'fail') ? 'fail' : 'pass');
  expect(a.failures).toEqual(a.results.filter((r) => r.outcome === 'fail'));
  return a.results.filter((r) => r.rule === rule);
}

function one(policy: Policy, claims: AppraisalClaims, rule: string): RuleResult {
  const rs = results(policy, claims, rule);
  expect(rs).toHaveLength(1);
  return rs[0]!;
}

const clone = <T>(x: T): T => structuredClone(x);
const ref = (over: Partial<ReferenceValue>): ReferenceValue => ({ id: 'ref', version: '1', ...over });

describe('tee', () => {
  it('tee.allowed', () => {
    const c = snpClaimsFromVector();
    expect(one(basePolicy({ tee: { allowed: ['snp'] } }), c, 'tee.allowed')).toMatchObject({ outcome: 'pass', expected: ['snp'], actual: 'snp' });
    expect(one(basePolicy({ tee: { allowed: ['tdx'] } }), c, 'tee.allowed')).toMatchObject({ outcome: 'fail', code: 'POLICY_TEE_NOT_ALLOWED', expected: ['tdx'], actual: 'snp', path: 'tee' });
  });
});

describe('SNP rules (claims of the virtee Milan report)', () => {
  const c = snpClaimsFromVector();
  const tcb = c.snp!.reportedTcb;

  it('snp.tcb.minimum passes at the reported TCB and fails one above, per component', () => {
    const atTcb = results(basePolicy({ snp: { minimumTcb: { ...tcb } } }), c, 'snp.tcb.minimum');
    expect(atTcb.map((r) => r.outcome)).toEqual(['pass', 'pass', 'pass', 'pass']);
    const r = results(basePolicy({ snp: { minimumTcb: { bootloader: tcb.bootloader, microcode: tcb.microcode + 1 } } }), c, 'snp.tcb.minimum');
    expect(r[0]).toMatchObject({ outcome: 'pass', path: 'snp.reportedTcb.bootloader' });
    expect(r[1]).toMatchObject({
      outcome: 'fail',
      code: 'POLICY_TCB_TOO_LOW',
      path: 'snp.reportedTcb.microcode',
      expected: { microcode: tcb.microcode + 1 },
      actual: { microcode: tcb.microcode },
    });
  });

  it('snp.tcb.minimum skips fmc on a product without it', () => {
    expect(results(basePolicy({ snp: { minimumTcb: { fmc: 1 } } }), c, 'snp.tcb.minimum')[0]).toMatchObject({ outcome: 'skip', path: 'snp.reportedTcb.fmc' });
  });

  it('snp.policy.debug: forbidden by default', () => {
    expect(one(basePolicy(), c, 'snp.policy.debug')).toMatchObject({ outcome: 'pass', expected: false, actual: false, path: 'snp.policy.debug' });
    const d = clone(c);
    d.snp!.policy.debug = true;
    expect(one(basePolicy(), d, 'snp.policy.debug')).toMatchObject({ outcome: 'fail', code: 'POLICY_GUEST_POLICY', expected: false, actual: true });
    expect(one(basePolicy({ snp: { guestPolicy: { allowDebug: true } } }), d, 'snp.policy.debug').outcome).toBe('skip');
  });

  it('snp.policy.debug fails the go-sev-guest test report, whose guest policy 0xb0000 sets DEBUG (bit 19)', () => {
    const g = snpClaimsFromVector('snp/gosevguest_milan_v2/report.bin');
    expect(one(basePolicy(), g, 'snp.policy.debug')).toMatchObject({ outcome: 'fail', expected: false, actual: true, path: 'snp.policy.debug' });
  });

  it('snp.policy.migrateMa: forbidden by default', () => {
    expect(one(basePolicy(), c, 'snp.policy.migrateMa')).toMatchObject({ outcome: 'pass', actual: false });
    const d = clone(c);
    d.snp!.policy.migrateMa = true;
    expect(one(basePolicy(), d, 'snp.policy.migrateMa')).toMatchObject({ outcome: 'fail', expected: false, actual: true, path: 'snp.policy.migrateMa' });
  });

  it('snp.policy.smt: allowed by default, enforced when the pool forbids SMT', () => {
    // The vector's policy 0x30000 has bit 16 (SMT allowed) set.
    expect(c.snp!.policy.smt).toBe(true);
    expect(one(basePolicy(), c, 'snp.policy.smt').outcome).toBe('skip');
    expect(one(basePolicy({ snp: { guestPolicy: { allowSmt: false } } }), c, 'snp.policy.smt')).toMatchObject({ outcome: 'fail', expected: false, actual: true });
    const d = clone(c);
    d.snp!.policy.smt = false;
    expect(one(basePolicy({ snp: { guestPolicy: { allowSmt: false } } }), d, 'snp.policy.smt')).toMatchObject({ outcome: 'pass', actual: false });
  });

  it('snp.policy.singleSocket', () => {
    const p = basePolicy({ snp: { guestPolicy: { requireSingleSocket: true } } });
    expect(one(p, c, 'snp.policy.singleSocket')).toMatchObject({ outcome: 'fail', expected: true, actual: false });
    const d = clone(c);
    d.snp!.policy.singleSocket = true;
    expect(one(p, d, 'snp.policy.singleSocket').outcome).toBe('pass');
  });

  it('snp.vmpl and snp.guestSvn', () => {
    expect(one(basePolicy({ snp: { allowedVmpl: [0] } }), c, 'snp.vmpl')).toMatchObject({ outcome: 'pass', actual: 0 });
    const vlek = snpClaimsFromVector('snp/trustee_milan_vlek_v3/report.bin');
    expect(one(basePolicy({ snp: { allowedVmpl: [0] } }), vlek, 'snp.vmpl')).toMatchObject({ outcome: 'fail', code: 'POLICY_VMPL', expected: [0], actual: 1 });
    expect(one(basePolicy({ snp: { minimumGuestSvn: 0 } }), c, 'snp.guestSvn').outcome).toBe('pass');
    expect(one(basePolicy({ snp: { minimumGuestSvn: 1 } }), c, 'snp.guestSvn')).toMatchObject({ outcome: 'fail', expected: { minimum: 1 }, actual: 0 });
  });

  it('snp.measurement, hostData, idKeyDigest, authorKeyDigest against reference values', () => {
    const other = snpClaimsFromVector('snp/gosevguest_milan_v2/report.bin').snp!;
    expect(other.measurement).not.toBe(c.snp!.measurement);
    const p = basePolicy({
      referenceValues: [
        ref({ id: 'fw', snp: { measurement: [c.snp!.measurement.toUpperCase()], hostData: [c.snp!.hostData], idKeyDigest: [c.snp!.idKeyDigest], authorKeyDigest: [c.snp!.authorKeyDigest] } }),
      ],
    });
    for (const f of ['measurement', 'hostData', 'idKeyDigest', 'authorKeyDigest']) {
      expect(one(p, c, `snp.${f}`)).toMatchObject({ outcome: 'pass', referenceValue: { id: 'fw', version: '1' }, path: `snp.${f}` });
    }
    const d = clone(c);
    d.snp!.measurement = other.measurement;
    d.snp!.hostData = h(0xee, 32);
    expect(one(p, d, 'snp.measurement')).toMatchObject({ outcome: 'fail', code: 'POLICY_MEASUREMENT_MISMATCH', expected: [c.snp!.measurement], actual: other.measurement });
    expect(one(p, d, 'snp.hostData')).toMatchObject({ outcome: 'fail', actual: h(0xee, 32) });
    expect(one(basePolicy(), c, 'snp.measurement').outcome).toBe('skip');
  });

  it('every SNP rule fails when an SNP tee sends no SNP claims, and is skipped for TDX', () => {
    const rs = evaluate(basePolicy(), { tee: 'azure-snp-vtpm' }, now).results.filter((r) => r.rule.startsWith('snp.'));
    expect(rs.length).toBeGreaterThan(5);
    expect(rs.every((r) => r.outcome === 'fail' && r.code === 'POLICY_CLAIMS_MISSING')).toBe(true);
    const t = evaluate(basePolicy(), tdxClaimsFromVector(), now).results.filter((r) => r.rule.startsWith('snp.'));
    expect(t.every((r) => r.outcome === 'skip')).toBe(true);
  });
});

describe('TDX rules (claims of the go-tdx-guest v5 quote)', () => {
  const c = tdxClaimsFromVector();

  it('tdx.tcbStatus: UpToDate by default', () => {
    expect(one(basePolicy(), c, 'tdx.tcbStatus')).toMatchObject({ outcome: 'pass', expected: ['UpToDate'], actual: 'UpToDate' });
    // The v4 SPR quote has no matching TCB level under its TCB info (MANIFEST.md): OutOfDate at best.
    const old = tdxClaimsFromVector('tdx/gotdxguest_v4_spr/quote.dat', 'OutOfDate');
    expect(one(basePolicy(), old, 'tdx.tcbStatus')).toMatchObject({ outcome: 'fail', code: 'POLICY_TDX_TCB_STATUS', actual: 'OutOfDate', path: 'tdx.tcbStatus' });
    expect(one(basePolicy({ tdx: { allowedTcbStatuses: ['UpToDate', 'OutOfDate'] } }), old, 'tdx.tcbStatus').outcome).toBe('pass');
  });

  it('tdx.advisoryIds', () => {
    const d = clone(c);
    d.tdx!.tcbStatus = 'SWHardeningNeeded';
    d.tdx!.advisoryIds = ['INTEL-SA-00615', 'INTEL-SA-00837'];
    const p = basePolicy({ tdx: { allowedTcbStatuses: ['UpToDate', 'SWHardeningNeeded'], allowedAdvisoryIds: ['INTEL-SA-00615'] } });
    const r = one(p, d, 'tdx.advisoryIds');
    expect(r).toMatchObject({ outcome: 'fail', code: 'POLICY_TDX_ADVISORY', expected: ['INTEL-SA-00615'], actual: ['INTEL-SA-00615', 'INTEL-SA-00837'] });
    expect(r.message).toContain('INTEL-SA-00837');
    expect(one(basePolicy({ tdx: { allowedAdvisoryIds: ['INTEL-SA-00615', 'INTEL-SA-00837'] } }), d, 'tdx.advisoryIds').outcome).toBe('pass');
  });

  it('tdx.tdAttributes.debug reads bit 0 of TDATTRIBUTES', () => {
    expect(one(basePolicy(), c, 'tdx.tdAttributes.debug')).toMatchObject({ outcome: 'pass', actual: { debug: false, tdAttributes: c.tdx!.tdAttributes } });
    const d = clone(c);
    const attrs = Buffer.from(c.tdx!.tdAttributes, 'hex');
    attrs[0]! |= 1;
    d.tdx!.tdAttributes = attrs.toString('hex');
    expect(one(basePolicy(), d, 'tdx.tdAttributes.debug')).toMatchObject({ outcome: 'fail', code: 'POLICY_DEBUG', expected: { debug: false }, path: 'tdx.tdAttributes' });
    expect(one(basePolicy({ tdx: { allowDebug: true } }), d, 'tdx.tdAttributes.debug').outcome).toBe('skip');
  });

  it('tdx.mrTd, mrConfigId, mrOwner, mrOwnerConfig and RTMRs against reference values', () => {
    const t = c.tdx!;
    const p = basePolicy({
      referenceValues: [ref({ tdx: { mrTd: [t.mrTd], mrConfigId: [t.mrConfigId], mrOwner: [t.mrOwner], mrOwnerConfig: [t.mrOwnerConfig], rtmr0: [t.rtmr0], rtmr1: [t.rtmr1], rtmr2: [t.rtmr2], rtmr3: [t.rtmr3] } })],
    });
    for (const m of ['mrTd', 'mrConfigId', 'mrOwner', 'mrOwnerConfig', 'rtmr0', 'rtmr1', 'rtmr2', 'rtmr3']) expect(one(p, c, `tdx.${m}`).outcome).toBe('pass');
    const other = tdxClaimsFromVector('tdx/gotdxguest_v4_spr/quote.dat');
    expect(other.tdx!.mrTd).not.toBe(t.mrTd);
    const r = one(p, other, 'tdx.mrTd');
    expect(r).toMatchObject({ outcome: 'fail', code: 'POLICY_MEASUREMENT_MISMATCH', expected: [t.mrTd], actual: other.tdx!.mrTd, path: 'tdx.mrTd' });
    expect(one(p, other, 'tdx.rtmr0')).toMatchObject({ outcome: 'fail', actual: other.tdx!.rtmr0 });
  });
});

describe('TPM rules (PCRs of the RHEL 8 event log replay)', () => {
  const pcrs = pcrsFromVector('Rhel8GCE');
  const c: AppraisalClaims = { ...snpClaimsFromVector(), tee: 'azure-snp-vtpm', tpm: { banks: Object.keys(pcrs), pcrs } };

  it('tpm.banks.required', () => {
    expect(one(basePolicy({ tpm: { requiredBanks: ['sha256'] } }), c, 'tpm.banks.required')).toMatchObject({ outcome: 'pass', expected: 'sha256', path: 'tpm.pcrs.sha256' });
    expect(one(basePolicy({ tpm: { requiredBanks: ['sha384'] } }), c, 'tpm.banks.required')).toMatchObject({ outcome: 'fail', code: 'POLICY_PCR_BANK_MISSING', expected: 'sha384', actual: ['sha1', 'sha256'] });
    expect(one(basePolicy({ tpm: { requiredBanks: ['sha256'] } }), snpClaimsFromVector(), 'tpm.banks.required')).toMatchObject({ outcome: 'fail', code: 'POLICY_CLAIMS_MISSING' });
  });

  it('tpm.pcrs.<bank>.<index> names the PCR', () => {
    const p = basePolicy({ referenceValues: [ref({ pcrs: { sha256: { '7': [pcrs.sha256!['7']!], '0': [pcrs.sha256!['0']!] } } })] });
    const r7 = one(p, c, 'tpm.pcrs.sha256.7');
    expect(r7).toMatchObject({ outcome: 'pass', pcr: 7, path: 'tpm.pcrs.sha256.7', actual: pcrs.sha256!['7'], referenceValue: { id: 'ref', version: '1' } });
    // Another machine's PCR 7 (Secure Boot off) does not match.
    const ubuntu = pcrsFromVector('Ubuntu2104NoSecureBootGCE');
    expect(ubuntu.sha256!['7']).not.toBe(pcrs.sha256!['7']);
    const u: AppraisalClaims = { ...c, tpm: { banks: ['sha256'], pcrs: ubuntu } };
    expect(one(p, u, 'tpm.pcrs.sha256.7')).toMatchObject({ outcome: 'fail', code: 'POLICY_PCR_MISMATCH', pcr: 7, expected: [pcrs.sha256!['7']], actual: ubuntu.sha256!['7'] });
    const missing: AppraisalClaims = { ...c, tpm: { banks: ['sha1'], pcrs: { sha1: pcrs.sha1! } } };
    expect(one(p, missing, 'tpm.pcrs.sha256.0')).toMatchObject({ outcome: 'fail', code: 'POLICY_CLAIMS_MISSING', pcr: 0 });
  });
});

describe('measured-boot rules over replayed events', () => {
  const base: AppraisalClaims = { ...snpClaimsFromVector(), tee: 'azure-snp-vtpm', boot: bootClaims() };
  const boot = base.boot!;
  const refs = (): ReferenceValue => ref({
    id: 'os',
    boot: {
      bootApps: boot.bootApps.map((a) => a.digestSha256!),
      pk: { certSha256: boot.pk!.certSha256 },
      kek: { certSha256: boot.kek!.certSha256 },
      db: { certSha256: boot.db!.certSha256 },
      dbx: { hashes: boot.dbx!.hashes },
      kernelCmdline: boot.kernelCmdline!.map((k) => k.value),
    },
  });
  const p = basePolicy({ boot: {}, referenceValues: [refs()] });

  it('passes every boot rule on the reference node', () => {
    const a = evaluate(p, base, now);
    const bootResults = a.results.filter((r) => r.rule.startsWith('boot.'));
    expect(bootResults.filter((r) => r.outcome === 'fail')).toEqual([]);
    expect(a.verdict).toBe('pass');
  });

  it('boot.secureBoot names the SecureBoot event', () => {
    expect(one(p, base, 'boot.secureBoot')).toMatchObject({ outcome: 'pass', eventIndex: 3, pcr: 7 });
    const d = clone(base);
    d.boot!.secureBoot = false;
    expect(one(p, d, 'boot.secureBoot')).toMatchObject({ outcome: 'fail', code: 'POLICY_SECURE_BOOT', expected: true, actual: false, eventIndex: 3, pcr: 7 });
    delete d.boot!.secureBoot;
    expect(one(p, d, 'boot.secureBoot')).toMatchObject({ outcome: 'fail', actual: null });
    expect(one(basePolicy({ boot: { requireSecureBoot: false } }), d, 'boot.secureBoot').outcome).toBe('skip');
  });

  it('boot.pk, boot.kek, boot.db: an entry no reference lists fails with its index and event', () => {
    const d = clone(base);
    d.boot!.db!.certSha256.push(h(0x99, 32));
    const r = results(p, d, 'boot.db');
    expect(r).toEqual([expect.objectContaining({ outcome: 'fail', code: 'POLICY_EFI_VARIABLE', actual: h(0x99, 32), path: 'boot.db.certSha256[2]', eventIndex: 6, pcr: 7 })]);
    d.boot!.kek!.hashes.push(h(0x98, 32));
    expect(one(p, d, 'boot.kek')).toMatchObject({ outcome: 'fail', path: 'boot.kek.hashes[0]', actual: h(0x98, 32) });
    expect(one(p, d, 'boot.pk').outcome).toBe('pass');
    delete d.boot!.pk;
    expect(one(p, d, 'boot.pk')).toMatchObject({ outcome: 'fail', code: 'POLICY_CLAIMS_MISSING', path: 'boot.pk' });
  });

  it('boot.dbx: a missing revocation fails', () => {
    const d = clone(base);
    d.boot!.dbx!.hashes = [h(0x15, 32)];
    expect(one(p, d, 'boot.dbx')).toMatchObject({ outcome: 'fail', code: 'POLICY_EFI_VARIABLE', expected: h(0x16, 32), actual: null, eventIndex: 7 });
    // Extra revocations are fine.
    d.boot!.dbx!.hashes = [h(0x15, 32), h(0x16, 32), h(0x17, 32)];
    expect(one(p, d, 'boot.dbx').outcome).toBe('pass');
  });

  it('boot.bootApps.allowed: an unknown boot application fails with its event index', () => {
    const r = results(p, base, 'boot.bootApps.allowed');
    expect(r.map((x) => [x.outcome, x.eventIndex, x.path])).toEqual([
      ['pass', 20, 'boot.bootApps[0].digestSha256'],
      ['pass', 24, 'boot.bootApps[1].digestSha256'],
      ['pass', 30, 'boot.bootApps[2].digestSha256'],
    ]);
    const d = clone(base);
    d.boot!.bootApps[1]!.digestSha256 = h(0xbd, 32);
    d.boot!.bootApps.push({ path: '\\EFI\\BOOT\\fallback.efi', eventIndex: 33, pcr: 4 });
    const f = results(p, d, 'boot.bootApps.allowed').filter((x) => x.outcome === 'fail');
    expect(f).toEqual([
      expect.objectContaining({ code: 'POLICY_BOOT_APP_UNKNOWN', eventIndex: 24, pcr: 4, actual: h(0xbd, 32) }),
      expect.objectContaining({ code: 'POLICY_CLAIMS_MISSING', eventIndex: 33, actual: null }),
    ]);
    expect(f[0]!.message).toContain('grubx64.efi');
    expect(appraisalError(evaluate(p, d, now))?.code).toBe('POLICY_REJECTED');
  });

  it('boot.kernelCmdline.allowed, required and forbidden', () => {
    const pat = basePolicy({ boot: { kernelCmdline: { required: ['(^| )ro( |$)', 'console=ttyS0'], forbidden: ['(^| )init='] } }, referenceValues: [refs()] });
    expect(results(pat, base, 'boot.kernelCmdline.required').map((r) => [r.outcome, r.eventIndex])).toEqual([
      ['pass', 41],
      ['pass', 41],
    ]);
    expect(one(pat, base, 'boot.kernelCmdline.forbidden').outcome).toBe('pass');
    expect(one(pat, base, 'boot.kernelCmdline.allowed')).toMatchObject({ outcome: 'pass', eventIndex: 41, pcr: 8 });

    const d = clone(base);
    d.boot!.kernelCmdline![0]!.value = 'BOOT_IMAGE=/vmlinuz-5.14.0 root=UUID=1234 rw init=/bin/sh';
    expect(results(pat, d, 'boot.kernelCmdline.required').map((r) => [r.outcome, r.expected])).toEqual([
      ['fail', { pattern: '(^| )ro( |$)' }],
      ['fail', { pattern: 'console=ttyS0' }],
    ]);
    expect(one(pat, d, 'boot.kernelCmdline.forbidden')).toMatchObject({ outcome: 'fail', code: 'POLICY_KERNEL_CMDLINE', eventIndex: 41, pcr: 8, actual: d.boot!.kernelCmdline![0]!.value, expected: { notMatching: '(^| )init=' } });
    expect(one(pat, d, 'boot.kernelCmdline.allowed')).toMatchObject({ outcome: 'fail', code: 'POLICY_KERNEL_CMDLINE', eventIndex: 41 });
  });

  it('boot.kernelCmdline.required holds for every measured command line, so an appended line cannot stand in', () => {
    const pat = basePolicy({ boot: { kernelCmdline: { required: ['lockdown=integrity'] } } });
    const d = clone(base);
    d.boot!.kernelCmdline![0]!.value = 'BOOT_IMAGE=/vmlinuz root=UUID=1234 ro';
    // root extends PCR 8 after boot with a line that has the required option
    d.boot!.kernelCmdline!.push({ value: 'BOOT_IMAGE=/vmlinuz root=UUID=1234 ro lockdown=integrity', eventIndex: 90, pcr: 8 });
    expect(one(pat, d, 'boot.kernelCmdline.required')).toMatchObject({ outcome: 'fail', code: 'POLICY_KERNEL_CMDLINE', eventIndex: 41, actual: 'BOOT_IMAGE=/vmlinuz root=UUID=1234 ro' });
    d.boot!.kernelCmdline![0]!.value = 'BOOT_IMAGE=/vmlinuz root=UUID=1234 ro lockdown=integrity';
    expect(one(pat, d, 'boot.kernelCmdline.required').outcome).toBe('pass');
  });

  it('boot.kernelCmdline.forbidden refuses to match an overlong command line', () => {
    const d = clone(base);
    d.boot!.kernelCmdline![0]!.value = 'a'.repeat(5000);
    const r = one(basePolicy({ boot: { kernelCmdline: { forbidden: ['a+b'] } } }), d, 'boot.kernelCmdline.forbidden');
    expect(r.outcome).toBe('fail');
    expect(r.message).toContain('longer than');
  });

  it('refuses to run a pattern that can backtrack exponentially (a policy that did not go through loadPolicy)', () => {
    // 25 characters and no "ro" at the end: /^(\S+\s*)*ro$/ would try every split of them (seconds).
    const d = clone(base);
    d.boot!.kernelCmdline![0]!.value = 'a'.repeat(25);
    for (const p of ['^(\\S+\\s*)*ro$', '(a+)+b']) {
      const started = Date.now();
      expect(() => evaluate(basePolicy({ boot: { kernelCmdline: { required: [p] } } }), d, now)).toThrow(expect.objectContaining({ code: 'POLICY_UNSAFE_REGEX', kind: 'input' }));
      expect(() => evaluate(basePolicy({ boot: { kernelCmdline: { forbidden: [p] } } }), d, now)).toThrow(expect.objectContaining({ code: 'POLICY_UNSAFE_REGEX' }));
      expect(Date.now() - started).toBeLessThan(1000);
    }
  });

  it('boot.grubCommands.forbidden', () => {
    const g = basePolicy({ boot: { grubCommands: { forbidden: ['^set debug='] } } });
    expect(one(g, base, 'boot.grubCommands.forbidden').outcome).toBe('pass');
    const d = clone(base);
    d.boot!.grubCommands!.push({ value: 'set debug=all', eventIndex: 39, pcr: 8 });
    expect(one(g, d, 'boot.grubCommands.forbidden')).toMatchObject({ outcome: 'fail', code: 'POLICY_GRUB_COMMAND', eventIndex: 39, actual: 'set debug=all', path: 'boot.grubCommands[2]' });
  });

  it('boot.events.verified fails for each event whose digest does not match its data', () => {
    expect(one(p, base, 'boot.events.verified').outcome).toBe('pass');
    const d = clone(base);
    d.boot!.unverifiedEvents = [{ type: 'EV_EFI_VARIABLE_DRIVER_CONFIG', eventIndex: 3, pcr: 7, reason: 'sha256 digest differs' }];
    expect(one(p, d, 'boot.events.verified')).toMatchObject({ outcome: 'fail', code: 'POLICY_EVENT_UNVERIFIED', eventIndex: 3, pcr: 7 });
  });

  it('every boot rule with something to check fails when the evidence has no event log; the others are skipped, as with a log', () => {
    const rs = evaluate(p, snpClaimsFromVector(), now).results.filter((r) => r.rule.startsWith('boot.'));
    expect(rs.length).toBe(11);
    const unchecked = ['boot.kernelCmdline.required', 'boot.kernelCmdline.forbidden', 'boot.grubCommands.forbidden'];
    for (const r of rs) {
      if (unchecked.includes(r.rule)) expect(r.outcome, r.rule).toBe('skip');
      else expect(r, r.rule).toMatchObject({ outcome: 'fail', code: 'POLICY_CLAIMS_MISSING' });
    }
    // With patterns to match, those fail too.
    const withPatterns = basePolicy({ boot: { kernelCmdline: { required: ['ro'], forbidden: ['init='] }, grubCommands: { forbidden: ['^set debug='] } }, referenceValues: [refs()] });
    expect(evaluate(withPatterns, snpClaimsFromVector(), now).results.filter((r) => r.rule.startsWith('boot.') && r.outcome !== 'fail').map((r) => r.rule)).toEqual([]);
    // A policy that switches both default rules off, and gives the others nothing, accepts evidence without a log.
    const off = basePolicy({ boot: { requireSecureBoot: false, requireVerifiedEvents: false } });
    const a = evaluate(off, snpClaimsFromVector(), now);
    expect(a.results.filter((r) => r.rule.startsWith('boot.') && r.outcome !== 'skip')).toEqual([]);
    expect(a.verdict).toBe('pass');
  });
});

describe('Secure Boot and verified events are required without a boot section (both default to true)', () => {
  const minimal = basePolicy();
  const node: AppraisalClaims = { ...snpClaimsFromVector(), tee: 'azure-snp-vtpm', boot: bootClaims() };
  const boots = (p: Policy, c: AppraisalClaims) => evaluate(p, c, now).results.filter((r) => r.rule.startsWith('boot.'));
  const OTHER_BOOT_RULES = ['boot.pk', 'boot.kek', 'boot.db', 'boot.dbx', 'boot.bootApps.allowed', 'boot.kernelCmdline.allowed', 'boot.kernelCmdline.required', 'boot.kernelCmdline.forbidden', 'boot.grubCommands.forbidden'];

  it('passes a node with Secure Boot on and every event verified, skipping the rules nothing configures', () => {
    const a = evaluate(minimal, node, now);
    expect(a.verdict).toBe('pass');
    expect(one(minimal, node, 'boot.secureBoot')).toMatchObject({ outcome: 'pass', eventIndex: 3, pcr: 7 });
    expect(one(minimal, node, 'boot.events.verified').outcome).toBe('pass');
    // One result per boot rule, in the published order; the ones that need configuration are skipped.
    expect(boots(minimal, node).map((r) => r.rule)).toEqual(RULE_NAMES.filter((n) => n.startsWith('boot.')));
    for (const rule of OTHER_BOOT_RULES) expect(one(minimal, node, rule).outcome, rule).toBe('skip');
  });

  it('fails Secure Boot off with POLICY_SECURE_BOOT', () => {
    const d = clone(node);
    d.boot!.secureBoot = false;
    expect(one(minimal, d, 'boot.secureBoot')).toMatchObject({ outcome: 'fail', code: 'POLICY_SECURE_BOOT', expected: true, actual: false, eventIndex: 3, pcr: 7 });
    delete d.boot!.secureBoot;
    expect(one(minimal, d, 'boot.secureBoot')).toMatchObject({ outcome: 'fail', code: 'POLICY_SECURE_BOOT', actual: null });
    expect(evaluate(minimal, d, now).verdict).toBe('fail');
  });

  it('fails an unverified event with POLICY_EVENT_UNVERIFIED', () => {
    const d = clone(node);
    d.boot!.unverifiedEvents = [{ type: 'EV_EFI_VARIABLE_DRIVER_CONFIG', eventIndex: 3, pcr: 7, reason: 'sha256 digest differs' }];
    expect(one(minimal, d, 'boot.events.verified')).toMatchObject({ outcome: 'fail', code: 'POLICY_EVENT_UNVERIFIED', eventIndex: 3, pcr: 7 });
    expect(evaluate(minimal, d, now).failures.map((f) => f.rule)).toEqual(['boot.events.verified']);
  });

  it('fails both, and only those, when the evidence has no event log', () => {
    const rs = boots(minimal, snpClaimsFromVector());
    expect(rs.filter((r) => r.outcome === 'fail').map((r) => [r.rule, r.code])).toEqual([
      ['boot.secureBoot', 'POLICY_CLAIMS_MISSING'],
      ['boot.events.verified', 'POLICY_CLAIMS_MISSING'],
    ]);
    expect(rs.filter((r) => r.outcome === 'skip').map((r) => r.rule)).toEqual(OTHER_BOOT_RULES);
  });

  it('is switched off only by saying so', () => {
    const d = clone(node);
    d.boot!.secureBoot = false;
    d.boot!.unverifiedEvents = [{ type: 'EV_IPL', eventIndex: 40, pcr: 8 }];
    const relaxed = basePolicy({ boot: { requireSecureBoot: false, requireVerifiedEvents: false } });
    expect(one(relaxed, d, 'boot.secureBoot').outcome).toBe('skip');
    expect(one(relaxed, d, 'boot.events.verified').outcome).toBe('skip');
    expect(evaluate(relaxed, d, now).verdict).toBe('pass');
  });

  it('the strict default requires Secure Boot, verified events and a SHA-256 bank, as its description says', () => {
    const strict = defaultPolicy();
    const pcrs = pcrsFromVector('Rhel8GCE');
    const good: AppraisalClaims = { ...node, tpm: { banks: Object.keys(pcrs), pcrs } };
    expect(evaluate(strict, good, now).verdict).toBe('pass');
    const off = clone(good);
    off.boot!.secureBoot = false;
    expect(evaluate(strict, off, now).failures.map((f) => [f.rule, f.code])).toEqual([['boot.secureBoot', 'POLICY_SECURE_BOOT']]);
    const unverified = clone(good);
    unverified.boot!.unverifiedEvents = [{ type: 'EV_IPL', eventIndex: 40, pcr: 8 }];
    expect(evaluate(strict, unverified, now).failures.map((f) => [f.rule, f.code])).toEqual([['boot.events.verified', 'POLICY_EVENT_UNVERIFIED']]);
    const noLog = clone(good);
    delete noLog.boot;
    expect(evaluate(strict, noLog, now).verdict).toBe('fail');
  });
});

describe('appraisal', () => {
  it('records the policy digest and evaluation time, and refuses an invalid time', () => {
    const a = evaluate(basePolicy(), { ...snpClaimsFromVector(), boot: bootClaims() }, now);
    expect(a.evaluatedAt).toBe(now.toISOString());
    expect(a.policy.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(() => evaluate(basePolicy(), snpClaimsFromVector(), new Date('nope'))).toThrow(/not a valid date/);
    expect(appraisalError(a)).toBeUndefined();
  });
});

describe('rule names and codes', () => {
  it('every emitted rule name and code is in the published lists', async () => {
    const { RULE_NAMES, PCR_RULE_PATTERN, ALL_POLICY_ERROR_CODES } = await import('../src/index.js');
    const pcrs = pcrsFromVector('Rhel8GCE');
    const everything = basePolicy({
      snp: { minimumTcb: { bootloader: 9, fmc: 1 }, guestPolicy: { allowSmt: false, requireSingleSocket: true }, allowedVmpl: [3], minimumGuestSvn: 9 },
      tdx: { allowedAdvisoryIds: [] },
      tpm: { requiredBanks: ['sha384'] },
      boot: { kernelCmdline: { required: ['x'], forbidden: ['.'] }, grubCommands: { forbidden: ['.'] } },
      referenceValues: [ref({ snp: { measurement: [h(1, 48)] }, tdx: { mrTd: [h(1, 48)] }, boot: { bootApps: [h(1, 32)], db: { hashes: [h(1, 32)] }, dbx: { hashes: [h(9, 32)] }, kernelCmdline: ['x'] }, pcrs: { sha256: { '7': [h(1, 32)] } } })],
    });
    const claims: AppraisalClaims[] = [
      { ...snpClaimsFromVector(), tee: 'azure-snp-vtpm', boot: bootClaims(), tpm: { banks: ['sha256'], pcrs } },
      { ...tdxClaimsFromVector(), boot: { ...bootClaims(), secureBoot: false, unverifiedEvents: [{ type: 'EV_IPL', eventIndex: 2 }] } },
      { tee: 'snp' },
    ];
    const seenRules = new Set<string>();
    const seenCodes = new Set<string>();
    for (const c of claims) {
      for (const r of evaluate(everything, c, now).results) {
        seenRules.add(r.rule);
        if (r.code) seenCodes.add(r.code);
        expect(RULE_NAMES.includes(r.rule as (typeof RULE_NAMES)[number]) || PCR_RULE_PATTERN.test(r.rule)).toBe(true);
        if (r.code) expect(ALL_POLICY_ERROR_CODES).toContain(r.code);
      }
    }
    // Every static rule was exercised.
    for (const name of RULE_NAMES) expect(seenRules.has(name)).toBe(true);
    expect(seenCodes.size).toBeGreaterThan(12);
  });
});
