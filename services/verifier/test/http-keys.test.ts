import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSimCvm, type SimCvm } from '@joinguard/simcvm';
import { signResult } from '@joinguard/protocol';
import { uuidV7 } from '@joinguard/core';
import { AUDITOR_TOKEN, attest, challenge, fetcher, records, releaseKey, simHarness, type Fetch, type SimHarness } from './support/sim-verifier.js';

// Key-release refusals over HTTP that http-flow does not cover: an attestation that names no machine, and a
// node whose latest appraisal failed after the (still unexpired, passing) result it presents. Each refusal is
// a 403 with its code and a key-release record with verdict fail, naming the code and the appraisal.
// And the other side of that rule: evidence that does not verify (anyone can send it, naming any node) is
// recorded as a failed appraisal but does not make the node it names a failing one.

let h: SimHarness;
let f: Fetch;
/** The same hardware and PKI as h.sim, booted with another launch measurement: genuine evidence the policy refuses. */
let drifted: SimCvm;

beforeAll(async () => {
  h = await simHarness({ nodeName: 'keys-node-0' });
  f = fetcher(h.v.url);
  drifted = await createSimCvm({ tee: 'snp', nodeName: 'keys-node-0', vtpm: 'software', pkiFrom: h.sim, snp: { measurement: new Uint8Array(48).fill(0xcd) } });
});
afterAll(async () => {
  await drifted?.close();
  await h?.close();
});

