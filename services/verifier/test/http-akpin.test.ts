import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createSimCvm, type SimCvm } from '@joinguard/simcvm';
import type { AttestResponse, Check, NodeState, SignedRecord } from '@joinguard/protocol';
import { ADMIN_TOKEN, AUDITOR_TOKEN, attest, fetcher, records, releaseKey, simHarness, type Fetch, type SimHarness } from './support/sim-verifier.js';

/*
 * tpm.pinAk over HTTP: a node's first pass pins its vTPM AK; a second simulated CVM (same signer, same image,
 * its own vTPM) that claims the node's name is the CVM the threat model describes, and must fail with the
 * pinned and the presented AK named, and get no key; an admin's unpin lets the next AK be pinned.
 */

const akOf = (sim: SimCvm) => createHash('sha256').update(sim.vtpm.akPublic).digest('hex');
const pinCheck = (a: { appraisal: { checks: Check[] } }) => a.appraisal.checks.find((c) => c.name === 'policy.tpm.akPinned');
const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
const auditor = { authorization: `Bearer ${AUDITOR_TOKEN}` };

async function node(f: Fetch, name: string): Promise<NodeState | undefined> {
  const r = await f('/v1/nodes', { headers: auditor });
  expect(r.status).toBe(200);
  return ((await r.json()) as { nodes: NodeState[] }).nodes.find((n) => n.name === name);
}

function unpin(f: Fetch, name: string, body: Record<string, unknown>, headers: Record<string, string> = admin) {
  return f(`/v1/nodes/${name}/unpin`, { method: 'POST', headers, body: JSON.stringify(body) });
}

/** A passing appraisal of `sim` as node `name`, with a machine (disk keys need one). */
async function passes(f: Fetch, sim: SimCvm, name: string): Promise<AttestResponse> {
  const a = await attest(f, sim, { runtimeData: { nodeName: name, machine: `${name}-machine` } });
  expect(a.status).toBe(200);
  expect(a.body.appraisal.verdict, JSON.stringify(a.body.appraisal.checks.filter((c) => c.outcome === 'fail'))).toBe('pass');
  return a.body;
}

