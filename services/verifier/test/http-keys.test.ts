import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attest, fetcher, records, releaseKey, simHarness, type Fetch, type SimHarness } from './support/sim-verifier.js';

// Key-release refusals over HTTP that http-flow does not cover: an attestation that names no machine, and a
// node whose latest appraisal failed after the (still unexpired, passing) result it presents. Each refusal is
// a 403 with its code and a key-release record with verdict fail, naming the code and the appraisal.

let h: SimHarness;
let f: Fetch;

beforeAll(async () => {
  h = await simHarness({ nodeName: 'keys-node-0' });
  f = fetcher(h.v.url);
});
afterAll(async () => {
  await h?.close();
});

async function lastKeyRelease(node: string) {
  const list = await records(f, `node=${node}&kind=key-release`);
  expect(list.length).toBeGreaterThan(0);
  return list.reduce((a, b) => (b.record.seq > a.record.seq ? b : a)).record;
}

describe('key release refusals', () => {
  it('refuses an attestation without runtimeData.machine with KEYS_UNKNOWN_MACHINE, and records it', async () => {
    const name = 'no-machine-0';
    const a = await attest(f, h.sim, { runtimeData: { nodeName: name, purpose: 'unlock' } });
    expect(a.status).toBe(200);
    expect(a.body.appraisal.verdict).toBe('pass');
    expect(a.body.appraisal.node).toBe(name);

    const k = await releaseKey(f, name, a.body.result);
    expect(k.status).toBe(403);
    expect(k.body.code).toBe('KEYS_UNKNOWN_MACHINE');
    expect((k.body as { jwe?: string }).jwe).toBeUndefined();

    const rec = await lastKeyRelease(name);
    expect(rec).toMatchObject({ kind: 'key-release', log: 'key-releases', node: name, verdict: 'fail', body: { outcome: 'refused', code: 'KEYS_UNKNOWN_MACHINE', appraisalId: a.body.recordId } });
  });

  it('refuses the old passing result of a node that failed since, with KEYS_NODE_FAILING, and records it', async () => {
    const name = 'later-failing-0';
    const machine = 'later-failing-0-machine';
    const good = await attest(f, h.sim, { runtimeData: { nodeName: name, machine, purpose: 'unlock' } });
    expect(good.status).toBe(200);
    expect(good.body.appraisal.verdict).toBe('pass');
    // The passing result works while it is the latest word on the node.
    const first = await releaseKey(f, name, good.body.result);
    expect(first.status).toBe(200);
    expect(first.body.jwe).toMatch(/^[\w-]+\.[\w-]*\.[\w-]+\.[\w-]+\.[\w-]+$/);

    // The same node attests again with evidence whose reported PCR was changed after the quote.
    const bad = await attest(f, h.sim, { runtimeData: { nodeName: name, machine, purpose: 'unlock' }, tamper: { pcr: { index: 7, value: 'cd'.repeat(32) } } });
    expect(bad.status).toBe(200);
    expect(bad.body.appraisal.verdict).toBe('fail');

    const k = await releaseKey(f, name, good.body.result);
    expect(k.status).toBe(403);
    expect(k.body.code).toBe('KEYS_NODE_FAILING');
    expect(k.body.details).toMatchObject({ lastRecordId: bad.body.recordId });

    const rec = await lastKeyRelease(name);
    expect(rec).toMatchObject({ kind: 'key-release', node: name, verdict: 'fail', body: { outcome: 'refused', code: 'KEYS_NODE_FAILING', appraisalId: good.body.recordId } });
    // The earlier release is a record too, with verdict pass.
    const all = await records(f, `node=${name}&kind=key-release`);
    expect(all.map((r) => [r.record.verdict, r.record.body.outcome])).toEqual([
      ['pass', 'released'],
      ['fail', 'refused'],
    ]);
    // Only refusals are found when filtering by verdict fail.
    const failed = await records(f, `node=${name}&kind=key-release&verdict=fail`);
    expect(failed.map((r) => r.record.body.code)).toEqual(['KEYS_NODE_FAILING']);

    // Passing again lifts the refusal for the new result.
    const again = await attest(f, h.sim, { runtimeData: { nodeName: name, machine, purpose: 'unlock' } });
    expect(again.body.appraisal.verdict).toBe('pass');
    expect((await releaseKey(f, name, again.body.result)).status).toBe(200);
  });
});
