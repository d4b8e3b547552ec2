import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSimCvm, type SimCvm } from '@joinguard/simcvm';
import type { AttestResponse, NodeState } from '@joinguard/protocol';
import { defaultConfig, hashToken, startVerifier, type RunningVerifier } from '@joinguard/verifier';
import { buildCli, cli, cliAsync, errCode } from './support.js';

/*
 * `joinguard node list|unpin` against a verifier whose policy pins AKs (tpm.pinAk), and `audit verify
 * --reappraise` of its records: an appraisal that failed only because its AK was not the pinned one is judged
 * again against the pin its record names, so its verdict is reproduced offline.
 */

const ADMIN = 'node-cli-admin-token-0123456789';
const AUDITOR = 'node-cli-auditor-token-0123456789';
const NAME = 'pinned-cli-0';

let dir: string;
let sim: SimCvm;
let other: SimCvm;
let v: RunningVerifier;
let store: string;
let keysDir: string;
let trustArgs: string[];
const akOf = (s: SimCvm) => createHash('sha256').update(s.vtpm.akPublic).digest('hex');

async function attest(s: SimCvm): Promise<AttestResponse> {
  const { nonce } = (await (await fetch(`${v.url}/v1/challenge`)).json()) as { nonce: string };
  const evidence = await s.evidence({ nonce, runtimeData: { nodeName: NAME, machine: `${NAME}-machine`, purpose: 'join' } });
  const r = await fetch(`${v.url}/v1/attest`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(evidence) });
  expect(r.status).toBe(200);
  return (await r.json()) as AttestResponse;
}

beforeAll(async () => {
  buildCli();
  dir = mkdtempSync(join(tmpdir(), 'jg-cli-node-'));
  sim = await createSimCvm({ tee: 'snp', vtpm: 'software', nodeName: NAME });
  // Another CVM of the same (trusted) kind and image, with its own vTPM: another AK.
  other = await createSimCvm({ tee: 'snp', vtpm: 'software', nodeName: NAME, pkiFrom: sim });
  const trust = sim.writeTrust(join(dir, 'trust'));
  trustArgs = ['--snp-test-root', trust.snpRootsPem!];
  const good = sim.goodPolicy();
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, YAML.stringify({ ...good, name: 'pinned', tpm: { ...good.tpm, pinAk: true } }));
  const tokensFile = join(dir, 'tokens.yaml');
  writeFileSync(
    tokensFile,
    YAML.stringify({
      tokens: [
        { name: 'ops', sha256: hashToken(ADMIN), roles: ['admin'] },
        { name: 'audit', sha256: hashToken(AUDITOR), roles: ['auditor'] },
      ],
    }),
  );
  const base = defaultConfig(join(dir, 'data'));
  if (base.store.kind !== 'sqlite') throw new Error('the default store is SQLite');
  store = base.store.path;
  keysDir = base.signing.keysDir;
  v = await startVerifier({
    ...base,
    listen: { host: '127.0.0.1', port: 0 },
    clusterId: 'node-cli',
    policy: { file: policyFile },
    trust: { snpTestRoots: [trust.snpRootsPem!], tdxTestRoots: [] },
    auth: { tokensFile, mtlsRoles: {} },
    logLevel: 'silent',
  });
});

