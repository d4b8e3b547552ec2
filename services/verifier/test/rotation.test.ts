
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compactDecrypt, decodeProtectedHeader, type JSONWebKeySet } from 'jose';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createSimCvm, teeKeyPair, type SimCvm } from '@joinguard/simcvm';
import { verifyResult, type AttestResponse, type KeyReleaseResponse, type RecordPage, type TeeKeyJwk } from '@joinguard/protocol';
import { verifyRecord } from '@joinguard/store';
import { hashToken } from '../src/auth.js';
import { defaultConfig, type VerifierConfig } from '../src/config.js';
import { deriveDiskKey } from '../src/keybroker.js';
import { startVerifier, type RunningVerifier } from '../src/run.js';

/*
 * Signing-key rotation while the verifier runs, over HTTP with an injected clock: the maintenance timer
 * (checkIntervalSeconds: 1) rotates the active key once the clock is past rotateDays; the retired key stays
 * in /.well-known/jwks.json until the last result it signed has expired (and its results keep releasing
 * disk keys until then), then leaves the JWKS but stays in /v1/keys/all, by which its records still verify.
 */

const AUDITOR = 'rotation-auditor-token-0123456789';
const TTL = 300;
// 0.01 days = 864 s: a fraction of a day, so that a result signed shortly before the rotation outlives it.
const ROTATE_DAYS = 0.01;
const ROTATE_SEC = ROTATE_DAYS * 86_400;

