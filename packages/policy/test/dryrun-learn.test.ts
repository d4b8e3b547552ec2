import { describe, expect, it } from 'vitest';
import { dryRun, evaluate, learn, checkPolicy, schemaErrors, type AppraisalClaims } from '../src/index.js';
import { basePolicy, bootClaims, h, pcrsFromVector, snpClaimsFromVector, tdxClaimsFromVector } from './fixtures.js';

const now = new Date('2026-11-23T10:00:00Z');

describe('dryRun', () => {
  // With a measured boot (Secure Boot on, every event verified), as every policy requires by default.
  const a: AppraisalClaims = { ...snpClaimsFromVector('snp/virtee_milan_v2/report.bin'), boot: bootClaims() }; // TCB 3/0/8/115
  // TCB 2/0/5/68; its guest policy 0xb0000 has DEBUG (bit 19) set, so both policies here allow debug.
  const b: AppraisalClaims = { ...snpClaimsFromVector('snp/gosevguest_milan_v2/report.bin'), boot: bootClaims() };
  const guestPolicy = { allowDebug: true };
  const current = basePolicy({ tee: { allowed: ['snp'] }, snp: { guestPolicy } });
  const draft = basePolicy({ tee: { allowed: ['snp'] }, snp: { guestPolicy, minimumTcb: { snp: 8 } } });

  it('compares old and new verdicts per item without changing the stored ones', () => {
    const items = [
      { id: 'node-a', claims: a, verdict: 'pass' as const },
      { id: 'node-b', claims: b, verdict: 'pass' as const },
    ];
    const before = structuredClone(items);
    const r = dryRun(draft, items, now);
    expect(items).toEqual(before);
    expect(r.items.map((i) => [i.id, i.oldVerdict, i.newVerdict, i.changed])).toEqual([
      ['node-a', 'pass', 'pass', false],
      ['node-b', 'pass', 'fail', true],
    ]);
    expect(r.newlyFailing).toEqual(['node-b']);
    expect(r.newlyPassing).toEqual([]);
    expect(r.items[1]!.newFailures).toEqual([expect.objectContaining({ rule: 'snp.tcb.minimum', path: 'snp.reportedTcb.snp', expected: { snp: 8 }, actual: { snp: 5 } })]);
    expect(r).toMatchObject({ total: 2, passing: 1, failing: 1 });
  });

  it('takes the old verdict from the current policy when none is stored, and lists resolved failures', () => {
    const r = dryRun(current, [b, { claims: a }], now, draft);
    expect(r.items.map((i) => [i.id, i.oldVerdict, i.newVerdict])).toEqual([
      ['#0', 'fail', 'pass'],
      ['#1', 'pass', 'pass'],
    ]);
    expect(r.newlyPassing).toEqual(['#0']);
    expect(r.items[0]!.resolvedFailures.map((f) => f.rule)).toEqual(['snp.tcb.minimum']);
    expect(r.policy.digest).toBe(evaluate(current, a, now).policy.digest);
  });

  it('leaves the old verdict unknown when there is neither a stored verdict nor a current policy', () => {
    const r = dryRun(draft, [a], now);
    expect(r.items[0]!.oldVerdict).toBeUndefined();
    expect(r.items[0]!.changed).toBe(false);
  });
});

