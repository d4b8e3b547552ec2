import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compactDecrypt } from 'jose';
import type { JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '@joinguard/core/testing';
import { generateSigningKey, verifyResult, type AttestResponse, type Evidence, type PolicyListResponse, type RuntimeData, type SignedRecord } from '@joinguard/protocol';
import { teeKeyPair } from '@joinguard/simcvm';
import { jetStreamNames, openJetStreamStore, type RecordStore } from '@joinguard/store';
import { policyDigest, type Policy } from '@joinguard/policy';
import YAML from 'yaml';
import { startNatsServer, type NatsServer } from '../../../packages/store/test/nats.js';
import type { VerifierConfig } from '../src/config.js';
import { deriveDiskKey } from '../src/keybroker.js';
import { startVerifier, type RunningVerifier } from '../src/run.js';
import { ADMIN_TOKEN, AUDITOR_TOKEN, challenge, fetcher, releaseKey, simHarness, type Fetch, type SimHarness } from './support/sim-verifier.js';

/*
 * Two verifier replicas, A and B, started with startVerifier on ONE nats-server (store kind jetstream,
 * replicas 1, one prefix), sharing the challenge MAC key file, the signing-keys folder and the disk-key master
 * secret (each has its own dataDir otherwise), exercised over HTTP with simulated SNP evidence:
 * a challenge of one is accepted by the other and its replay refused by both; a result of B releases a disk key
 * at A; a revocation at A is obeyed by B; and the records of both, also from 20 attestations and 20 key releases
 * made in parallel at A and B, form one unbroken chain per log: store.verifyChain with the JWKS, and the
 * auditor's `joinguard audit verify --url`.
 */

let nats: NatsServer;
let h: SimHarness;
let a: RunningVerifier;
let b: RunningVerifier;
let fa: Fetch;
let fb: Fetch;
/** A third connection to the stream, as an auditor's tool would open it. */
let store: RecordStore;
/** Every appraisal and key release the replicas were asked for, so the chains' lengths can be checked exactly. */
const made = { appraisals: 0, keyReleases: 0, revocations: 0 };

const PREFIX = 'jgreplica';

async function evidenceFor(from: Fetch, runtimeData: Partial<RuntimeData>): Promise<Evidence> {
  const { nonce } = await challenge(from);
  return h.sim.evidence({ nonce, runtimeData: { purpose: 'unlock', ...runtimeData } });
}

async function post(to: Fetch, evidence: Evidence): Promise<{ status: number; body: AttestResponse & { code?: string } }> {
  const r = await to('/v1/attest', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(evidence) });
  const body = (await r.json()) as AttestResponse & { code?: string };
  if (r.status === 200) made.appraisals++;
  return { status: r.status, body };
}

async function release(at: Fetch, name: string, result: string) {
  const k = await releaseKey(at, name, result);
  made.keyReleases++;
  return k;
}

async function auditorJson<T>(f: Fetch, path: string): Promise<T> {
  const r = await f(path, { headers: { authorization: `Bearer ${AUDITOR_TOKEN}` } });
  expect(r.status).toBe(200);
  return (await r.json()) as T;
}

function masterSecret(): Buffer {
  return Buffer.from(readFileSync(h.config.keyBroker.masterSecretFile, 'utf8').trim(), 'hex');
}