describe('signing-key rotation while running', () => {
  let sim: SimCvm;
  let v: RunningVerifier;
  let config: VerifierConfig;
  const t0 = new Date();
  const clock = { now: t0 };
  const at = (sec: number) => new Date(t0.getTime() + sec * 1000);

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jg-rotation-'));
    sim = await createSimCvm({ tee: 'snp', nodeName: 'worker-rot-0', vtpm: 'software' });
    const files = sim.writeTrust(join(dir, 'trust'));
    const policyFile = join(dir, 'policy.yaml');
    writeFileSync(policyFile, YAML.stringify(sim.goodPolicy()));
    const tokensFile = join(dir, 'tokens.yaml');
    writeFileSync(tokensFile, `tokens:\n  - name: audit\n    sha256: ${hashToken(AUDITOR)}\n    roles: [auditor]\n`);
    const base = defaultConfig(join(dir, 'data'));
    config = {
      ...base,
      listen: { host: '127.0.0.1', port: 0 },
      clusterId: 'rotation-cluster',
      signing: { ...base.signing, rotateDays: ROTATE_DAYS, checkIntervalSeconds: 1 },
      results: { ttlSeconds: TTL },
      policy: { file: policyFile },
      trust: { snpTestRoots: [files.snpRootsPem!], tdxTestRoots: [] },
      auth: { tokensFile, mtlsRoles: {} },
      logLevel: 'silent',
    };
    v = await startVerifier(config, { now: () => clock.now });
  });
  afterAll(async () => {
    await v?.close();
    await sim?.close();
  });

  const get = async <T>(path: string, token?: string): Promise<T> => {
    const r = await fetch(`${v.url}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    expect(r.status).toBe(200);
    return (await r.json()) as T;
  };
  const kids = (set: JSONWebKeySet) => set.keys.map((k) => k.kid).sort();

  async function attest(teeKey: TeeKeyJwk) {
    const { nonce } = await get<{ nonce: string }>('/v1/challenge');
    const evidence = await sim.evidence({ nonce, runtimeData: { nodeName: sim.nodeName, machine: `${sim.nodeName}-machine`, purpose: 'unlock', teeKey } });
    const r = await fetch(`${v.url}/v1/attest`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(evidence) });
    expect(r.status).toBe(200);
    const body = (await r.json()) as AttestResponse;
    expect(body.appraisal.verdict).toBe('pass');
    return body;
  }

  async function release(result: string) {
    const r = await fetch(`${v.url}/v1/keys/disk/${sim.nodeName}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${result}` }, body: '{}' });
    return { status: r.status, body: (await r.json()) as KeyReleaseResponse & { code?: string } };
  }

  it('rotates on its timer, keeps the old key published for its results, then drops it from the JWKS only', async () => {
    const oldKid = v.keys.active.kid;
    expect(kids(await get<JSONWebKeySet>('/.well-known/jwks.json'))).toEqual([oldKid]);

    // A result signed by the first key shortly before it is due (exp = 800 + TTL).
    clock.now = at(800);
    const tee = teeKeyPair();
    const first = await attest(tee.pub);
    expect(decodeProtectedHeader(first.result).kid).toBe(oldKid);

    // Past rotateDays: the next tick of the maintenance timer rotates (no restart, no call from the test).
    const rotatedAt = at(900);
    expect(900).toBeGreaterThan(ROTATE_SEC);
    clock.now = rotatedAt;
    await vi.waitFor(() => expect(v.keys.active.kid).not.toBe(oldKid), { timeout: 5000, interval: 50 });
    const newKid = v.keys.active.kid;
    const ring = JSON.parse(readFileSync(join(config.signing.keysDir, 'keyring.json'), 'utf8')) as { keys: Array<{ jwk: { kid: string }; retiredAt?: string; publishUntil?: string }> };
    const oldEntry = ring.keys.find((k) => k.jwk.kid === oldKid)!;
    expect(oldEntry.retiredAt).toBe(rotatedAt.toISOString());
    expect(oldEntry.publishUntil).toBe(at(900 + TTL).toISOString());
    expect(ring.keys.find((k) => k.jwk.kid === newKid)!.retiredAt).toBeUndefined();

    // Both keys are published; the old result still verifies against the JWKS and still releases the disk key.
    const both = await get<JSONWebKeySet>('/.well-known/jwks.json');
    expect(kids(both)).toEqual([oldKid, newKid].sort());
    clock.now = at(1000); // the first result (exp = 800 + TTL) is still valid
    expect((await verifyResult(first.result, both, { now: clock.now })).jti).toBe(first.recordId);
    const k = await release(first.result);
    expect(k.status).toBe(200);
    const { plaintext } = await compactDecrypt(k.body.jwe, tee.priv);
    const master = Buffer.from(readFileSync(config.keyBroker.masterSecretFile, 'utf8').trim(), 'hex');
    expect(Buffer.from(plaintext).equals(Buffer.from(deriveDiskKey(master, { clusterId: 'rotation-cluster', machine: `${sim.nodeName}-machine`, name: sim.nodeName, epoch: 0 })))).toBe(true);

    // New results are signed by the new key.
    const second = await attest(teeKeyPair().pub);
    expect(decodeProtectedHeader(second.result).kid).toBe(newKid);
    expect((await verifyResult(second.result, await get<JSONWebKeySet>('/.well-known/jwks.json'), { now: clock.now })).jti).toBe(second.recordId);

    // Just before the old key's last possible result expires it is still published; after, it is gone.
    clock.now = at(900 + TTL - 1);
    expect(kids(await get<JSONWebKeySet>('/.well-known/jwks.json'))).toEqual([oldKid, newKid].sort());
    clock.now = at(900 + TTL + 1);
    const after = await get<JSONWebKeySet>('/.well-known/jwks.json');
    expect(kids(after)).toEqual([newKid]);
    // The timer keeps running, but the new key is young: no further rotation.
    await new Promise((r) => setTimeout(r, 1200));
    expect(v.keys.active.kid).toBe(newKid);

    // Auditors get every key, and the records signed by the old key verify with them (not with the JWKS).
    const all = await get<JSONWebKeySet>('/v1/keys/all', AUDITOR);
    expect(kids(all)).toEqual([oldKid, newKid].sort());
    expect(all.keys.every((key) => !('d' in key))).toBe(true);
    const page = await get<RecordPage>(`/v1/records?node=${sim.nodeName}`, AUDITOR);
    const byOld = page.records.filter((r) => decodeProtectedHeader(r.jws).kid === oldKid);
    const byNew = page.records.filter((r) => decodeProtectedHeader(r.jws).kid === newKid);
    expect(byOld.map((r) => r.record.id)).toContain(first.recordId);
    expect(byNew.map((r) => r.record.id)).toContain(second.recordId);
    for (const r of page.records) expect((await verifyRecord(r, all)).id).toBe(r.record.id);
    await expect(verifyRecord(byOld[0]!, after)).rejects.toMatchObject({ code: 'STORE_RECORD_UNKNOWN_KEY' });
  });

  it('keeps rotating on schedule and keeps every key for auditors after a restart', async () => {
    const before = v.keys.active.kid;
    // The current key was activated at 900 s.
    clock.now = at(900 + ROTATE_SEC + 10);
    await vi.waitFor(() => expect(v.keys.active.kid).not.toBe(before), { timeout: 5000, interval: 50 });
    const third = v.keys.active.kid;
    await v.close();
    v = await startVerifier(config, { now: () => clock.now });
    expect(v.keys.active.kid).toBe(third);
    const all = await get<JSONWebKeySet>('/v1/keys/all', AUDITOR);
    expect(all.keys).toHaveLength(3);
    expect(kids(await get<JSONWebKeySet>('/.well-known/jwks.json'))).toEqual([before, third].sort());
  });
});
