import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSimCvm } from '@joinguard/simcvm';
import { decodeJwt } from 'jose';
import { challenge, fetcher, records, releaseKey, simHarness, type Fetch, type SimHarness } from './support/sim-verifier.js';
import { appraiseEvidence, defaultTrust } from '../src/appraise/index.js';

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

describe('POST /v1/attest bodies must be recordable', () => {
  it('refuses a string that is not well-formed Unicode (a lone surrogate from a JSON escape) as bad input, before using the nonce', async () => {
    const { nonce } = await challenge(f);
    const evidence = (await h.sim.evidence({ nonce, runtimeData: { nodeName: node, purpose: 'join' } })) as unknown as { runtimeData: Record<string, unknown> };
    const text = JSON.stringify({ ...evidence, runtimeData: { ...evidence.runtimeData, providerId: 'PROVIDER' } }).replace('"PROVIDER"', '"azure:///x\\ud800"');
    const before = (await records(f, `kind=appraisal&node=${node}`)).length;
    const r = await f('/v1/attest', { method: 'POST', headers: { 'content-type': 'application/json' }, body: text });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { code?: string }).code).toBe('REQUEST_INVALID');
    expect((await records(f, `kind=appraisal&node=${node}`)).length).toBe(before);
    // The nonce is still unused.
    const ok = await f('/v1/attest', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(evidence) });
    expect(ok.status).toBe(200);
  });

  it('records an appraisal whose event log holds UTF-16 text with a lone surrogate, with U+FFFD in its place', async () => {
    // The same PKI, so the report verifies; the boot's shim path ends in an unpaired high surrogate.
    const odd = await createSimCvm({ tee: 'snp', nodeName: node, vtpm: 'software', pkiFrom: h.sim, boot: { bootApps: [{ ...h.sim.boot.bootApps[0]!, path: '\\EFI\\x\ud800.efi' }, ...h.sim.boot.bootApps.slice(1)] } });
    try {
      const { nonce } = await challenge(f);
      const evidence = await odd.evidence({ nonce, runtimeData: { nodeName: node, purpose: 'join' } });
      const r = await f('/v1/attest', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(evidence) });
      const body = (await r.json()) as { recordId?: string; appraisal?: { verdict: string } };
      expect(r.status, JSON.stringify(body).slice(0, 300)).toBe(200);
      const stored = (await records(f, `kind=appraisal&node=${node}`)).find((x) => x.record.id === body.recordId)!;
      expect(stored.record.verdict).toBe(body.appraisal!.verdict);
      // Records keep no claims (they are derived again from the evidence); the engine's, for this log, name the
      // boot application with U+FFFD for the lone surrogate.
      expect(stored.record.body).not.toHaveProperty('claims');
      const again = await appraiseEvidence(evidence, { now: new Date(stored.record.time), policy: h.sim.goodPolicy(), policyRef: { id: 'p', digest: 'd' }, trust: defaultTrust({ snpTestRootsPem: h.sim.trust.snpRootsPem }) });
      expect(again.claims!.boot!.bootApps[0]!.path).toContain('x\ufffd.efi');
    } finally {
      await odd.close();
    }
  });
});

describe('POST /v1/attest with evidence that cannot be decoded', () => {
  const send = async (evidence: unknown) => {
    const r = await f('/v1/attest', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(evidence) });
    return { status: r.status, body: (await r.json()) as { result?: string; recordId?: string; code?: string; appraisal?: { verdict: string; checks: { name: string; outcome: string; code?: string }[] } } };
  };

  it('answers a failed appraisal whose result names no teeKey, and records it under the id the reply names', async () => {
    const { nonce } = await challenge(f);
    const evidence = (await h.sim.evidence({ nonce, runtimeData: { nodeName: node, purpose: 'join' } })) as unknown as { tpm: Record<string, unknown> };
    // An AK public area of one base64 character: nothing of the vTPM quote, and so no binding, can be checked.
    const r = await send({ ...evidence, tpm: { ...evidence.tpm, akPublic: 'A' } });
    expect(r.status, JSON.stringify(r.body).slice(0, 300)).toBe(200);
    expect(r.body.appraisal!.verdict).toBe('fail');
    const claims = decodeJwt(r.body.result!) as { verdict: string; jti: string; bindings: Record<string, unknown> };
    expect(claims.verdict).toBe('fail');
    expect(claims.jti).toBe(r.body.recordId);
    expect(claims.bindings).not.toHaveProperty('teeKeyThumbprint');
    const stored = (await records(f, `kind=appraisal&node=${node}`)).find((x) => x.record.id === r.body.recordId);
    expect(stored?.record.verdict).toBe('fail');
    // Such a result opens nothing.
    const key = await releaseKey(f, 'root', r.body.result);
    expect(key.status).toBe(403);
  });

  it('fails a certificate whose PEM text holds a character that is not base64, instead of decoding around it', async () => {
    const { nonce } = await challenge(f);
    const evidence = (await h.sim.evidence({ nonce, runtimeData: { nodeName: node, purpose: 'join' } })) as unknown as { hardware: { report: string; certs: Record<string, string> } };
    const [name, pem] = Object.entries(evidence.hardware.certs).find(([, v]) => v.includes('-----BEGIN'))!;
    const at = pem.indexOf('\n', pem.indexOf('-----BEGIN') + 30) + 5;
    const r = await send({ ...evidence, hardware: { ...evidence.hardware, certs: { ...evidence.hardware.certs, [name]: pem.slice(0, at) + '!' + pem.slice(at) } } });
    expect(r.status, JSON.stringify(r.body).slice(0, 300)).toBe(200);
    expect(r.body.appraisal!.verdict).toBe('fail');
    expect(r.body.appraisal!.checks.find((c) => c.outcome === 'fail')?.code).toBe('APPRAISE_BAD_CERT_ENCODING');
  });
});