async function nodeState(name: string): Promise<Record<string, unknown> | undefined> {
  const r = await f('/v1/nodes', { headers: { authorization: `Bearer ${AUDITOR_TOKEN}` } });
  expect(r.status).toBe(200);
  const j = (await r.json()) as { nodes: ({ name: string } & Record<string, unknown>)[] };
  return j.nodes.find((n) => n.name === name);
}

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

    // The same node attests again with genuine evidence of a launch measurement the policy does not allow.
    const bad = await attest(f, drifted, { runtimeData: { nodeName: name, machine, purpose: 'unlock' } });
    expect(bad.status).toBe(200);
    expect(bad.body.appraisal.verdict).toBe('fail');
    expect(bad.body.appraisal.checks.filter((c) => c.outcome === 'fail').map((c) => c.name)).toEqual(['policy.snp.measurement']);

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

  it('evidence that does not verify, sent by anyone and naming a node, is recorded but leaves the node as it was', async () => {
    const name = 'victim-0';
    const machine = 'victim-0-machine';
    const good = await attest(f, h.sim, { runtimeData: { nodeName: name, machine, purpose: 'unlock' } });
    expect(good.body.appraisal.verdict).toBe('pass');
    const before = await nodeState(name);
    expect(before).toMatchObject({ lastVerdict: 'pass', lastRecordId: good.body.recordId, machine });

    // Three kinds of junk naming the victim: an unreadable AK, a PCR changed after the quote, and runtimeData
    // changed after it was bound (another machine). Each is answered and recorded as a failed appraisal.
    const junk: { recordId: string }[] = [];
    const { nonce } = await challenge(f);
    const unreadable = await h.sim.evidence({ nonce, runtimeData: { nodeName: name, machine: 'evil', purpose: 'unlock' } });
    unreadable.tpm.akPublic = 'A';
    const r1 = await f('/v1/attest', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(unreadable) });
    expect(r1.status).toBe(200);
    junk.push((await r1.json()) as { recordId: string });
    for (const tamper of [{ pcr: { index: 7, value: 'cd'.repeat(32) } }, { runtimeDataAfterBinding: { machine: 'evil' } }]) {
      const r = await attest(f, h.sim, { runtimeData: { nodeName: name, machine, purpose: 'unlock' }, tamper });
      expect(r.status).toBe(200);
      expect(r.body.appraisal.verdict).toBe('fail');
      junk.push(r.body);
    }
    for (const j of junk) expect((await h.v.store.get(j.recordId))?.record).toMatchObject({ kind: 'appraisal', node: name, verdict: 'fail' });

    expect(await nodeState(name)).toEqual(before);
    const k = await releaseKey(f, name, good.body.result);
    expect(k.status).toBe(200);
    expect(k.body.jwe).toMatch(/^[\w-]+\.[\w-]*\.[\w-]+\.[\w-]+\.[\w-]+$/);

    // Genuine evidence the policy refuses is the node's own failure, and does move it.
    const bad = await attest(f, drifted, { runtimeData: { nodeName: name, machine, purpose: 'unlock' } });
    expect(bad.body.appraisal.verdict).toBe('fail');
    expect(await nodeState(name)).toMatchObject({ lastVerdict: 'fail', lastRecordId: bad.body.recordId, machine });
    expect((await releaseKey(f, name, good.body.result)).body.code).toBe('KEYS_NODE_FAILING');
  });

  it('takes a request without a body as one with {}: released, or refused and recorded', async () => {
    const name = 'no-body-0';
    const a = await attest(f, h.sim, { runtimeData: { nodeName: name, machine: `${name}-machine`, purpose: 'unlock' } });
    expect(a.body.appraisal.verdict).toBe('pass');
    const bare = (authorization?: string) => f(`/v1/keys/disk/${name}`, { method: 'POST', headers: authorization ? { authorization } : {} });
    const ok = await bare(`Bearer ${a.body.result}`);
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { epoch: number; jwe: string }).epoch).toBe(0);
    const no = await bare();
    expect(no.status).toBe(401);
    expect(((await no.json()) as { code: string }).code).toBe('KEYS_NO_RESULT');
    const recs = await records(f, `node=${name}&kind=key-release`);
    expect(recs.map((r) => [r.record.verdict, r.record.body.outcome, r.record.body.code])).toEqual([
      ['pass', 'released', undefined],
      ['fail', 'refused', 'KEYS_NO_RESULT'],
    ]);
  });

  it('refuses an epoch ahead of the current one (KEYS_BAD_EPOCH) and a result with no appraisal record behind it (KEYS_UNKNOWN_RESULT)', async () => {
    const name = 'epoch-0';
    const a = await attest(f, h.sim, { runtimeData: { nodeName: name, machine: `${name}-machine`, purpose: 'unlock' } });
    const ahead = await releaseKey(f, name, a.body.result, { epoch: 1 });
    expect(ahead.status).toBe(403);
    expect(ahead.body.code).toBe('KEYS_BAD_EPOCH');
    expect(await lastKeyRelease(name)).toMatchObject({ verdict: 'fail', body: { code: 'KEYS_BAD_EPOCH', appraisalId: a.body.recordId } });

    // Signed with the verifier's own key (as a result whose record was lost would be), naming no record.
    const key = h.v.keys.active;
    const iat = Math.floor(Date.now() / 1000);
    const jti = uuidV7(Date.now());
    const claims = (await import('jose')).decodeJwt(a.body.result) as Parameters<typeof signResult>[0];
    const orphan = await signResult({ ...claims, jti, iat, exp: iat + 60 }, key.privateKey, key.kid, { alg: key.alg });
    const k = await releaseKey(f, name, orphan);
    expect(k.status).toBe(403);
    expect(k.body.code).toBe('KEYS_UNKNOWN_RESULT');
    expect(await lastKeyRelease(name)).toMatchObject({ verdict: 'fail', body: { code: 'KEYS_UNKNOWN_RESULT', appraisalId: jti } });
  });
});

describe('a verifier with the key broker switched off', () => {
  let off: SimHarness;
  beforeAll(async () => {
    off = await simHarness({ nodeName: 'keys-off-0', edit: (c) => ({ ...c, keyBroker: { ...c.keyBroker, enabled: false } }) });
  });
  afterAll(async () => {
    await off?.close();
  });

  it('still appraises, but refuses every key request with KEYS_DISABLED and records the refusal', async () => {
    const g = fetcher(off.v.url);
    const a = await attest(g, off.sim, { runtimeData: { nodeName: 'keys-off-0', machine: 'm-0', purpose: 'unlock' } });
    expect(a.body.appraisal.verdict).toBe('pass');
    const k = await releaseKey(g, 'keys-off-0', a.body.result);
    expect(k.status).toBe(403);
    expect(k.body.code).toBe('KEYS_DISABLED');
    const recs = await records(g, 'node=keys-off-0&kind=key-release');
    expect(recs.map((r) => r.record.body.code)).toEqual(['KEYS_DISABLED']);
  });
});