describe('tpm.pinAk: a node pinned to its first vTPM AK', () => {
  let h: SimHarness;
  let f: Fetch;
  /** another simulated CVM: the same trusted signer and boot, another vTPM and so another AK */
  let other: SimCvm;
  let third: SimCvm;

  beforeAll(async () => {
    h = await simHarness({ pinAk: true });
    f = fetcher(h.v.url);
    other = await createSimCvm({ tee: 'snp', vtpm: 'software', nodeName: h.sim.nodeName, pkiFrom: h.sim });
    third = await createSimCvm({ tee: 'snp', vtpm: 'software', nodeName: h.sim.nodeName, pkiFrom: h.sim });
    expect(akOf(other)).not.toBe(akOf(h.sim));
  });
  afterAll(async () => {
    await other?.close();
    await third?.close();
    await h?.close();
  });

  it('pins the AK of the first pass, keeps passing it, and refuses another AK with both named, and its key', async () => {
    const name = 'pinned-0';
    const first = await passes(f, h.sim, name);
    expect(pinCheck(first)).toMatchObject({ outcome: 'pass', actual: akOf(h.sim) });
    expect(pinCheck(first)).not.toHaveProperty('expected');
    expect(await node(f, name)).toMatchObject({ pinnedAkSha256: akOf(h.sim), pinnedAkRecordId: first.recordId, lastVerdict: 'pass' });

    const second = await passes(f, h.sim, name);
    expect(pinCheck(second)).toMatchObject({ outcome: 'pass', expected: akOf(h.sim), actual: akOf(h.sim) });
    expect((await releaseKey(f, name, second.result)).status).toBe(200);

    // Another CVM running the approved image claims the node's name.
    const impostor = await attest(f, other, { runtimeData: { nodeName: name, machine: `${name}-machine` } });
    expect(impostor.body.appraisal.verdict).toBe('fail');
    const failed = impostor.body.appraisal.checks.filter((c) => c.outcome === 'fail');
    expect(failed).toEqual([expect.objectContaining({ name: 'policy.tpm.akPinned', code: 'POLICY_AK_PIN_MISMATCH', expected: akOf(h.sim), actual: akOf(other) })]);
    // Everything before the policy verified: the evidence is a real CVM's, only the pin broke.
    expect(impostor.body.appraisal.checks.filter((c) => !c.name.startsWith('policy')).every((c) => c.outcome === 'pass')).toBe(true);
    // The signed record says the same, and the pin is unchanged.
    const [rec] = (await records(f, `node=${name}&kind=appraisal`)).filter((r) => r.record.id === impostor.body.recordId);
    expect((rec!.record.body.checks as Check[]).find((c) => c.name === 'policy.tpm.akPinned')).toMatchObject({ outcome: 'fail', expected: akOf(h.sim), actual: akOf(other) });
    expect(await node(f, name)).toMatchObject({ pinnedAkSha256: akOf(h.sim), lastVerdict: 'fail', lastRecordId: impostor.body.recordId });

    const k = await releaseKey(f, name, impostor.body.result);
    expect(k.status).toBe(403);
    expect(k.body.code).toBe('KEYS_RESULT_FAILED');
    // As for any node whose verified evidence failed: the earlier pass gets no key until the node passes again.
    expect((await releaseKey(f, name, second.result)).body.code).toBe('KEYS_NODE_FAILING');
    const again = await passes(f, h.sim, name);
    expect((await releaseKey(f, name, again.result)).status).toBe(200);
  });

  it('unpins on an admin\'s request, with a record, and the next pass pins the new AK; the old AK\'s result gets no key', async () => {
    const name = 'replaced-0';
    const old = await passes(f, h.sim, name);
    expect((await attest(f, other, { runtimeData: { nodeName: name } })).body.appraisal.verdict).toBe('fail');
    await passes(f, h.sim, name);

    expect((await unpin(f, name, { reason: 'x' }, { 'content-type': 'application/json' })).status).toBe(401);
    expect((await unpin(f, name, { reason: 'x' }, { ...auditor, 'content-type': 'application/json' })).status).toBe(403);
    expect((await unpin(f, name, {})).status).toBe(400);
    const stale = await unpin(f, name, { reason: 'machine replaced', akPublicSha256: akOf(other) });
    expect(stale.status).toBe(400);
    expect(((await stale.json()) as { code: string }).code).toBe('NODE_PIN_CHANGED');
    expect((await node(f, name))?.pinnedAkSha256).toBe(akOf(h.sim));

    const r = await unpin(f, name, { reason: 'machine replaced', akPublicSha256: akOf(h.sim) });
    expect(r.status).toBe(200);
    const state = (await r.json()) as NodeState;
    expect(state).toEqual(await node(f, name));
    expect(state).not.toHaveProperty('pinnedAkSha256');
    expect(state).not.toHaveProperty('pinnedAkAt');
    expect(state.lastVerdict).toBe('pass');
    const unpins = await records(f, `node=${name}&kind=ak-unpin`);
    expect(unpins.map((x: SignedRecord) => x.record)).toEqual([
      expect.objectContaining({ kind: 'ak-unpin', log: 'ak-pins', node: name, body: expect.objectContaining({ reason: 'machine replaced', by: 'ops', akPublicSha256: akOf(h.sim), pinnedByRecord: old.recordId }) }),
    ]);
    const nothing = await unpin(f, name, { reason: 'again' });
    expect(nothing.status).toBe(400);
    expect(((await nothing.json()) as { code: string }).code).toBe('NODE_NOT_PINNED');
    expect((await unpin(f, 'never-seen-0', { reason: 'x' })).status).toBe(404);

    // The replacement machine passes and is pinned; the old AK now fails, and its earlier result gets no key.
    const fresh = await passes(f, other, name);
    expect(pinCheck(fresh)).toMatchObject({ outcome: 'pass', actual: akOf(other) });
    expect(await node(f, name)).toMatchObject({ pinnedAkSha256: akOf(other), pinnedAkRecordId: fresh.recordId });
    expect((await releaseKey(f, name, fresh.result)).status).toBe(200);
    const oldAgain = await passesOrFails(f, h.sim, name);
    expect(pinCheck(oldAgain)).toMatchObject({ outcome: 'fail', expected: akOf(other), actual: akOf(h.sim) });
  });

  it('gives no key to a passing result of an AK the node is no longer pinned to', async () => {
    const name = 'repinned-0';
    const old = await passes(f, h.sim, name);
    expect((await unpin(f, name, { reason: 'machine replaced' })).status).toBe(200);
    const refused = await releaseKey(f, name, old.result);
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ code: 'KEYS_AK_NOT_PINNED', details: { expected: null, actual: akOf(h.sim) } });
    await passes(f, other, name);
    // The node's last appraisal passed (the new machine's): only the pin tells the old result apart.
    const wrong = await releaseKey(f, name, old.result);
    expect(wrong.body).toMatchObject({ code: 'KEYS_AK_NOT_PINNED', details: { expected: akOf(other), actual: akOf(h.sim) } });
  });

  it('pins exactly one AK when two first appraisals with different AKs race', async () => {
    const name = 'raced-0';
    // Both appraisals read the node's state before either pins: the reads wait for each other.
    const original = h.v.store.getNode.bind(h.v.store);
    let waiting: Array<() => void> = [];
    let reads = 0;
    const spy = vi.spyOn(h.v.store, 'getNode').mockImplementation(async (n: string) => {
      const state = await original(n);
      if (n === name && reads < 2) {
        reads++;
        await new Promise<void>((resolve) => {
          waiting.push(resolve);
          if (waiting.length === 2) {
            for (const w of waiting) w();
            waiting = [];
          }
        });
      }
      return state;
    });
    let results: Awaited<ReturnType<typeof attest>>[];
    try {
      results = await Promise.all([other, third].map((sim) => attest(f, sim, { runtimeData: { nodeName: name, machine: `${name}-machine` } })));
    } finally {
      spy.mockRestore();
    }
    expect(reads).toBe(2);
    const won = results.filter((r) => r.body.appraisal.verdict === 'pass');
    const lost = results.filter((r) => r.body.appraisal.verdict === 'fail');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    const winner = won[0]!.body;
    const state = await node(f, name);
    expect(state?.pinnedAkSha256).toBe(pinCheck(winner)!.actual);
    expect(state?.pinnedAkRecordId).toBe(winner.recordId);
    // The loser is judged against the pin it found, and says so.
    expect(pinCheck(lost[0]!.body)).toMatchObject({ outcome: 'fail', code: 'POLICY_AK_PIN_MISMATCH', expected: state!.pinnedAkSha256 });
    expect(pinCheck(lost[0]!.body)!.actual).not.toBe(state!.pinnedAkSha256);
    expect((await releaseKey(f, name, lost[0]!.body.result)).body.code).toBe('KEYS_RESULT_FAILED');
  });
});

