import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSimCvm, type SimCvm } from '@joinguard/simcvm';
import { manufactureSwtpm } from '@joinguard/tpm2/testing';
import { appraiseEvidence } from '../src/appraise/index.js';
import { CHAIN, chainFailures, ctxFor, failedChecks, outcomeOf } from './appraise-helpers.js';

// End to end over a real TPM 2.0 implementation: the event log is extended into swtpm's PCRs with
// TPM2_PCR_Extend and the quote is TPM2_Quote by an AK created in swtpm's endorsement hierarchy.

describe('simulated CVMs with swtpm', () => {
  let template: string;
  const sims: SimCvm[] = [];
  beforeAll(() => {
    template = mkdtempSync(join(tmpdir(), 'jg-appraise-swtpm-'));
    manufactureSwtpm(template, { pcrBanks: ['sha1', 'sha256'] });
  });
  afterAll(async () => {
    for (const s of sims) await s.close();
    rmSync(template, { recursive: true, force: true });
  });

  for (const tee of ['snp', 'tdx'] as const) {
    describe(tee, () => {
      let sim: SimCvm;
      beforeAll(async () => {
        sim = await createSimCvm({ tee, vtpm: 'swtpm', swtpmTemplateDir: template, nodeName: `swtpm-${tee}` });
        sims.push(sim);
      });

      it('a good bundle passes every check, the quoted PCRs equal the replayed event log', async () => {
        expect(sim.vtpm.kind).toBe('swtpm');
        const o = await appraiseEvidence(await sim.evidence(), ctxFor(sim));
        expect(failedChecks(o)).toEqual([]);
        for (const n of [...CHAIN, `${tee}.hardware`]) expect(outcomeOf(o, n), n).toBe('pass');
        expect(outcomeOf(o, 'policy.tpm.pcrs.sha256.4')).toBe('pass');
        expect(o.appraisal.verdict).toBe('pass');
      });

      it('a PCR value changed after the quote fails tpm.quote', async () => {
        const o = await appraiseEvidence(await sim.evidence({ tamper: { pcr: { index: 4, value: '00'.repeat(32) } } }), ctxFor(sim));
        expect(chainFailures(o)).toEqual(['tpm.quote:TPM_QUOTE_PCR_DIGEST_MISMATCH']);
      });

      it('an event log that differs from what was extended fails eventlog.replay', async () => {
        const o = await appraiseEvidence(await sim.evidence({ tamper: { eventLog: 'bootAppDigest' } }), ctxFor(sim));
        expect(chainFailures(o)).toEqual(['eventlog.replay:APPRAISE_EVENTLOG_PCR_MISMATCH']);
      });

      it('extraData other than SHA-256(d) fails binding.tpmExtraData', async () => {
        const o = await appraiseEvidence(await sim.evidence({ tamper: { extraData: new Uint8Array(32) } }), ctxFor(sim));
        expect(chainFailures(o)).toEqual(['binding.tpmExtraData:APPRAISE_TPM_EXTRA_DATA_MISMATCH']);
      });
    });
  }
});
