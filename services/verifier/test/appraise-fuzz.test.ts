import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Evidence } from '@joinguard/protocol';
import { createSimCvm, type SimCvm } from '@joinguard/simcvm';
import { appraiseEvidence, type AppraisalContext } from '../src/appraise/index.js';
import { ctxFor } from './appraise-helpers.js';

// Hostile bundles: byte flips and truncations of every binary field, and arbitrary JSON in every slot.
// The engine must always answer with a failed appraisal (never throw, never pass).

type Field = 'report' | 'quote' | 'signature' | 'akPublic' | 'eventLog';
const FIELDS: Field[] = ['report', 'quote', 'signature', 'akPublic', 'eventLog'];

function get(ev: Evidence, f: Field): string {
  return f === 'report' ? ev.hardware.report : f === 'eventLog' ? ev.eventLog : ev.tpm[f];
}
function set(ev: Evidence, f: Field, v: string): Evidence {
  const c = structuredClone(ev);
  if (f === 'report') c.hardware.report = v;
  else if (f === 'eventLog') c.eventLog = v;
  else c.tpm[f] = v;
  return c;
}

describe('appraisal of mutated evidence', () => {
  let sim: SimCvm;
  let ev: Evidence;
  let ctx: AppraisalContext;
  beforeAll(async () => {
    sim = await createSimCvm({ tee: 'snp', vtpm: 'software' });
    ev = await sim.evidence();
    ctx = ctxFor(sim);
    expect((await appraiseEvidence(ev, ctx)).appraisal.verdict).toBe('pass');
  });
  afterAll(() => sim?.close());

  it('a flipped byte anywhere in a binary field fails the appraisal', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...FIELDS), fc.nat(), fc.integer({ min: 1, max: 255 }), async (f, pos, x) => {
        const bytes = Buffer.from(get(ev, f), 'base64');
        const i = pos % bytes.length;
        bytes[i]! ^= x;
        const o = await appraiseEvidence(set(ev, f, bytes.toString('base64')), ctx);
        // Bytes no signature or digest covers may change without effect: the SNP report's reserved area after
        // the signature (0x330..0x49F, outside the signed 0x000..0x29F), and event-log bytes such as the device
        // path of an image-load event (its digest is the image's). Everything else must fail.
        const unsigned = (f === 'report' && i >= 0x330) || f === 'eventLog';
        if (!unsigned) expect(o.appraisal.verdict).toBe('fail');
        expect(o.appraisal.checks.length).toBeGreaterThan(0);
      }),
      { numRuns: 150 },
    );
  });

  it('a truncated binary field fails the appraisal', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...FIELDS), fc.nat(), async (f, cut) => {
        const bytes = Buffer.from(get(ev, f), 'base64');
        const n = 1 + (cut % (bytes.length - 1));
        const o = await appraiseEvidence(set(ev, f, bytes.subarray(0, n).toString('base64')), ctx);
        expect(o.appraisal.verdict).toBe('fail');
      }),
      { numRuns: 80 },
    );
  });

  it('arbitrary JSON in any slot never throws', async () => {
    const paths: string[][] = [['nonce'], ['tee'], ['runtimeData'], ['runtimeData', 'teeKey'], ['runtimeData', 'nodeName'], ['hardware'], ['hardware', 'certs'], ['hardware', 'certs', 'vcek'], ['tpm', 'pcrs'], ['tpm', 'pcrs', 'sha256'], ['tpm'], ['eventLog']];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...paths), fc.jsonValue({ maxDepth: 3 }), async (path, value) => {
        const c = structuredClone(ev) as unknown as Record<string, unknown>;
        let o = c;
        for (const k of path.slice(0, -1)) o = o[k] as Record<string, unknown>;
        o[path[path.length - 1]!] = value;
        const out = await appraiseEvidence(c as unknown as Evidence, ctx);
        expect(['pass', 'fail']).toContain(out.appraisal.verdict);
        expect(out.appraisal.verdict).toBe('fail');
      }),
      { numRuns: 120 },
    );
  });
});