async function passesOrFails(f: Fetch, sim: SimCvm, name: string): Promise<AttestResponse> {
  const a = await attest(f, sim, { runtimeData: { nodeName: name, machine: `${name}-machine` } });
  expect(a.status).toBe(200);
  return a.body;
}

describe('without tpm.pinAk (the default)', () => {
  let h: SimHarness;
  let other: SimCvm;
  beforeAll(async () => {
    h = await simHarness();
    other = await createSimCvm({ tee: 'snp', vtpm: 'software', nodeName: h.sim.nodeName, pkiFrom: h.sim });
  });
  afterAll(async () => {
    await other?.close();
    await h?.close();
  });

  it('passes any AK, has no pin check and keeps no pin', async () => {
    const f = fetcher(h.v.url);
    const name = 'unpinned-0';
    for (const sim of [h.sim, other, h.sim]) {
      const a = await passes(f, sim, name);
      expect(pinCheck(a)).toBeUndefined();
      expect((await releaseKey(f, name, a.result)).status).toBe(200);
    }
    expect(Object.keys((await node(f, name))!).filter((k) => k.startsWith('pinned'))).toEqual([]);
    const r = await unpin(f, name, { reason: 'nothing to clear' });
    expect(((await r.json()) as { code: string }).code).toBe('NODE_NOT_PINNED');
  });
});