/** The bundled CLI without blocking this process's event loop (both verifiers answer it from here). */
function cliAsync(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(repoRoot, 'services/cli/bin/joinguard.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

beforeAll(async () => {
  execFileSync(process.execPath, [join(repoRoot, 'scripts/build.mjs')], { cwd: repoRoot });
  nats = await startNatsServer();
  const jetstream = { kind: 'jetstream' as const, servers: [nats.url], replicas: 1, prefix: PREFIX };
  // Policy changes are followed at start only (syncSeconds 0), so the test decides when A and B look.
  h = await simHarness({ nodeName: 'replica-node-0', edit: (c) => ({ ...c, store: jetstream, policy: { ...c.policy, syncSeconds: 0 } }) });
  a = h.v;
  // B: its own data folder, but A's challenge MAC key, signing keys and master secret, and the same stream.
  const bData = join(h.dir, 'data-b');
  mkdirSync(bData);
  const bConfig: VerifierConfig = {
    ...h.config,
    dataDir: bData,
    store: jetstream,
    challenge: { ...h.config.challenge, macKeyFile: h.config.challenge.macKeyFile },
    signing: { ...h.config.signing, keysDir: h.config.signing.keysDir },
    keyBroker: { ...h.config.keyBroker, masterSecretFile: h.config.keyBroker.masterSecretFile },
  };
  expect(bConfig.challenge.macKeyFile.startsWith(h.config.dataDir)).toBe(true);
  b = await startVerifier(bConfig);
  fa = fetcher(a.url);
  fb = fetcher(b.url);
  const reader = await generateSigningKey();
  store = await openJetStreamStore({ servers: nats.url, ...jetStreamNames(PREFIX), signer: { kid: reader.kid, privateKey: reader.privateKey } });
});

afterAll(async () => {
  await b?.close();
  await h?.close();
  await store?.close();
  await nats?.stop();
});

describe('two verifier replicas on one JetStream', () => {
  it('sign with one key from the shared folder: the same JWKS at both', async () => {
    expect(a.keys.active.kid).toBe(b.keys.active.kid);
    const ja = (await (await fa('/.well-known/jwks.json')).json()) as JSONWebKeySet;
    const jb = (await (await fb('/.well-known/jwks.json')).json()) as JSONWebKeySet;
    expect(jb).toEqual(ja);
    expect(ja.keys.map((k) => k.kid)).toContain(a.keys.active.kid);
  });

  it("accept each other's challenges; the evidence replayed at either replica is refused as a replayed nonce", async () => {
    const evidence = await evidenceFor(fa, { nodeName: 'replica-cross-0', machine: 'replica-cross-0-machine' });
    const atB = await post(fb, evidence);
    expect(atB.status).toBe(200);
    expect(atB.body.appraisal.verdict).toBe('pass');
    const replayA = await post(fa, evidence);
    expect(replayA.status).toBe(401);
    expect(replayA.body.code).toBe('PROTOCOL_NONCE_REPLAYED');
    const replayB = await post(fb, evidence);
    expect(replayB.status).toBe(401);
    expect(replayB.body.code).toBe('PROTOCOL_NONCE_REPLAYED');

    // And the other way round: B's challenge at A, replayed at B.
    const other = await evidenceFor(fb, { nodeName: 'replica-cross-1', machine: 'replica-cross-1-machine' });
    expect((await post(fa, other)).status).toBe(200);
    const replay = await post(fb, other);
    expect(replay.status).toBe(401);
    expect(replay.body.code).toBe('PROTOCOL_NONCE_REPLAYED');

    // A's record of the appraisal B made is readable at A.
    const rec = await auditorJson<SignedRecord>(fa, `/v1/records/${atB.body.recordId}`);
    expect(rec.record).toMatchObject({ id: atB.body.recordId, kind: 'appraisal', node: 'replica-cross-0', verdict: 'pass' });
  });

  it('release at A the disk key for a result B signed (the key both derive, sealed to the bound teeKey)', async () => {
    const name = 'replica-keys-0';
    const machine = `${name}-machine`;
    const { pub, priv } = teeKeyPair();
    const attested = await post(fb, await evidenceFor(fb, { nodeName: name, machine, teeKey: pub }));
    expect(attested.status).toBe(200);
    expect(attested.body.appraisal.verdict).toBe('pass');
    const jwksA = (await (await fa('/.well-known/jwks.json')).json()) as JSONWebKeySet;
    expect(await verifyResult(attested.body.result, jwksA, { now: new Date(), issuer: `joinguard:${h.config.clusterId}` })).toMatchObject({ sub: name, verdict: 'pass', jti: attested.body.recordId });

    const atA = await release(fa, name, attested.body.result);
    expect(atA.status, JSON.stringify(atA.body)).toBe(200);
    const expected = Buffer.from(deriveDiskKey(masterSecret(), { clusterId: h.config.clusterId, machine, name, epoch: 0 })).toString('hex');
    expect(Buffer.from((await compactDecrypt(atA.body.jwe, priv)).plaintext).toString('hex')).toBe(expected);
    const atB = await release(fb, name, attested.body.result);
    expect(atB.status).toBe(200);
    expect(Buffer.from((await compactDecrypt(atB.body.jwe, priv)).plaintext).toString('hex')).toBe(expected);

    // Both releases are records of the one key-releases log, naming B's appraisal.
    const releases = (await auditorJson<{ records: SignedRecord[] }>(fb, `/v1/records?node=${name}&kind=key-release`)).records;
    expect(releases.map((r) => [r.record.verdict, r.record.body.appraisalId])).toEqual([
      ['pass', attested.body.recordId],
      ['pass', attested.body.recordId],
    ]);
  });

  it("a revocation at A makes B refuse the node's key, also for a newer passing result", async () => {
    const name = 'replica-revoked-0';
    const machine = `${name}-machine`;
    const first = await post(fa, await evidenceFor(fa, { nodeName: name, machine }));
    expect(first.body.appraisal.verdict).toBe('pass');
    expect((await release(fb, name, first.body.result)).status).toBe(200);

    const rv = await fa(`/v1/nodes/${name}/revoke`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` }, body: JSON.stringify({ reason: 'decommissioned' }) });
    expect(rv.status).toBe(200);
    made.revocations++;

    const refused = await release(fb, name, first.body.result);
    expect(refused.status).toBe(403);
    expect(refused.body.code).toBe('KEYS_NODE_REVOKED');
    // A new attestation at B does not lift the revocation.
    const again = await post(fb, await evidenceFor(fb, { nodeName: name, machine }));
    expect(again.body.appraisal.verdict).toBe('pass');
    const still = await release(fb, name, again.body.result);
    expect(still.status).toBe(403);
    expect(still.body.code).toBe('KEYS_NODE_REVOKED');
    const nodes = await auditorJson<{ nodes: Array<{ name: string; revoked: boolean }> }>(fb, '/v1/nodes');
    expect(nodes.nodes.find((n) => n.name === name)).toMatchObject({ revoked: true });
  });

  it('20 attestations and 20 key releases in parallel at A and B leave one unbroken chain per log', async () => {
    const N = 20;
    // Challenges from both replicas; each bundle is posted to the replica that did not issue it for half of them.
    const bundles: Array<{ to: Fetch; evidence: Evidence; name: string }> = [];
    for (let i = 0; i < N; i++) {
      const name = `replica-par-${i}`;
      const from = i % 2 === 0 ? fa : fb;
      const to = i % 4 < 2 ? (i % 2 === 0 ? fb : fa) : from;
      bundles.push({ to, name, evidence: await evidenceFor(from, { nodeName: name, machine: `${name}-machine` }) });
    }
    const before = (await store.verifyChain('appraisals', await jwks())).count;
    const results = await Promise.all(bundles.map((x) => post(x.to, x.evidence)));
    expect(results.map((r) => r.status)).toEqual(Array(N).fill(200));
    expect(results.every((r) => r.body.appraisal.verdict === 'pass')).toBe(true);
    const ids = results.map((r) => r.body.recordId);
    expect(new Set(ids).size).toBe(N);
    // Key releases in parallel too, each at the replica that did not appraise it.
    const releases = await Promise.all(results.map((r, i) => release(bundles[i]!.to === fa ? fb : fa, bundles[i]!.name, r.body.result)));
    expect(releases.map((r) => r.status)).toEqual(Array(N).fill(200));

    const keys = await jwks();
    const logs = await store.logs();
    expect(logs).toEqual(expect.arrayContaining(['appraisals', 'key-releases', 'revocations']));
    const counts: Record<string, number> = {};
    for (const log of logs) {
      const c = await store.verifyChain(log, keys);
      expect(c.ok, `${log}: ${c.reason}`).toBe(true);
      counts[log] = c.count;
    }
    expect(counts.appraisals).toBe(before + N);
    expect(counts).toMatchObject({ appraisals: made.appraisals, 'key-releases': made.keyReleases, revocations: made.revocations });

    // No fork: every seq from 1 to the head once, and the parallel appraisals among them.
    const all: SignedRecord[] = [];
    let cursor: string | undefined;
    do {
      const page = await store.query({ log: 'appraisals', limit: 100, ...(cursor ? { cursor } : {}) });
      all.push(...page.records);
      cursor = page.nextCursor;
    } while (cursor);
    expect(all.map((r) => r.record.seq)).toEqual(Array.from({ length: counts.appraisals! }, (_, i) => i + 1));
    const stored = new Set(all.map((r) => r.record.id));
    expect(ids.every((id) => stored.has(id))).toBe(true);

    // The auditor's tool says the same, reading the records through either replica.
    for (const url of [a.url, b.url]) {
      const r = await cliAsync('audit', 'verify', '--url', url, '--token', AUDITOR_TOKEN, '--json');
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const j = JSON.parse(r.stdout) as { verified: boolean; chains: Array<{ log: string; ok: boolean; count: number }> };
      expect(j.verified).toBe(true);
      expect(Object.fromEntries(j.chains.filter((c) => c.count > 0).map((c) => [c.log, c.count]))).toEqual(counts);
    }
    // Re-appraising reads each record's event log back from the object store, by digest, through a replica.
    const roots = h.config.trust.snpTestRoots.flatMap((f) => ['--snp-test-root', f]);
    const re = await cliAsync('audit', 'verify', '--url', b.url, '--token', AUDITOR_TOKEN, '--reappraise', '--policy', h.config.policy.file!, ...roots, '--json');
    expect(re.stderr).toBe('');
    expect(re.code).toBe(0);
    const reappraised = (JSON.parse(re.stdout) as { reappraisals: Array<{ same: boolean }> }).reappraisals;
    expect(reappraised).toHaveLength(counts.appraisals!);
    expect(reappraised.every((x) => x.same)).toBe(true);
    expect(all.every((r) => /^[0-9a-f]{64}$/.test((r.record.body.evidenceBlobs as { eventLog?: string } | undefined)?.eventLog ?? ''))).toBe(true);
  });
});

describe('large evidence on JetStream', () => {
  it('records an appraisal whose 1.5 MB event log is not standard base64 (kept as the blob of its text), as SQLite would', async () => {
    const e = await evidenceFor(fa, { nodeName: 'big-log-0', machine: 'big-log-0-machine' });
    e.eventLog = `${randomBytes(1_500_000).toString('base64').replace(/=+$/, '')}Q`;
    const r = await post(fa, e);
    expect(r.status).toBe(200);
    expect(r.body.appraisal.verdict).toBe('fail');
    const rec = await store.get(r.body.recordId);
    expect(rec?.record).toMatchObject({ kind: 'appraisal', node: 'big-log-0', verdict: 'fail' });
    const refs = rec!.record.body.evidenceBlobs as { texts?: { eventLog?: string } };
    const blob = await store.getBlob(refs.texts!.eventLog!);
    expect(Buffer.from(blob!).toString('utf8')).toBe(e.eventLog);
  });
});

describe('a replica whose disk-key secret differs from the others', () => {
  it('is refused at start with CONFIG_DISK_SECRET_MISMATCH (a data folder of its own made it a secret of its own), and so is another cluster id', async () => {
    const eData = join(h.dir, 'data-e');
    mkdirSync(eData);
    const own = { ...h.config, dataDir: eData, store: { kind: 'jetstream' as const, servers: [nats.url], replicas: 1, prefix: PREFIX } };
    const logsBefore = await store.logs();
    const counts = async () => Promise.all(logsBefore.map(async (l) => (await store.query({ log: l, limit: 1000 })).records.length));
    const before = await counts();
    for (const config of [
      { ...own, keyBroker: { ...own.keyBroker, masterSecretFile: join(eData, 'disk-master.key') } },
      { ...own, clusterId: 'another-cluster' },
    ]) {
      const err = await startVerifier(config).then(
        async (v) => {
          await v.close();
          return undefined;
        },
        (e: unknown) => e as { code?: string; message?: string },
      );
      expect(err?.code).toBe('CONFIG_DISK_SECRET_MISMATCH');
      expect(err?.message).toContain('every replica must read the same secret file and cluster id');
    }
    // Nothing was recorded by the refused starts (a start records the policies in force only after the check).
    expect(await store.logs()).toEqual(logsBefore);
    expect(await counts()).toEqual(before);
    // The same secret and cluster id from another folder is a replica like A and B.
    const same = await startVerifier(own);
    await same.close();
  });
});

describe('policies across replicas', () => {
  const put = (to: Fetch, pool: string, policy: unknown) =>
    to(`/v1/policies/${pool}`, { method: 'PUT', headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` }, body: JSON.stringify(policy) });
  const inForce = async (f: Fetch) => (await auditorJson<PolicyListResponse>(f, '/v1/policies')).pools.find((p) => p.name === 'default')!;

  it('a policy an admin sets at A comes into force at B, and at a replica started later, from the shared policy log', async () => {
    const configured = await inForce(fb);
    const next = { ...h.sim.goodPolicy(), name: 'set-at-replica-a' };
    const r = await put(fa, 'default', next);
    expect(r.status, await r.clone().text()).toBe(200);
    const atA = await inForce(fa);
    expect(atA.policy).toEqual({ id: 'set-at-replica-a', digest: policyDigest(next as Policy) });
    // B would follow on its timer (policy.syncSeconds); here it is asked to.
    expect(await b.verifier.syncPolicies()).toEqual(['default']);
    expect(await b.verifier.syncPolicies()).toEqual([]);
    const atB = await inForce(fb);
    expect(atB).toMatchObject({ policy: atA.policy, source: 'api', updatedBy: 'ops' });
    const e = await evidenceFor(fb, { nodeName: 'replica-node-0' });
    const appraised = await post(fb, e);
    expect(appraised.body.appraisal.policy).toEqual(atA.policy);

    // A third replica with a data folder of its own (no kept policy) takes it up at start, recording nothing new.
    const policyRecords = async () => (await store.query({ log: 'policy', limit: 1000 })).records.length;
    const before = await policyRecords();
    const cData = join(h.dir, 'data-c');
    mkdirSync(cData);
    const c = await startVerifier({ ...h.config, dataDir: cData, store: { kind: 'jetstream', servers: [nats.url], replicas: 1, prefix: PREFIX } });
    try {
      expect(await inForce(fetcher(c.url))).toMatchObject({ policy: atA.policy, source: 'api' });
      expect(await policyRecords()).toBe(before);
    } finally {
      await c.close();
    }

    // A replica following on its timer (policy.syncSeconds 1) takes up the next change by itself.
    const dData = join(h.dir, 'data-d');
    mkdirSync(dData);
    const d = await startVerifier({ ...h.config, dataDir: dData, store: { kind: 'jetstream', servers: [nats.url], replicas: 1, prefix: PREFIX }, policy: { ...h.config.policy, syncSeconds: 1 } });
    try {
      const fd = fetcher(d.url);
      const third = { ...h.sim.goodPolicy(), name: 'set-again-at-a' };
      expect((await put(fa, 'default', third)).status).toBe(200);
      const want = { id: 'set-again-at-a', digest: policyDigest(third as Policy) };
      let seen: unknown;
      for (let i = 0; i < 50 && JSON.stringify(seen) !== JSON.stringify(want); i++) {
        await new Promise((r) => setTimeout(r, 100));
        seen = (await inForce(fd)).policy;
      }
      expect(seen).toEqual(want);
    } finally {
      await d.close();
    }

    // Back to the configured file at B: A follows too.
    const back = await put(fb, 'default', YAML.parse(readFileSync(h.config.policy.file!, 'utf8')));
    expect(back.status).toBe(200);
    expect(await b.verifier.syncPolicies()).toEqual([]);
    expect(await a.verifier.syncPolicies()).toEqual(['default']);
    expect(await inForce(fa)).toMatchObject({ policy: configured.policy, source: 'file' });
  });
});

async function jwks(): Promise<JSONWebKeySet> {
  return auditorJson<JSONWebKeySet>(fa, '/v1/keys/all');
}
