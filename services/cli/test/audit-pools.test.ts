import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { policyDigest, type Policy } from '@joinguard/policy';
import { createSimCvm, type SimCvm } from '@joinguard/simcvm';
import type { AttestResponse } from '@joinguard/protocol';
import { defaultConfig, hashToken, startVerifier, type RunningVerifier } from '@joinguard/verifier';
import { buildCli, cli, errCode } from './support.js';

/*
 * `joinguard audit verify --reappraise` on the records of a verifier with node pools: the same evidence passes
 * in one pool and fails in the stricter one, and one pool's policy is replaced between two appraisals. Each
 * record must be judged again by the policy whose digest it recorded, found in the policy log, with no
 * --policy at all; one policy for every record would turn the strict pool's failure into a pass.
 */

const ADMIN = 'audit-pools-admin-token-0123456789';

let dir: string;
let sim: SimCvm;
let v: RunningVerifier;
let store: string;
let keysDir: string;
let trustArgs: string[];
let good: Policy;
let relaxedFile: string;

async function attest(nodeName: string): Promise<AttestResponse> {
  const { nonce } = (await (await fetch(`${v.url}/v1/challenge`)).json()) as { nonce: string };
  const evidence = await sim.evidence({ nonce, runtimeData: { nodeName, machine: `${nodeName}-machine`, purpose: 'join' } });
  const r = await fetch(`${v.url}/v1/attest`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(evidence) });
  expect(r.status).toBe(200);
  return (await r.json()) as AttestResponse;
}

const made: { id: string; verdict: string; digest: string }[] = [];

beforeAll(async () => {
  buildCli();
  dir = mkdtempSync(join(tmpdir(), 'jg-cli-audit-pools-'));
  sim = await createSimCvm({ tee: 'snp', vtpm: 'software', nodeName: 'relaxed-0' });
  const trust = sim.writeTrust(join(dir, 'trust'));
  trustArgs = ['--snp-test-root', trust.snpRootsPem!];
  good = sim.goodPolicy();
  const defaultFile = join(dir, 'default.yaml');
  writeFileSync(defaultFile, YAML.stringify(good));
  relaxedFile = join(dir, 'relaxed.yaml');
  writeFileSync(relaxedFile, YAML.stringify({ ...good, name: 'relaxed-pool' }));
  const strictFile = join(dir, 'strict.yaml');
  // No simulated platform reaches microcode 255: the strict pool fails what the others pass.
  writeFileSync(strictFile, YAML.stringify({ ...good, name: 'strict-pool', snp: { ...good.snp, minimumTcb: { ...good.snp!.minimumTcb, microcode: 255 } } }));
  const tokensFile = join(dir, 'tokens.yaml');
  writeFileSync(tokensFile, YAML.stringify({ tokens: [{ name: 'ops', sha256: hashToken(ADMIN), roles: ['admin'] }] }));
  const base = defaultConfig(join(dir, 'data'));
  if (base.store.kind !== 'sqlite') throw new Error('the default store is SQLite');
  store = base.store.path;
  keysDir = base.signing.keysDir;
  v = await startVerifier({
    ...base,
    listen: { host: '127.0.0.1', port: 0 },
    clusterId: 'audit-pools',
    policy: {
      file: defaultFile,
      pools: [
        { name: 'relaxed', file: relaxedFile, nodes: 'relaxed-.*' },
        { name: 'strict', file: strictFile, nodes: 'strict-[0-9]+' },
      ],
    },
    trust: { snpTestRoots: [trust.snpRootsPem!], tdxTestRoots: [] },
    auth: { tokensFile, mtlsRoles: {} },
    logLevel: 'silent',
  });
  for (const node of ['relaxed-0', 'strict-0', 'default-0']) {
    const a = await attest(node);
    made.push({ id: a.recordId, verdict: a.appraisal.verdict, digest: a.appraisal.policy.digest });
  }
  // The relaxed pool's policy is replaced; the next appraisal in it records the new digest.
  const next = { ...good, name: 'relaxed-pool-v2' };
  const put = await fetch(`${v.url}/v1/policies/relaxed`, { method: 'PUT', headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` }, body: JSON.stringify(next) });
  expect(put.status, await put.clone().text()).toBe(200);
  const a = await attest('relaxed-1');
  made.push({ id: a.recordId, verdict: a.appraisal.verdict, digest: a.appraisal.policy.digest });
  await v.close();
});

afterAll(async () => {
  await v?.close();
  await sim?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('joinguard audit verify --reappraise with node pools and a policy change', () => {
  it('the appraisals were made under four policies, one failing', () => {
    expect(made.map((m) => m.verdict)).toEqual(['pass', 'fail', 'pass', 'pass']);
    expect(new Set(made.map((m) => m.digest)).size).toBe(4);
    expect(made[0]!.digest).toBe(policyDigest(YAML.parse(readFileSync(relaxedFile, 'utf8')) as Policy));
  });

  it('without --policy, judges each record by the policy its digest names in the policy log, and reproduces every verdict', () => {
    const r = cli('audit', 'verify', '--store', store, '--keys', keysDir, '--reappraise', ...trustArgs, '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const re = (r.json as { reappraisals: Array<{ id: string; recorded: string; now: string; same: boolean; policy: string; policyFrom: string }> }).reappraisals;
    expect(re.map((x) => [x.id, x.recorded, x.now, x.same, x.policy])).toEqual(made.map((m) => [m.id, m.verdict, m.verdict, true, m.digest]));
    for (const x of re) expect(x.policyFrom).toMatch(/^policy record /);
  });

  it('a --policy file adds to the policy log; it does not replace it for records under other digests', () => {
    const r = cli('audit', 'verify', '--store', store, '--keys', keysDir, '--reappraise', '--policy', relaxedFile, ...trustArgs, '--json');
    expect(r.code).toBe(0);
    const re = (r.json as { reappraisals: Array<{ same: boolean; policyFrom: string }> }).reappraisals;
    expect(re.every((x) => x.same)).toBe(true);
    expect(re[0]!.policyFrom).toBe(relaxedFile);
    expect(re[1]!.policyFrom).toMatch(/^policy record /);
  });

  it('an unreadable --policy file is unusable input (exit 2)', () => {
    const r = cli('audit', 'verify', '--store', store, '--keys', keysDir, '--reappraise', '--policy', join(dir, 'nope.yaml'), ...trustArgs, '--json');
    expect(r.code).toBe(2);
    expect(errCode(r.json)).toBe('CONFIG_POLICY_UNREADABLE');
  });
});
