import { createHash } from 'node:crypto';
import { newKeyPair } from '@joinguard/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSimCvm, type SimCvm } from '@joinguard/simcvm';
import { Ajv } from 'ajv';
import { evidenceSchema, type Evidence, type TeeKeyJwk } from '@joinguard/protocol';
import { appraiseEvidence } from '../src/appraise/index.js';
import { CHAIN, chainFailures, ctxFor, expectedD, failedChecks, outcomeOf } from './appraise-helpers.js';

// Simulated CVMs with the in-process software vTPM (fast); appraise-swtpm.test.ts runs the same engine over swtpm.

function otherTeeKey(): TeeKeyJwk {
  const j = newKeyPair({ type: 'ec', namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
  return { kty: 'EC', crv: 'P-256', x: j.x!, y: j.y! };
}

function flipB64(b64: string, offset: number): string {
  const b = Buffer.from(b64, 'base64');
  b[offset]! ^= 0x01;
  return b.toString('base64');
}

describe('simulated SNP CVM (software vTPM)', () => {
  let sim: SimCvm;
  beforeAll(async () => {
    sim = await createSimCvm({ tee: 'snp', vtpm: 'software', nodeName: 'worker-snp-1' });
  });
  afterAll(() => sim?.close());

  it('a good bundle passes every check, in the contract order', async () => {
    const ev = await sim.evidence();
    const o = await appraiseEvidence(ev, ctxFor(sim));
    expect(failedChecks(o)).toEqual([]);
    expect(o.appraisal.verdict).toBe('pass');
    const names = o.appraisal.checks.map((c) => c.name);
    expect(names.slice(0, 8)).toEqual(['evidence.decode', 'snp.hardware', ...CHAIN.slice(1)]);
    expect(names.slice(8).every((n) => n.startsWith('policy.'))).toBe(true);
    for (const rule of ['policy.snp.measurement', 'policy.boot.secureBoot', 'policy.boot.bootApps.allowed', 'policy.boot.pk', 'policy.boot.dbx', 'policy.tpm.pcrs.sha256.7', 'policy.boot.kernelCmdline.allowed']) {
      expect(outcomeOf(o, rule), rule).toBe('pass');
    }
    expect(o.appraisal).toMatchObject({ tee: 'snp', node: 'worker-snp-1', purpose: 'join' });
    expect(o.bindingDigest).toBe(expectedD(ev));
    // RFC 7638 thumbprint, computed here from the member order the RFC fixes.
    const k = ev.runtimeData.teeKey as { crv: string; kty: string; x: string; y: string };
    expect(o.bindings.teeKeyThumbprint).toBe(createHash('sha256').update(`{"crv":"${k.crv}","kty":"${k.kty}","x":"${k.x}","y":"${k.y}"}`).digest('base64url'));
    expect(o.bindings.kubeletKeySha256).toBe(ev.runtimeData.kubeletKeySha256);
    expect(o.measurements.measurement).toBe(o.claims?.snp?.measurement);
    expect(o.measurements['pcr.sha256.7']).toBe(ev.tpm.pcrs.sha256!['7']);
    expect(o.tcb.status).toBe('ok');
    expect(o.claims?.boot?.bootApps.map((a) => a.digestSha256)).toEqual(sim.boot.bootApps.map((a) => a.digestSha256));
    expect(o.claims?.boot?.kernelCmdline?.[0]?.value).toBe(sim.boot.kernelCmdline);
    expect(o.claims?.boot?.secureBoot).toBe(true);
  });

  it('the simulator\'s evidence is of the protocol Evidence schema (the edge validation of POST /v1/attest)', async () => {
    const validate = new Ajv({ strict: false }).compile(evidenceSchema);
    const ev = await sim.evidence();
    expect(validate(ev), JSON.stringify(validate.errors)).toBe(true);
    expect(validate({ ...ev, runtimeData: { ...ev.runtimeData, teeKey: { ...ev.runtimeData.teeKey, d: 'x' } } })).toBe(false);
  });

  it('REPORT_DATA other than d fails binding.reportData, and every later check is skipped', async () => {
    const o = await appraiseEvidence(await sim.evidence({ tamper: { reportData: new Uint8Array(64).fill(7) } }), ctxFor(sim));
    expect(chainFailures(o)).toEqual(['binding.reportData:APPRAISE_REPORT_DATA_MISMATCH']);
    for (const n of CHAIN.slice(2)) expect(outcomeOf(o, n), n).toBe('skip');
    expect(o.appraisal.verdict).toBe('fail');
    const c = o.appraisal.checks.find((x) => x.name === 'binding.reportData')!;
    expect(c.actual).toBe('07'.repeat(64));
  });

  for (const [what, change] of [
    ['nodeName', { nodeName: 'another-node' }],
    ['teeKey', { teeKey: otherTeeKey() }],
    ['kubeletKeySha256', { kubeletKeySha256: 'ab'.repeat(32) }],
    ['purpose', { purpose: 'unlock' as const }],
    // the disk key is derived from the machine: a machine named after binding must not pass
    ['machine', { machine: 'another-machine' }],
    ['providerId', { providerId: 'azure:///subscriptions/x/another' }],
  ] as const) {
    it(`runtimeData.${what} changed after binding fails binding.reportData`, async () => {
      const o = await appraiseEvidence(await sim.evidence({ tamper: { runtimeDataAfterBinding: change } }), ctxFor(sim));
      expect(chainFailures(o)).toEqual(['binding.reportData:APPRAISE_REPORT_DATA_MISMATCH']);
    });
  }

  it('an AK other than the bound one fails binding.akPublic', async () => {
    const o = await appraiseEvidence(await sim.evidence({ tamper: { akPublicSha256: 'cd'.repeat(32) } }), ctxFor(sim));
    expect(chainFailures(o)).toEqual(['binding.akPublic:APPRAISE_AK_DIGEST_MISMATCH']);
  });

  it('akPublicSha256 removed from runtimeData after binding fails binding.reportData (d no longer matches)', async () => {
    const ev = await sim.evidence();
    delete ev.runtimeData.akPublicSha256;
    const o = await appraiseEvidence(ev, ctxFor(sim));
    expect(chainFailures(o)).toEqual(['binding.reportData:APPRAISE_REPORT_DATA_MISMATCH']);
  });

  it('runtimeData that names no AK, though correctly bound, fails binding.akPublic with APPRAISE_AK_NOT_BOUND', async () => {
    const ev = await sim.evidence({ tamper: { omitAkPublicSha256: true } });
    expect(ev.runtimeData).not.toHaveProperty('akPublicSha256');
    const o = await appraiseEvidence(ev, ctxFor(sim));
    // REPORT_DATA is d of this very runtimeData, so the binding check passes and the AK check is the one to refuse.
    expect(outcomeOf(o, 'snp.hardware')).toBe('pass');
    expect(outcomeOf(o, 'binding.reportData')).toBe('pass');
    expect(o.bindingDigest).toBe(expectedD(ev));
    expect(chainFailures(o)).toEqual(['binding.akPublic:APPRAISE_AK_NOT_BOUND']);
    const c = o.appraisal.checks.find((x) => x.name === 'binding.akPublic')!;
    // The check reports the digest of the AK that was sent, which nothing vouches for.
    expect(c.actual).toBe(createHash('sha256').update(Buffer.from(ev.tpm.akPublic, 'base64')).digest('hex'));
    for (const n of CHAIN.slice(3)) expect(outcomeOf(o, n), n).toBe('skip');
    expect(o.claims?.tpm).toBeUndefined();
    expect(o.appraisal.verdict).toBe('fail');
  });

  it('quote extraData other than SHA-256(d) fails binding.tpmExtraData', async () => {
    const o = await appraiseEvidence(await sim.evidence({ tamper: { extraData: new Uint8Array(32).fill(1) } }), ctxFor(sim));
    expect(chainFailures(o)).toEqual(['binding.tpmExtraData:APPRAISE_TPM_EXTRA_DATA_MISMATCH']);
  });

  it('a PCR value changed after the quote fails tpm.quote (pcrDigest)', async () => {
    const o = await appraiseEvidence(await sim.evidence({ tamper: { pcr: { index: 7, value: 'ee'.repeat(32) } } }), ctxFor(sim));
    expect(chainFailures(o)).toEqual(['tpm.quote:TPM_QUOTE_PCR_DIGEST_MISMATCH']);
  });

  it('a quote whose TPMS_ATTEST was altered fails tpm.quote (signature)', async () => {
    const ev = await sim.evidence();
    ev.tpm.quote = flipB64(ev.tpm.quote, 20);
    const o = await appraiseEvidence(ev, ctxFor(sim));
    expect(chainFailures(o)[0]).toMatch(/^tpm\.quote:TPM_/);
  });

  it('an event log with a different boot application digest fails eventlog.replay naming PCR 4', async () => {
    const o = await appraiseEvidence(await sim.evidence({ tamper: { eventLog: 'bootAppDigest' } }), ctxFor(sim));
    expect(chainFailures(o)).toEqual(['eventlog.replay:APPRAISE_EVENTLOG_PCR_MISMATCH']);
    const c = o.appraisal.checks.find((x) => x.name === 'eventlog.replay')!;
    expect(c.message).toMatch(/sha256 PCR 4 /);
    expect(c.actual).not.toBe(c.expected);
  });

  it('an event whose text no longer matches its digest fails policy.boot.events.verified', async () => {
    const o = await appraiseEvidence(await sim.evidence({ tamper: { eventLog: 'kernelCmdlineText' } }), ctxFor(sim));
    expect(chainFailures(o)).toEqual([]);
    expect(failedChecks(o)).toContain('policy.boot.events.verified:POLICY_EVENT_UNVERIFIED');
    expect(o.appraisal.verdict).toBe('fail');
  });

  it('a teeKey carrying its private scalar d fails teeKey', async () => {
    const o = await appraiseEvidence(await sim.evidence({ tamper: { teeKeyWithPrivate: true } }), ctxFor(sim));
    expect(chainFailures(o)).toEqual(['teeKey:APPRAISE_TEE_KEY_PRIVATE']);
    expect(o.appraisal.verdict).toBe('fail');
  });

  it('a teeKey that is not a P-256/X25519 public key fails teeKey', async () => {
    const o = await appraiseEvidence(await sim.evidence({ runtimeData: { teeKey: { kty: 'EC', crv: 'P-256', x: 'A'.repeat(43), y: 'A'.repeat(43) } } }), ctxFor(sim));
    expect(chainFailures(o)).toEqual(['teeKey:APPRAISE_TEE_KEY_INVALID']);
  });

  it('without the simulator\'s test root configured, snp.hardware fails and nothing else is trusted', async () => {
    const o = await appraiseEvidence(await sim.evidence(), ctxFor(sim, { trustSim: false }));
    expect(chainFailures(o)[0]).toMatch(/^snp\.hardware:SNP_/);
    expect(o.claims).toBeUndefined();
    expect(outcomeOf(o, 'policy')).toBe('skip');
    expect(o.tcb.status).toBe('unknown');
  });

  it('a report altered after signing fails snp.hardware with SNP_BAD_SIGNATURE', async () => {
    const ev = await sim.evidence();
    ev.hardware.report = flipB64(ev.hardware.report, 0x90);
    const o = await appraiseEvidence(ev, ctxFor(sim));
    expect(chainFailures(o)).toEqual(['snp.hardware:SNP_BAD_SIGNATURE']);
  });

  it('evidence of the wrong tee kind fails snp.hardware instead of throwing', async () => {
    const ev = await sim.evidence();
    const o = await appraiseEvidence({ ...ev, tee: 'tdx' }, ctxFor(sim));
    expect(chainFailures(o)[0]).toMatch(/^tdx\.hardware:/);
  });

  it('malformed evidence fails evidence.decode and never throws', async () => {
    const ev = await sim.evidence();
    const cases: unknown[] = [null, 42, {}, { ...ev, nonce: '!!' }, { ...ev, tpm: { ...ev.tpm, quote: 'not base64 ***' } }, { ...ev, runtimeData: { ...ev.runtimeData, purpose: 'x' } }];
    for (const bad of cases) {
      const o = await appraiseEvidence(bad as Evidence, ctxFor(sim));
      expect(chainFailures(o)[0]).toBe('evidence.decode:APPRAISE_EVIDENCE_MALFORMED');
      expect(o.appraisal.verdict).toBe('fail');
      expect(o.bindingDigest).toBe('');
    }
  });

  it('a debug guest passes the hardware and fails policy.snp.policy.debug', async () => {
    const dbg = await createSimCvm({ tee: 'snp', vtpm: 'software', pkiFrom: sim, snp: { policy: 0x30000n | (1n << 19n) } });
    try {
      const o = await appraiseEvidence(await dbg.evidence(), ctxFor(dbg));
      expect(chainFailures(o)).toEqual([]);
      expect(failedChecks(o)).toEqual(['policy.snp.policy.debug:POLICY_GUEST_POLICY']);
      expect(o.appraisal.verdict).toBe('fail');
    } finally {
      await dbg.close();
    }
  });

  it('a log that makes a rule fail hundreds of times stays within the 512 checks of a record', async () => {
    const apps = Array.from({ length: 600 }, (_, i) => ({ path: `\\EFI\\x\\app${i}.efi`, digestSha256: createHash('sha256').update(`app ${i}`).digest('hex') }));
    const many = await createSimCvm({ tee: 'snp', vtpm: 'software', pkiFrom: sim, boot: { bootApps: apps } });
    try {
      const o = await appraiseEvidence(await many.evidence(), ctxFor(many, { policy: sim.goodPolicy() }));
      expect(chainFailures(o)).toEqual([]);
      expect(o.appraisal.checks.length).toBeLessThanOrEqual(512);
      expect(o.appraisal.checks.at(-1)).toMatchObject({ name: 'policy.truncated', outcome: 'fail', code: 'APPRAISE_TOO_MANY_CHECKS' });
      expect(o.appraisal.verdict).toBe('fail');
    } finally {
      await many.close();
    }
  });

  it('a measurement the policy does not list fails policy.snp.measurement (the verified claims still returned)', async () => {
    const other = await createSimCvm({ tee: 'snp', vtpm: 'software', pkiFrom: sim, snp: { measurement: new Uint8Array(48).fill(9) } });
    try {
      const o = await appraiseEvidence(await other.evidence(), ctxFor(other, { policy: sim.goodPolicy() }));
      expect(failedChecks(o)).toContain('policy.snp.measurement:POLICY_MEASUREMENT_MISMATCH');
      expect(o.claims?.snp?.measurement).toBe('09'.repeat(48));
    } finally {
      await other.close();
    }
  });
});

describe('simulated TDX CVM (software vTPM)', () => {
  let sim: SimCvm;
  beforeAll(async () => {
    sim = await createSimCvm({ tee: 'tdx', vtpm: 'software', nodeName: 'worker-tdx-1' });
  });
  afterAll(() => sim?.close());

  it('a good bundle passes every check', async () => {
    const ev = await sim.evidence();
    const o = await appraiseEvidence(ev, ctxFor(sim));
    expect(failedChecks(o)).toEqual([]);
    expect(o.appraisal.checks.slice(0, 8).map((c) => c.name)).toEqual(['evidence.decode', 'tdx.hardware', ...CHAIN.slice(1)]);
    expect(outcomeOf(o, 'policy.tdx.mrTd')).toBe('pass');
    expect(outcomeOf(o, 'policy.tdx.tcbStatus')).toBe('pass');
    expect(o.tcb.status).toBe('UpToDate');
    expect(o.measurements.mrTd).toBe(o.claims?.tdx?.mrTd);
    expect(o.bindingDigest).toBe(expectedD(ev));
  });

  it('REPORT_DATA other than d fails binding.reportData', async () => {
    const o = await appraiseEvidence(await sim.evidence({ tamper: { reportData: new Uint8Array(64) } }), ctxFor(sim));
    expect(chainFailures(o)).toEqual(['binding.reportData:APPRAISE_REPORT_DATA_MISMATCH']);
  });

  it('without collateral, tdx.hardware fails with APPRAISE_TDX_NO_COLLATERAL', async () => {
    const o = await appraiseEvidence(await sim.evidence(), ctxFor(sim, { collateral: false }));
    expect(chainFailures(o)).toEqual(['tdx.hardware:APPRAISE_TDX_NO_COLLATERAL']);
  });

  it('without the test root configured, tdx.hardware fails', async () => {
    const o = await appraiseEvidence(await sim.evidence(), ctxFor(sim, { trustSim: false }));
    expect(chainFailures(o)[0]).toMatch(/^tdx\.hardware:TDX_/);
  });

  it('after the collateral\'s nextUpdate, tdx.hardware fails', async () => {
    const o = await appraiseEvidence(await sim.evidence(), ctxFor(sim, { now: new Date(Date.now() + 60 * 86_400_000) }));
    expect(chainFailures(o)[0]).toMatch(/^tdx\.hardware:TDX_/);
  });

  it('a quote altered after signing fails tdx.hardware with TDX_QUOTE_BAD_SIGNATURE', async () => {
    const ev = await sim.evidence();
    ev.hardware.report = flipB64(ev.hardware.report, 48 + 136);
    const o = await appraiseEvidence(ev, ctxFor(sim));
    expect(chainFailures(o)).toEqual(['tdx.hardware:TDX_QUOTE_BAD_SIGNATURE']);
  });

  it('a debug TD fails policy.tdx.tdAttributes.debug', async () => {
    const dbg = await createSimCvm({ tee: 'tdx', vtpm: 'software', pkiFrom: sim, tdx: { tdAttributes: Uint8Array.of(1, 0, 0, 0, 0, 0, 0, 0) } });
    try {
      const o = await appraiseEvidence(await dbg.evidence(), ctxFor(dbg));
      expect(chainFailures(o)).toEqual([]);
      expect(failedChecks(o)).toEqual(['policy.tdx.tdAttributes.debug:POLICY_DEBUG']);
    } finally {
      await dbg.close();
    }
  });
});

describe('where a failed policy rule broke, in its check', () => {
  let sim: SimCvm;
  let drifted: SimCvm;
  beforeAll(async () => {
    sim = await createSimCvm({ tee: 'snp', nodeName: 'where-0', vtpm: 'software' });
    // The same hardware booted with another kernel command line and another launch measurement.
    drifted = await createSimCvm({ tee: 'snp', nodeName: 'where-0', vtpm: 'software', pkiFrom: sim, snp: { measurement: new Uint8Array(48).fill(0xab) }, boot: { kernelCmdline: 'root=/dev/vda2 ro init=/bin/sh' } });
  });
  afterAll(async () => {
    await drifted?.close();
    await sim?.close();
  });

  it('names the claim path, the event and the PCR of a failure, and the reference value a pass matched', async () => {
    const good = await appraiseEvidence(await sim.evidence(), ctxFor(sim));
    expect(good.appraisal.verdict).toBe('pass');
    const rv = sim.goodPolicy().referenceValues![0]!;
    const matched = good.appraisal.checks.filter((c) => c.referenceValue);
    expect(matched.length).toBeGreaterThan(0);
    for (const c of matched) expect(c.referenceValue).toEqual({ id: rv.id, version: rv.version });
    // Passing checks carry no location (their claims are the evidence itself).
    expect(good.appraisal.checks.filter((c) => c.path !== undefined || c.eventIndex !== undefined || c.pcr !== undefined)).toEqual([]);

    const o = await appraiseEvidence(await drifted.evidence(), ctxFor(drifted, { policy: sim.goodPolicy() }));
    expect(o.evidenceVerified).toBe(true);
    expect(o.appraisal.verdict).toBe('fail');
    const failed = o.appraisal.checks.filter((c) => c.outcome === 'fail');
    const byName = (n: string) => failed.filter((c) => c.name === n);
    expect(byName('policy.snp.measurement')[0]).toMatchObject({ path: 'snp.measurement', actual: 'ab'.repeat(48) });
    // The forbidden init= and the command line no reference value lists are named by the event that holds them.
    const cmdline = failed.filter((c) => c.name.startsWith('policy.boot.kernelCmdline'));
    expect(cmdline.length).toBeGreaterThan(0);
    for (const c of cmdline) expect(c.eventIndex, c.name).toEqual(expect.any(Number));
    const pcrs = failed.filter((c) => c.name.startsWith('policy.tpm.pcrs.'));
    expect(pcrs.length).toBeGreaterThan(0);
    for (const c of pcrs) expect(c.pcr, c.name).toBe(Number(c.name.split('.').at(-1)));
    // And the record's schema takes them.
    const ajv = new Ajv({ strict: false });
    const validate = ajv.compile((await import('@joinguard/protocol')).appraisalSchema);
    expect(validate(o.appraisal), JSON.stringify(validate.errors)).toBe(true);
  });
});