afterAll(async () => {
  await v?.close();
  await sim?.close();
  await other?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('joinguard node list and unpin', () => {
  it('lists the node pinned to its first AK, unpins it as an admin only, and the replacement is pinned next', async () => {
    expect((await attest(sim)).appraisal.verdict).toBe('pass');
    expect((await attest(other)).appraisal.verdict).toBe('fail');

    const listed = await cliAsync('node', 'list', '--url', v.url, '--token', AUDITOR, '--json');
    expect(listed.stderr).toBe('');
    expect(listed.code).toBe(0);
    expect((listed.json as { nodes: NodeState[] }).nodes).toEqual([expect.objectContaining({ name: NAME, pinnedAkSha256: akOf(sim), lastVerdict: 'fail' })]);
    const text = await cliAsync('node', 'list', '--url', v.url, '--token', AUDITOR);
    expect(text.stdout).toContain(`pinned to AK ${akOf(sim)}`);

    const forbidden = await cliAsync('node', 'unpin', NAME, '--reason', 'replaced', '--url', v.url, '--token', AUDITOR, '--json');
    expect(forbidden.code).toBe(2);
    expect((forbidden.json as { error: { code: string; details: { serverCode: string; status: number } } }).error).toMatchObject({ code: 'CLI_HTTP', details: { serverCode: 'AUTH_FORBIDDEN', status: 403 } });
    const bad = await cliAsync('node', 'unpin', NAME, '--reason', 'replaced', '--ak', 'XYZ', '--url', v.url, '--token', ADMIN, '--json');
    expect(bad.code).toBe(2);
    expect(errCode(bad.json)).toBe('CLI_USAGE');
    const stale = await cliAsync('node', 'unpin', NAME, '--reason', 'replaced', '--ak', akOf(other), '--url', v.url, '--token', ADMIN, '--json');
    expect(stale.code).toBe(2);
    expect((stale.json as { error: { details: { serverCode: string } } }).error.details.serverCode).toBe('NODE_PIN_CHANGED');
    expect(stale.stderr).toContain('NODE_PIN_CHANGED');
    const missing = cli('node', 'unpin', NAME, '--reason', 'replaced');
    expect(missing.code).toBe(2);

    const done = await cliAsync('node', 'unpin', NAME, '--reason', 'machine replaced', '--ak', akOf(sim), '--url', v.url, '--token', ADMIN, '--json');
    expect(done.stderr).toBe('');
    expect(done.code).toBe(0);
    expect(done.json).toMatchObject({ name: NAME, revoked: false });
    expect(done.json).not.toHaveProperty('pinnedAkSha256');

    const replacement = await attest(other);
    expect(replacement.appraisal.verdict).toBe('pass');
    expect((await attest(sim)).appraisal.verdict).toBe('fail');
    const after = await cliAsync('node', 'list', '--url', v.url, '--token', AUDITOR, '--json');
    expect((after.json as { nodes: NodeState[] }).nodes[0]).toMatchObject({ pinnedAkSha256: akOf(other), pinnedAkRecordId: replacement.recordId });
  });

  it('audit verify reproduces every verdict, the pin failures too, and verifies the ak-pins log (offline and over HTTP)', async () => {
    const list = await cliAsync('audit', 'list', '--url', v.url, '--token', AUDITOR, '--kind', 'ak-unpin', '--json');
    expect(list.code).toBe(0);
    expect((list.json as { records: Array<{ kind: string; log: string; body: Record<string, unknown> }> }).records).toEqual([
      expect.objectContaining({ kind: 'ak-unpin', log: 'ak-pins', body: expect.objectContaining({ akPublicSha256: akOf(sim), reason: 'machine replaced', by: 'ops' }) }),
    ]);
    const online = await cliAsync('audit', 'verify', '--url', v.url, '--token', AUDITOR, '--json');
    expect(online.code).toBe(0);
    expect((online.json as { chains: Array<{ log: string; count: number }> }).chains).toContainEqual(expect.objectContaining({ log: 'ak-pins', count: 1 }));

    const r = cli('audit', 'verify', '--store', store, '--keys', keysDir, '--reappraise', ...trustArgs, '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const re = (r.json as { reappraisals: Array<{ recorded: string; now: string; same: boolean }> }).reappraisals;
    expect(re.map((x) => x.recorded)).toEqual(['pass', 'fail', 'pass', 'fail']);
    expect(re.every((x) => x.same)).toBe(true);
    expect((r.json as { chains: Array<{ log: string; count: number }> }).chains).toContainEqual(expect.objectContaining({ log: 'ak-pins', count: 1 }));
  });
});
