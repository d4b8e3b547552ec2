import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { calculateJwkThumbprint, compactDecrypt, decodeJwt, importJWK, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '@joinguard/core/testing';
import { teeKeyPair, type SimCvm } from '@joinguard/simcvm';
import { verifyResult, type AttestResponse, type ChallengeResponse, type KeyReleaseResponse, type TeeKeyJwk } from '@joinguard/protocol';
import type { VerifierConfig } from '../src/config.js';
import { deriveDiskKey } from '../src/keybroker.js';
import type { RunningVerifier } from '../src/run.js';
import { ADMIN_TOKEN, AUDITOR_TOKEN, simHarness } from './support/sim-verifier.js';

/*
 * The whole verifier over real HTTP on loopback, with a simulated SNP / TDX CVM (software signer with a
 * generated test root, trusted only because this configuration names it) and its vTPM and event log:
 * challenge → attest → result JWT → key release (JWE opened with the TEE key) → records → offline audit.
 * Then every refusal the issue names: replayed nonce, expired challenge, expired result, another node's key,
 * wrong teeKey, revoked node, failed appraisal, tampered record.
 */

interface Harness {
  v: RunningVerifier;
  sim: SimCvm;
  dir: string;
  config: VerifierConfig;
  clock: { now: Date };
}

const adminToken = ADMIN_TOKEN;

async function harness(tee: 'snp' | 'tdx'): Promise<Harness> {
  const clock = { now: new Date() };
  const h = await simHarness({ tee, edit: (c) => ({ ...c, clusterId: 'flow-cluster' }), now: () => clock.now });
  return { v: h.v, sim: h.sim, dir: h.dir, config: h.config, clock };
}

async function challenge(h: Harness): Promise<ChallengeResponse> {
  return (await (await fetch(`${h.v.url}/v1/challenge`)).json()) as ChallengeResponse;
}

async function attest(h: Harness, opts: { nodeName?: string; machine?: string; teeKey?: TeeKeyJwk; tamper?: Parameters<SimCvm['evidence']>[0] extends infer O ? O extends { tamper?: infer T } ? T : never : never; nonce?: string } = {}) {
  const nonce = opts.nonce ?? (await challenge(h)).nonce;
  const evidence = await h.sim.evidence({
    nonce,
    runtimeData: { nodeName: opts.nodeName ?? h.sim.nodeName, machine: opts.machine ?? `${h.sim.nodeName}-machine`, purpose: 'unlock', ...(opts.teeKey ? { teeKey: opts.teeKey } : {}) },
    ...(opts.tamper ? { tamper: opts.tamper } : {}),
  });
  const r = await fetch(`${h.v.url}/v1/attest`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(evidence) });
  return { status: r.status, body: (await r.json()) as AttestResponse & { code?: string }, nonce };
}

async function releaseKey(h: Harness, name: string, result: string | undefined, body: Record<string, unknown> = {}) {
  const r = await fetch(`${h.v.url}/v1/keys/disk/${name}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(result ? { authorization: `Bearer ${result}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as KeyReleaseResponse & { code?: string } };
}

function cli(args: string[]) {
  return spawnSync(process.execPath, [join(repoRoot, 'services/cli/bin/joinguard.js'), ...args], { encoding: 'utf8' });
}

beforeAll(() => {
  execFileSync(process.execPath, [join(repoRoot, 'scripts/build.mjs')], { cwd: repoRoot });
});