describe('learn', () => {
  const nodeWith = (log: string, extraApp?: string, cmdline?: string): AppraisalClaims => {
    const pcrs = pcrsFromVector(log);
    const boot = bootClaims();
    if (extraApp) boot.bootApps.push({ digestSha256: extraApp, eventIndex: 50, pcr: 4 });
    if (cmdline) boot.kernelCmdline = [{ value: cmdline, eventIndex: 41, pcr: 8 }];
    return { ...snpClaimsFromVector(), tee: 'azure-snp-vtpm', tpm: { banks: Object.keys(pcrs), pcrs }, boot };
  };

  it('keeps what all nodes share and reports what differs, per node', () => {
    const rhel = nodeWith('Rhel8GCE', undefined, 'ro console=ttyS0 node=1');
    const ubuntu = nodeWith('Ubuntu2104NoSecureBootGCE', h(0xcc, 32), 'ro console=ttyS0 node=2');
    const r = learn([{ name: 'rhel', claims: rhel }, { name: 'ubuntu', claims: ubuntu }], { id: 'pool', version: '7' });
    expect(r.nodes).toEqual(['rhel', 'ubuntu']);

    // Independently: which PCR values do the two replays share?
    for (const bank of ['sha1', 'sha256']) {
      const x = rhel.tpm!.pcrs[bank]!;
      const y = ubuntu.tpm!.pcrs[bank]!;
      for (let i = 0; i < 16; i++) {
        const k = String(i);
        if (x[k] === undefined && y[k] === undefined) continue;
        const learned = r.referenceValue.pcrs?.[bank]?.[k];
        const diff = r.differing.find((d) => d.key === `pcrs.${bank}.${k}`);
        if (x[k] === y[k]) {
          expect(learned).toEqual([x[k]]);
          expect(diff).toBeUndefined();
        } else {
          expect(learned).toBeUndefined();
          expect(diff?.values).toEqual({ rhel: x[k] ?? null, ubuntu: y[k] ?? null });
        }
      }
    }
    // The two logs share some PCRs and differ in PCR 8/9 at least.
    expect(r.differing.map((d) => d.key)).toEqual(expect.arrayContaining(['pcrs.sha256.8', 'pcrs.sha256.9']));

    // Boot applications: the common ones become reference values, the extra one is reported.
    expect(r.referenceValue.boot?.bootApps).toEqual(bootClaims().bootApps.map((a) => a.digestSha256));
    expect(r.differing.find((d) => d.key === 'boot.bootApps')?.values).toEqual({ rhel: [], ubuntu: [h(0xcc, 32)] });
    expect(r.referenceValue.boot?.kernelCmdline).toBeUndefined();
    expect(r.differing.find((d) => d.key === 'boot.kernelCmdline')?.values).toEqual({ rhel: ['ro console=ttyS0 node=1'], ubuntu: ['ro console=ttyS0 node=2'] });
    expect(r.referenceValue.snp?.measurement).toEqual([rhel.snp!.measurement]);
    expect(r.referenceValue).toMatchObject({ id: 'pool', version: '7' });
  });

  it('proposes a draft policy that is valid and passes the nodes it learned from', () => {
    const nodes = [nodeWith('Rhel8GCE'), nodeWith('Rhel8GCE')];
    const r = learn(nodes, { policyName: 'workers' });
    expect(schemaErrors(r.policy)).toEqual([]);
    expect(checkPolicy(r.policy, now).errors).toEqual([]);
    expect(r.policy.snp?.minimumTcb).toEqual(nodes[0]!.snp!.reportedTcb);
    expect(r.policy.tpm?.requiredBanks).toEqual(['sha1', 'sha256']);
    for (const n of nodes) expect(evaluate(r.policy, n, now).failures).toEqual([]);
    expect(r.differing).toEqual([]);
    expect(r.notes.join(' ')).not.toContain('event log');
  });

  it('takes the lowest TCB across nodes and learns TDX registers', () => {
    const r = learn([snpClaimsFromVector('snp/virtee_milan_v2/report.bin'), snpClaimsFromVector('snp/gosevguest_milan_v2/report.bin')]);
    expect(r.policy.snp?.minimumTcb).toEqual({ bootloader: 2, tee: 0, snp: 5, microcode: 68 });
    expect(r.differing.map((d) => d.key)).toContain('snp.measurement');
    expect(r.referenceValue.snp?.hostData).toEqual([h(0, 32)]);
    const t = learn([tdxClaimsFromVector()]);
    expect(t.referenceValue.tdx?.mrTd).toEqual([tdxClaimsFromVector().tdx!.mrTd]);
    expect(t.notes.join(' ')).toContain('one node only');
    // Bare TDX claims without a log: the draft's Secure Boot default fails them, and a note says why.
    expect(t.notes.join(' ')).toContain('no node sent an event log');
    expect(evaluate(t.policy, tdxClaimsFromVector(), now).failures.map((f) => f.rule)).toEqual(['boot.secureBoot', 'boot.events.verified']);
  });

  it('refuses no input and duplicate names', () => {
    expect(() => learn([])).toThrow(expect.objectContaining({ code: 'POLICY_LEARN_NO_EVIDENCE' }));
    const c = snpClaimsFromVector();
    expect(() => learn([{ name: 'x', claims: c }, { name: 'x', claims: c }])).toThrow(expect.objectContaining({ code: 'POLICY_LEARN_DUPLICATE_NODE' }));
  });
});

describe('learn with hostile keys', () => {
  it('ignores unknown PCR bank names and never writes to prototypes', () => {
    const pcrs = JSON.parse('{"__proto__": {"0": "00"}, "sha256": {"0": "' + h(1, 32) + '"}}') as Record<string, Record<string, string>>;
    const c: AppraisalClaims = { ...snpClaimsFromVector(), tpm: { banks: ['sha256'], pcrs } };
    const r = learn([c]);
    expect(({} as Record<string, unknown>)['0']).toBeUndefined();
    expect(Object.keys(r.referenceValue.pcrs ?? {})).toEqual(['sha256']);
  });
});
