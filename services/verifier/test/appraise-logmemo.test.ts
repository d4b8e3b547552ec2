import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Evidence } from '@joinguard/protocol';
import { createSimCvm, type SimCvm } from '@joinguard/simcvm';
import { appraiseEvidence } from '../src/appraise/index.js';
import { forgetKnownLogs, knownLogsUsage } from '../src/appraise/engine.js';
import { ctxFor, failedChecks } from './appraise-helpers.js';

/*
 * The engine remembers event logs it parsed, by their text, with their replay and boot claims. What it
 * remembers must never decide a comparison with a quote: the same log under another node's quote must fail
 * exactly as it fails when parsed afresh.
 */

let a: SimCvm;
let b: SimCvm;

beforeAll(async () => {
  a = await createSimCvm({ tee: 'snp', nodeName: 'memo-a', vtpm: 'software' });
  // Same PKI, another kernel command line: other PCR 8 and 9 values, another log.
  b = await createSimCvm({ tee: 'snp', nodeName: 'memo-b', vtpm: 'software', pkiFrom: a, boot: { kernelCmdline: `${a.boot.kernelCmdline} quiet` } });
});

afterAll(async () => {
  await a?.close();
  await b?.close();
});

const replayCheck = async (ev: Evidence, sim: SimCvm) => (await appraiseEvidence(ev, ctxFor(sim))).appraisal.checks.find((c) => c.name === 'eventlog.replay')!;

describe('the memo of parsed event logs', () => {
  it('gives a re-attestation with the same log the same checks and claims, from one parse', async () => {
    forgetKnownLogs();
    const first = await appraiseEvidence(await a.evidence(), ctxFor(a));
    expect(first.appraisal.verdict).toBe('pass');
    expect(knownLogsUsage().entries).toBe(1);
    const second = await appraiseEvidence(await a.evidence(), ctxFor(a));
    expect(second.appraisal.verdict).toBe('pass');
    expect(knownLogsUsage().entries).toBe(1);
    const policyChecks = (o: typeof first) => o.appraisal.checks.filter((c) => c.name.startsWith('policy.') || c.name === 'eventlog.replay');
    expect(policyChecks(second)).toEqual(policyChecks(first));
    expect(second.claims!.boot).toEqual(first.claims!.boot);
    // Shared between appraisals, so nothing may write to it.
    expect(Object.isFrozen(second.claims!.boot)).toBe(true);
  });

  it("fails a remembered log under another node's quote exactly as a log parsed afresh", async () => {
    forgetKnownLogs();
    const logOfA = (await a.evidence()).eventLog;
    await appraiseEvidence(await a.evidence(), ctxFor(a));
    expect(knownLogsUsage().entries).toBe(1);
    const mixed = async () => ({ ...(await b.evidence()), eventLog: logOfA });
    const remembered = await replayCheck(await mixed(), b);
    forgetKnownLogs();
    const afresh = await replayCheck(await mixed(), b);
    expect(afresh).toMatchObject({ outcome: 'fail', code: 'APPRAISE_EVENTLOG_PCR_MISMATCH' });
    expect(afresh.message).toMatch(/sha256 PCR 8 .* first differing event/);
    expect(remembered).toEqual(afresh);
    // And b's own log, remembered too, still passes under b's quote.
    expect(failedChecks(await appraiseEvidence(await b.evidence(), ctxFor(b)))).toEqual([]);
    expect((await replayCheck(await b.evidence(), b)).outcome).toBe('pass');
  });

  it('holds at most 64 logs', async () => {
    forgetKnownLogs();
    const base = await a.evidence();
    const bytes = Buffer.from(base.eventLog, 'base64');
    // The last event is the kernel command line's text: changing its last byte keeps the log parseable (its
    // replay no longer matches, which is not what is looked at here).
    for (let i = 0; i < 70; i++) {
      const v = Buffer.from(bytes);
      v[v.length - 1] = i;
      await appraiseEvidence({ ...(await a.evidence()), eventLog: v.toString('base64') }, ctxFor(a));
    }
    const u = knownLogsUsage();
    expect(u.entries).toBe(64);
    expect(u.chars).toBe(64 * base.eventLog.length);
  });
});