for (const tee of ['snp', 'tdx'] as const) {
  describe(`${tee}: attest and release the disk key over HTTP`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await harness(tee);
    });
    afterAll(async () => {
      await h?.v.close();
      await h?.sim.close();
    });

    it('passes, signs a result, releases a JWE only the TEE key opens, and records both', async () => {
      const { pub, priv } = teeKeyPair();
      const a = await attest(h, { teeKey: pub });
      expect(a.status).toBe(200);
      expect(a.body.appraisal.checks.filter((c) => c.outcome === 'fail')).toEqual([]);
      expect(a.body.appraisal.verdict).toBe('pass');
      expect(a.body.appraisal.tee).toBe(tee);

      const jwks = (await (await fetch(`${h.v.url}/.well-known/jwks.json`)).json()) as { keys: [] };
      const claims = await verifyResult(a.body.result, jwks, { now: h.clock.now });
      expect(claims).toMatchObject({ sub: h.sim.nodeName, verdict: 'pass', tee, jti: a.body.recordId });
      // What relying parties act on: the bound key, the policy, the launch measurements and PCRs, the TCB.
      expect(claims.bindings.teeKeyThumbprint).toBe(await calculateJwkThumbprint(pub as JWK, 'sha256'));
      const sent = (await h.v.store.get(a.body.recordId))!.record.body.runtimeData as { kubeletKeySha256?: string };
      expect(sent.kubeletKeySha256).toMatch(/^[0-9a-f]{64}$/);
      expect(claims.bindings.kubeletKeySha256).toBe(sent.kubeletKeySha256);
      expect(claims.policy).toEqual(a.body.appraisal.policy);
      const good = h.sim.goodPolicy();
      expect(claims.policy.id).toBe(good.name);
      const ref = good.referenceValues![0]!;
      if (tee === 'snp') {
        expect(ref.snp!.measurement).toContain(claims.measurements.measurement);
        expect(claims.tcb).toMatchObject({ status: 'ok', versions: { bootloader: 3, tee: 0, snp: 14, microcode: 209 } });
      } else {
        expect(ref.tdx!.mrTd).toContain(claims.measurements.mrTd);
        expect(ref.tdx!.rtmr0).toContain(claims.measurements.rtmr0);
        expect(claims.tcb.status).toBe('UpToDate');
      }
      const refPcrs = Object.entries(ref.pcrs!.sha256!);
      expect(refPcrs.length).toBeGreaterThan(0);
      for (const [pcr, allowed] of refPcrs) expect(allowed, `PCR ${pcr}`).toContain(claims.measurements[`pcr.sha256.${pcr}`]);

      const k = await releaseKey(h, h.sim.nodeName, a.body.result);
      expect(k.status).toBe(200);
      const { plaintext } = await compactDecrypt(k.body.jwe, priv);
      const master = Buffer.from(readFileSync(h.config.keyBroker.masterSecretFile, 'utf8').trim(), 'hex');
      const expected = deriveDiskKey(master, { clusterId: 'flow-cluster', machine: `${h.sim.nodeName}-machine`, name: h.sim.nodeName, epoch: 0 });
      expect(Buffer.from(plaintext).toString('hex')).toBe(Buffer.from(expected).toString('hex'));
      // Another key cannot open it.
      await expect(compactDecrypt(k.body.jwe, teeKeyPair().priv)).rejects.toThrow();

      const rec = await fetch(`${h.v.url}/v1/records?node=${h.sim.nodeName}`, { headers: { authorization: `Bearer ${adminToken}` } });
      const page = (await rec.json()) as { records: Array<{ record: { kind: string; id: string } }> };
      expect(page.records.map((r) => r.record.kind)).toEqual(expect.arrayContaining(['appraisal', 'key-release']));
      expect(page.records.find((r) => r.record.kind === 'appraisal')!.record.id).toBe(a.body.recordId);
    });

    it('keeps the event log (and the SNP VCEK) once, by SHA-256, and serves it to auditors as the record names it', async () => {
      const sent: string[] = [];
      const certsSent: (Record<string, string> | undefined)[] = [];
      const ids: string[] = [];
      for (let i = 0; i < 2; i++) {
        const { nonce } = await challenge(h);
        const evidence = await h.sim.evidence({ nonce, runtimeData: { nodeName: h.sim.nodeName, machine: `${h.sim.nodeName}-machine`, purpose: 'reattest' } });
        sent.push(evidence.eventLog);
        certsSent.push(evidence.hardware.certs);
        const r = await fetch(`${h.v.url}/v1/attest`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(evidence) });
        expect(r.status).toBe(200);
        ids.push(((await r.json()) as AttestResponse).recordId);
      }
      expect(sent[1]).toBe(sent[0]);
      const bytes = Buffer.from(sent[0]!, 'base64');
      const name = createHash('sha256').update(bytes).digest('hex');
      const auditor = { authorization: `Bearer ${AUDITOR_TOKEN}` };
      // The SNP node's VCEK, the same at every re-attestation, is kept once too, by the digest of its text; TDX
      // evidence carries its certificates inside the quote.
      expect(certsSent[1]).toEqual(certsSent[0]);
      const vcek = certsSent[0]?.vcek;
      expect(vcek === undefined).toBe(tee === 'tdx');
      const vcekName = vcek === undefined ? undefined : createHash('sha256').update(vcek, 'utf8').digest('hex');
      for (const id of ids) {
        const r = (await (await fetch(`${h.v.url}/v1/records/${id}`, { headers: auditor })).json()) as { record: { body: { evidence: { eventLog?: unknown; tpm?: unknown; hardware: { report: string; certs?: unknown } }; evidenceBlobs?: unknown } } };
        expect(r.record.body.evidenceBlobs).toEqual({ eventLog: name, ...(vcekName ? { certs: { vcek: vcekName } } : {}) });
        expect(r.record.body.evidence.eventLog).toBeUndefined();
        expect(r.record.body.evidence.hardware.certs).toBeUndefined();
        expect(r.record.body.evidence.hardware.report).toBeTypeOf('string');
        expect(r.record.body.evidence.tpm).toBeDefined();
      }
      if (vcekName) {
        const cert = await fetch(`${h.v.url}/v1/blobs/${vcekName}`, { headers: auditor });
        expect(cert.status).toBe(200);
        expect(Buffer.from(await cert.arrayBuffer()).toString('utf8')).toBe(vcek);
      }
      const blob = await fetch(`${h.v.url}/v1/blobs/${name}`, { headers: auditor });
      expect(blob.status).toBe(200);
      expect(blob.headers.get('content-type')).toBe('application/octet-stream');
      expect(Buffer.from(await blob.arrayBuffer()).equals(bytes)).toBe(true);
      // Stored once for both records.
      if (h.config.store.kind !== 'sqlite') throw new Error('this harness stores records in SQLite');
      const db = new Database(h.config.store.path, { readonly: true });
      try {
        expect((db.prepare('SELECT count(*) AS n FROM blobs WHERE sha256 = ?').get(name) as { n: number }).n).toBe(1);
        if (vcekName) expect((db.prepare('SELECT count(*) AS n FROM blobs WHERE sha256 = ?').get(vcekName) as { n: number }).n).toBe(1);
      } finally {
        db.close();
      }
      expect((await fetch(`${h.v.url}/v1/blobs/${name}`)).status).toBe(401);
      const unknown = await fetch(`${h.v.url}/v1/blobs/${'0'.repeat(64)}`, { headers: auditor });
      expect(unknown.status).toBe(404);
      expect(((await unknown.json()) as { code: string }).code).toBe('NOT_FOUND');
      const malformed = await fetch(`${h.v.url}/v1/blobs/${name.toUpperCase()}`, { headers: auditor });
      expect(malformed.status).toBe(400);
    });

    it('refuses a replayed nonce', async () => {
      const first = await attest(h);
      expect(first.status).toBe(200);
      const again = await attest(h, { nonce: first.nonce });
      expect(again.status).toBe(401);
      expect(again.body.code).toBe('PROTOCOL_NONCE_REPLAYED');
    });

    it('records one appraisal when one nonce comes three times at once: the others are refused as replays', async () => {
      // Every copy passes the challenge's MAC and expiry; the store's replay set lets only one through.
      const name = `${h.sim.nodeName}-race`;
      const { nonce } = await challenge(h);
      const replies = await Promise.all([0, 1, 2].map(() => attest(h, { nonce, nodeName: name, machine: `${name}-machine` })));
      expect(replies.map((r) => r.status).sort()).toEqual([200, 401, 401]);
      expect(replies.filter((r) => r.status === 401).every((r) => r.body.code === 'PROTOCOL_NONCE_REPLAYED')).toBe(true);
      const listed = (await (await fetch(`${h.v.url}/v1/records?node=${name}`, { headers: { authorization: `Bearer ${AUDITOR_TOKEN}` } })).json()) as { records: unknown[] };
      expect(listed.records).toHaveLength(1);
      const node = (await (await fetch(`${h.v.url}/v1/nodes`, { headers: { authorization: `Bearer ${AUDITOR_TOKEN}` } })).json()) as { nodes: { name: string; lastRecordId?: string }[] };
      expect(node.nodes.find((n) => n.name === name)?.lastRecordId).toBe(replies.find((r) => r.status === 200)!.body.recordId);
    });

    it('refuses an expired challenge', async () => {
      const c = await challenge(h);
      h.clock.now = new Date(h.clock.now.getTime() + (h.config.challenge.ttlSeconds + 1) * 1000);
      const late = await attest(h, { nonce: c.nonce });
      expect(late.status).toBe(401);
      expect(late.body.code).toBe('PROTOCOL_NONCE_EXPIRED');
    });

    it('refuses a result after it expired, and another node’s key', async () => {
      const a = await attest(h);
      expect(a.body.appraisal.verdict).toBe('pass');
      const other = await releaseKey(h, 'someone-else', a.body.result);
      expect(other.status).toBe(403);
      expect(other.body.code).toBe('KEYS_NODE_MISMATCH');
      const exp = decodeJwt(a.body.result).exp!;
      h.clock.now = new Date((exp + 1) * 1000);
      const late = await releaseKey(h, h.sim.nodeName, a.body.result);
      expect(late.status).toBe(401);
      expect(late.body.code).toBe('PROTOCOL_RESULT_EXPIRED');
    });

    it('refuses a teeKey other than the bound one', async () => {
      const a = await attest(h);
      const wrong = await releaseKey(h, h.sim.nodeName, a.body.result, { teeKey: teeKeyPair().pub });
      expect(wrong.status).toBe(403);
      expect(wrong.body.code).toBe('KEYS_TEE_KEY_MISMATCH');
    });

    it('records a failed appraisal and refuses its result at the key broker', async () => {
      const bad = await attest(h, { tamper: { pcr: { index: 7, value: 'ab'.repeat(32) } } });
      expect(bad.status).toBe(200);
      expect(bad.body.appraisal.verdict).toBe('fail');
      const failedCheck = bad.body.appraisal.checks.find((c) => c.outcome === 'fail')!;
      expect(failedCheck.name).toBeTruthy();
      expect(failedCheck.code).toBeTruthy();
      const k = await releaseKey(h, h.sim.nodeName, bad.body.result);
      expect(k.status).toBe(403);
      expect(k.body.code).toBe('KEYS_RESULT_FAILED');
    });

    it('refuses keys to a revoked node, recording the refusal', async () => {
      const name = `${tee}-revoked-0`;
      const a = await attest(h, { nodeName: name });
      expect(a.body.appraisal.verdict).toBe('pass');
      const rv = await fetch(`${h.v.url}/v1/nodes/${name}/revoke`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` }, body: JSON.stringify({ reason: 'Machine deleted' }) });
      expect(rv.status).toBe(200);
      const k = await releaseKey(h, name, a.body.result);
      expect(k.status).toBe(403);
      expect(k.body.code).toBe('KEYS_NODE_REVOKED');
      const rec = await fetch(`${h.v.url}/v1/records?node=${name}&kind=key-release`, { headers: { authorization: `Bearer ${adminToken}` } });
      const page = (await rec.json()) as { records: Array<{ record: { verdict: string; body: { code: string } } }> };
      expect(page.records.at(-1)!.record).toMatchObject({ verdict: 'fail', body: { code: 'KEYS_NODE_REVOKED' } });
    });

    it('keeps chains that the offline audit verifies, and detects a tampered record', async () => {
      const store = h.config.store.kind === 'sqlite' ? h.config.store.path : '';
      const ok = cli(['audit', 'verify', '--store', store, '--keys', h.config.signing.keysDir, '--json']);
      expect(ok.stderr).toBe('');
      expect(ok.status).toBe(0);
      const report = JSON.parse(ok.stdout) as { verified: boolean; chains: Array<{ log: string; ok: boolean; count: number }> };
      expect(report.verified).toBe(true);
      expect(report.chains.find((c) => c.log === 'appraisals')!.count).toBeGreaterThan(3);

      // Re-run every stored appraisal offline at its record time: the verdicts (passes and the tampered-PCR
      // failure) come out the same.
      const trustArgs = [
        ...h.config.trust.snpTestRoots.flatMap((f) => ['--snp-test-root', f]),
        ...h.config.trust.tdxTestRoots.flatMap((f) => ['--tdx-test-root', f]),
        ...(h.config.trust.tdxCollateralDir ? ['--tdx-collateral', h.config.trust.tdxCollateralDir] : []),
      ];
      const re = cli(['audit', 'verify', '--store', store, '--keys', h.config.signing.keysDir, '--reappraise', '--policy', h.config.policy.file!, ...trustArgs, '--json']);
      expect(re.stderr).toBe('');
      expect(re.status).toBe(0);
      const reappraised = (JSON.parse(re.stdout) as { reappraisals: Array<{ recorded: string; now: string; same: boolean }> }).reappraisals;
      expect(reappraised.length).toBe(report.chains.find((c) => c.log === 'appraisals')!.count);
      expect(reappraised.every((r) => r.same)).toBe(true);
      expect(reappraised.some((r) => r.recorded === 'fail')).toBe(true);
      // A policy the records were not made with judges none of them: each is judged by the policy its digest
      // names, from the verifier's policy log.
      const otherPolicy = join(h.dir, 'other-policy.yaml');
      writeFileSync(otherPolicy, readFileSync(h.config.policy.file!, 'utf8').replace(/^name: .*$/m, 'name: another-policy'));
      const other = cli(['audit', 'verify', '--store', store, '--keys', h.config.signing.keysDir, '--reappraise', '--policy', otherPolicy, ...trustArgs, '--json']);
      expect(other.status).toBe(0);
      const judged = (JSON.parse(other.stdout) as { reappraisals: Array<{ same: boolean; policyFrom: string }> }).reappraisals;
      expect(judged.every((r) => r.same && r.policyFrom.startsWith('policy record '))).toBe(true);

      // Rewrite one stored appraisal's verdict column, as someone with write access to the file might.
      const db = new Database(store);
      const row = db.prepare("SELECT id, seq FROM records WHERE log = 'appraisals' AND verdict = 'fail' LIMIT 1").get() as { id: string; seq: number };
      db.prepare("UPDATE records SET verdict = 'pass' WHERE id = ?").run(row.id);
      db.close();
      const bad = cli(['audit', 'verify', '--store', store, '--keys', h.config.signing.keysDir, '--json']);
      expect(bad.status).toBe(1);
      const out = JSON.parse(bad.stdout) as { verified: boolean; error: { code: string; details: { chains: Array<{ log: string; ok: boolean; firstBadSeq?: number }> } } };
      expect(out.verified).toBe(false);
      const chain = out.error.details.chains.find((c) => c.log === 'appraisals')!;
      expect(chain.ok).toBe(false);
      expect(chain.firstBadSeq).toBe(row.seq);
    });
  });
}

// keep the import used in type position only
void importJWK;
