import Ajv from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attestResponseSchema, errorReplySchema } from '@joinguard/protocol';
import { attest, type SimHarness, simHarness } from './support/sim-verifier.js';

/*
 * What reaches an attester from /v1/attest is exactly what attestResponseSchema (and so the OpenAPI document)
 * describes, for every verdict and every tee, and a refusal has the error reply's shape.
 */
const ajv = new Ajv({ strict: false, allErrors: true });
const validReply = ajv.compile(attestResponseSchema);
const validError = ajv.compile(errorReplySchema);

describe.each(['snp', 'tdx'] as const)('the /v1/attest reply (%s)', (tee) => {
  let h: SimHarness;
  const f = (path: string, init?: RequestInit) => fetch(`${h.v.url}${path}`, init);
  beforeAll(async () => {
    h = await simHarness({ tee });
  });
  afterAll(async () => h.close());

  it('matches attestResponseSchema when the node passes', async () => {
    const r = await attest(f, h.sim);
    expect(r.status).toBe(200);
    expect(validReply(r.body), JSON.stringify(validReply.errors)).toBe(true);
    expect(r.body.appraisal.verdict).toBe('pass');
    expect(r.body.appraisal.checks.length).toBeGreaterThan(20);
  });

  it('matches attestResponseSchema when the node fails, with the failed checks as the engine gave them', async () => {
    const r = await attest(f, h.sim, { tamper: { pcr: { index: 4, value: 'ab'.repeat(32) } } });
    expect(r.status).toBe(200);
    expect(validReply(r.body), JSON.stringify(validReply.errors)).toBe(true);
    expect(r.body.appraisal.verdict).toBe('fail');
    const failed = r.body.appraisal.checks.filter((c) => c.outcome === 'fail');
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((c) => typeof c.code === 'string' && typeof c.message === 'string')).toBe(true);
  });

  it('answers a refusal with the error reply shape', async () => {
    const { nonce } = (await (await f('/v1/challenge')).json()) as { nonce: string };
    const evidence = await h.sim.evidence({ nonce });
    const post = () => f('/v1/attest', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(evidence) });
    expect((await post()).status).toBe(200);
    const again = await post();
    const body = (await again.json()) as { code: string };
    expect(again.status).toBeGreaterThanOrEqual(400);
    expect(body.code).toBe('PROTOCOL_NONCE_REPLAYED');
    expect(validError(body), JSON.stringify(validError.errors)).toBe(true);
  });
});
