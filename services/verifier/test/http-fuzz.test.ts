import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fuzzVerifier } from './support/http-fuzz.js';
import { type SimHarness, simHarness } from './support/sim-verifier.js';

// Hostile requests over HTTP to a whole verifier (body parser, schemas, handlers, store, reply serializers):
// never a 5xx or a hang, refusals in the error reply's shape, no altered evidence or result passing, and a
// store whose chains verify afterwards with one record per appraisal answered. scripts/fuzz-http.ts runs the
// same for longer.
describe.each(['snp', 'tdx'] as const)('hostile requests to a verifier (%s)', (tee) => {
  let h: SimHarness;
  beforeAll(async () => {
    h = await simHarness({ tee, edit: (c) => ({ ...c, rateLimit: { attestPerMinute: 1_000_000 } }) });
  });
  afterAll(async () => h?.close());

  it('every answer keeps the invariants', async () => {
    const t = await fuzzVerifier(h, 200, 0x5eed + (tee === 'tdx' ? 1 : 0));
    expect(t.problems).toEqual([]);
    expect(t.inputs).toBe(200);
    // The mutations reach past the body parser: some bundles are appraised (and fail), others refused.
    expect(t.outcomes.fail ?? 0).toBeGreaterThan(10);
    expect(Object.keys(t.statuses).filter((s) => s.startsWith('4')).length).toBeGreaterThan(1);
  }, 120_000);
});
