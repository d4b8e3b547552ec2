import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { challenge, fetcher, records, simHarness, type Fetch, type SimHarness } from './support/sim-verifier.js';

// Request bodies are taken exactly as sent: the edge validates them without type coercion, so what the verifier
// appraises, hashes and stores is byte for byte what the attester posted.

let h: SimHarness;
let f: Fetch;
const node = 'body-node-0';

beforeAll(async () => {
  h = await simHarness({ nodeName: node });
  f = fetcher(h.v.url);
});
afterAll(async () => {
  await h?.close();
});

async function post(evidence: unknown): Promise<{ status: number; code?: string }> {
  const r = await f('/v1/attest', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(evidence) });
  return { status: r.status, code: ((await r.json()) as { code?: string }).code };
}

describe('POST /v1/attest bodies are not coerced', () => {
  it('refuses a one-element array where the schema has a string, although its sole element is the bound value', async () => {
    const { nonce } = await challenge(f);
    const evidence = (await h.sim.evidence({ nonce, runtimeData: { nodeName: node, purpose: 'join' } })) as unknown as { runtimeData: Record<string, unknown>; tee: unknown };
    // With array coercion ['join'] would become 'join', the very value the hardware report binds, and pass.
    expect(await post({ ...evidence, runtimeData: { ...evidence.runtimeData, purpose: ['join'] } })).toEqual({ status: 400, code: 'REQUEST_INVALID' });
    expect(await post({ ...evidence, tee: ['snp'] })).toEqual({ status: 400, code: 'REQUEST_INVALID' });
    // The nonce is still unused: the same evidence as the attester made it passes.
    const ok = await f('/v1/attest', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(evidence) });
    expect(ok.status).toBe(200);
    const stored = (await records(f, `kind=appraisal&node=${node}`))[0]!;
    expect((stored.record.body as { runtimeData: { purpose: unknown } }).runtimeData.purpose).toBe('join');
  });

  it('still coerces query strings to their schema types', async () => {
    const r = await f('/v1/records?limit=1&kind=appraisal', { headers: { authorization: 'Bearer sim-auditor-token-0123456789abcdef' } });
    expect(r.status).toBe(200);
    expect(((await r.json()) as { records: unknown[] }).records).toHaveLength(1);
  });
});
