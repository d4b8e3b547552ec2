import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Command } from 'commander';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { expectedDecodedFields, repoRoot } from '@joinguard/core/testing';
import { createSimCvm, type SimCvm } from '@joinguard/simcvm';
import type { AttestResponse, Evidence } from '@joinguard/protocol';
import { defaultConfig, startVerifier, type RunningVerifier } from '@joinguard/verifier';
import { registerPolicy } from '../src/commands/policy.js';
import { openStoreFile } from '../src/store-file.js';
import { bootClaims, snpClaimsFromVector } from '../../../packages/policy/test/fixtures.js';

// In-process: main.ts does not register the policy commands yet, so the bundle cannot be spawned.
// Runs the command through commander exactly as main() does and captures stdout, stderr and the exit code.
async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const program = new Command('joinguard').exitOverride();
  registerPolicy(program);
  const apply = (c: Command): void => {
    c.exitOverride();
    c.configureOutput({ writeOut: () => {}, writeErr: () => {} });
    c.commands.forEach(apply);
  };
  apply(program);
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
    stdout += String(s);
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
    stderr += String(s);
    return true;
  });
  process.exitCode = undefined;
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (e) {
    process.exitCode = (e as { exitCode?: number }).exitCode === 0 ? 0 : 2;
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = undefined;
  return { code, stdout, stderr };
}

const example = join(repoRoot, 'packages/policy/examples/worker-pool.yaml');
let dir: string;

interface SnpFields {
  policy: string;
  vmpl: number;
  guest_svn: number;
  measurement: string;
  host_data: string;
  id_key_digest: string;
  author_key_digest: string;
  reported_tcb: { bootloader: number; tee: number; snp: number; microcode: number };
}

/** AppraisalClaims of a real SNP report, from the independent decoder's fields (the policy package's fixture). */
const snpClaims = (rel: string): Record<string, unknown> => snpClaimsFromVector(rel) as unknown as Record<string, unknown>;
/** The report's claims with a measured boot (Secure Boot on, every event verified), which every policy requires by default. */
const measuredSnpClaims = (rel: string): Record<string, unknown> => ({ ...snpClaims(rel), boot: bootClaims() });

const write = (name: string, content: unknown) => {
  const p = join(dir, name);
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
  return p;
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'joinguard-policy-cli-'));
});
afterEach(() => {
  vi.restoreAllMocks();
});

describe('joinguard policy check', () => {
  it('accepts the example policy: exit 0, digest, reference-value validity', async () => {
    const r = await run(['policy', 'check', example, '--at', '2026-11-23T00:00:00Z', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ valid: true, name: 'worker-pool' });
    expect(j.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(j.referenceValues).toEqual(
      expect.arrayContaining([
        { id: 'rhcos-boot', version: '4.16.3', validity: 'active', expires: '2026-12-31T00:00:00Z' },
        { id: 'rhcos-boot', version: '4.16.8', validity: 'active' },
      ]),
    );
    const later = JSON.parse((await run(['policy', 'check', example, '--at', '2027-01-01T00:00:00Z', '--json'])).stdout);
    expect(later.referenceValues.find((x: { version: string }) => x.version === '4.16.3').validity).toBe('expired');
    expect(later.warnings.map((w: { code: string }) => w.code)).toEqual(['POLICY_REFERENCE_EXPIRED']);
  });

  it('gives the same digest for the policy as JSON with its keys reordered', async () => {
    const doc = parseYaml(readFileSync(example, 'utf8')) as Record<string, unknown>;
    const reversed = Object.fromEntries(Object.entries(doc).reverse());
    const a = JSON.parse((await run(['policy', 'check', example, '--json'])).stdout).digest;
    const b = JSON.parse((await run(['policy', 'check', write('reversed.json', reversed), '--json'])).stdout).digest;
    expect(b).toBe(a);
  });

  it('exits 2 with schema errors and their JSON paths', async () => {
    const bad = write('bad.yaml', 'apiVersion: joinguard.io/v1alpha1\nkind: AppraisalPolicy\nname: x\ntee: {allowed: [sgx]}\nsnp: {minimumTcb: {microcode: "high"}}\n');
    const r = await run(['policy', 'check', bad, '--json']);
    expect(r.code).toBe(2);
    const j = JSON.parse(r.stdout);
    expect(j.error.code).toBe('POLICY_SCHEMA');
    expect(j.error.details.errors.map((e: { path: string }) => e.path)).toEqual(['$.tee.allowed[0]', '$.snp.minimumTcb.microcode']);
    const text = await run(['policy', 'check', bad]);
    expect(text.code).toBe(2);
    expect(text.stderr).toContain('$.tee.allowed[0]');
    expect(text.stderr).toContain('$.snp.minimumTcb.microcode');
  });

  it('exits 2 with semantic errors: expired-only references, TCB out of range, regexes that do not compile', async () => {
    const bad = write('semantic.yaml', [
      'apiVersion: joinguard.io/v1alpha1',
      'kind: AppraisalPolicy',
      'name: x',
      'tee: {allowed: [snp]}',
      'snp: {minimumTcb: {snp: 256}}',
      'boot: {kernelCmdline: {forbidden: ["(init"]}}',
      'referenceValues:',
      `  - {id: os, version: "1", expires: "2025-01-01T00:00:00Z", snp: {measurement: ["${'ab'.repeat(48)}"]}}`,
    ].join('\n'));
    const r = await run(['policy', 'check', bad, '--at', '2026-11-23T00:00:00Z', '--json']);
    expect(r.code).toBe(2);
    const j = JSON.parse(r.stdout);
    expect(j.error.code).toBe('POLICY_SEMANTIC');
    expect(j.error.details.errors.map((e: { code: string }) => e.code).sort()).toEqual(['POLICY_BAD_REGEX', 'POLICY_REFERENCE_EXPIRED', 'POLICY_TCB_OUT_OF_RANGE']);
  });

  it('exits 2 for a missing file and for unparseable text', async () => {
    expect((await run(['policy', 'check', join(dir, 'absent.yaml')])).code).toBe(2);
    const r = await run(['policy', 'check', write('broken.yaml', 'a: [1, 2'), '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout).error.code).toBe('POLICY_INVALID');
  });
});

describe('joinguard policy learn, evaluate, dry-run', () => {
  it('learns common values and reports what differs', async () => {
    const a = write('node-a.json', snpClaims('snp/virtee_milan_v2/report.bin'));
    const b = write('node-b.json', { name: 'node-b', claims: snpClaims('snp/trustee_e2e_genoa_v3/report.reconstructed.bin') });
    const r = await run(['policy', 'learn', a, b, '--id', 'fw', '--ref-version', '3', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.nodes).toEqual(['node-a', 'node-b']);
    const fa = expectedDecodedFields()['snp/virtee_milan_v2/report.bin'] as unknown as SnpFields;
    const fb = expectedDecodedFields()['snp/trustee_e2e_genoa_v3/report.reconstructed.bin'] as unknown as SnpFields;
    expect(j.differing).toEqual(expect.arrayContaining([{ key: 'snp.measurement', values: { 'node-a': fa.measurement, 'node-b': fb.measurement } }]));
    expect(j.referenceValue).toMatchObject({ id: 'fw', version: '3', snp: { hostData: [fa.host_data] } });
    expect(j.policy.snp.minimumTcb).toEqual({
      bootloader: Math.min(fa.reported_tcb.bootloader, fb.reported_tcb.bootloader),
      tee: Math.min(fa.reported_tcb.tee, fb.reported_tcb.tee),
      snp: Math.min(fa.reported_tcb.snp, fb.reported_tcb.snp),
      microcode: Math.min(fa.reported_tcb.microcode, fb.reported_tcb.microcode),
    });
    // Text mode prints a YAML draft that `policy check` accepts.
    const t = await run(['policy', 'learn', a, b]);
    expect(t.stdout).toContain('# differs per node, left out: snp.measurement');
    const draft = write('draft.yaml', t.stdout);
    expect((await run(['policy', 'check', draft])).code).toBe(0);
  });

  it('refuses claims files that are not AppraisalClaims (exit 2)', async () => {
    const r = await run(['policy', 'learn', write('junk.json', { tee: 'sgx' }), '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout).error.code).toBe('POLICY_CLAIMS_INVALID');
  });

  it('evaluate exits 0 on pass and 1 with every failed rule on rejection', async () => {
    const good = write('good.json', measuredSnpClaims('snp/virtee_milan_v2/report.bin'));
    const debug = write('debug.json', measuredSnpClaims('snp/gosevguest_milan_v2/report.bin'));
    const pol = write('snp.json', { apiVersion: 'joinguard.io/v1alpha1', kind: 'AppraisalPolicy', name: 'snp', tee: { allowed: ['snp'] } });
    const ok = await run(['policy', 'evaluate', '--policy', pol, good, '--json']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ verified: true, verdict: 'pass' });
    const no = await run(['policy', 'evaluate', '--policy', pol, debug, '--json']);
    expect(no.code).toBe(1);
    const j = JSON.parse(no.stdout);
    expect(j.error.code).toBe('POLICY_REJECTED');
    // The go-sev-guest report's guest policy 0xb0000 has DEBUG (bit 19) set.
    expect(j.error.details.failures).toEqual([expect.objectContaining({ rule: 'snp.policy.debug', expected: false, actual: true, path: 'snp.policy.debug' })]);
  });

  it('dry-run compares stored verdicts with the draft', async () => {
    const stored = write('stored.json', [
      { name: 'a', claims: measuredSnpClaims('snp/virtee_milan_v2/report.bin'), verdict: 'pass' },
      { name: 'b', claims: measuredSnpClaims('snp/trustee_e2e_genoa_v3/report.reconstructed.bin'), verdict: 'pass' },
    ]);
    const draft = write('draft-tcb.json', { apiVersion: 'joinguard.io/v1alpha1', kind: 'AppraisalPolicy', name: 'd', tee: { allowed: ['snp'] }, snp: { minimumTcb: { microcode: 100 } } });
    const r = await run(['policy', 'dry-run', '--policy', draft, stored, '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    // virtee Milan reports microcode 115, the Genoa report 25 (MANIFEST.md).
    expect(j.items.map((i: { id: string; oldVerdict: string; newVerdict: string }) => [i.id, i.oldVerdict, i.newVerdict])).toEqual([
      ['a', 'pass', 'pass'],
      ['b', 'pass', 'fail'],
    ]);
    expect(j.newlyFailing).toEqual(['b']);
  });

  it('prints the schema and a default policy that checks clean', async () => {
    const s = await run(['policy', 'schema']);
    expect(JSON.parse(s.stdout).title).toBe('joinguard appraisal policy');
    const d = await run(['policy', 'default']);
    const f = write('default.yaml', d.stdout);
    const c = await run(['policy', 'check', f, '--json']);
    expect(c.code).toBe(0);
    expect(JSON.parse(c.stdout).warnings).toEqual([]);
  });
});

/*
 * Evidence in place of claims: bundles of two simulated SNP CVMs (one test root, trusted only through
 * --snp-test-root, as with `joinguard verify`) whose kernel command lines differ, and a verifier store holding
 * real appraisal records of them.
 */
describe('joinguard policy learn and dry-run over evidence bundles and a verifier store', () => {
  let a: SimCvm;
  let b: SimCvm;
  let root: string;
  let evA: string;
  let evB: string;
  let evA2: string;
  let evBad: string;
  let v: RunningVerifier | undefined;
  let storeFile: string;
  const rec: { passA: string; failA: string; passB: string } = { passA: '', failA: '', passB: '' };
  const AT = () => new Date().toISOString();

  /** A draft that asks for a higher SNP firmware (snp 15) than the simulated CVMs report (snp 14). */
  const strictDraft = () => {
    const p = a.goodPolicy();
    p.name = 'stricter-tcb';
    p.snp!.minimumTcb = { ...p.snp!.minimumTcb, snp: 15 };
    return write('strict-draft.json', p);
  };

  beforeAll(async () => {
    a = await createSimCvm({ tee: 'snp', vtpm: 'software', nodeName: 'learn-a' });
    b = await createSimCvm({ tee: 'snp', vtpm: 'software', nodeName: 'learn-b', pkiFrom: a, boot: { kernelCmdline: `${a.boot.kernelCmdline} node=b` } });
    root = a.writeTrust(join(dir, 'sim-trust')).snpRootsPem!;
    evA = write('evidence-a.json', await a.evidence());
    evB = write('evidence-b.json', await b.evidence());
    evA2 = write('evidence-a-again.json', await a.evidence());
    evBad = write('evidence-bad.json', await a.evidence({ tamper: { runtimeDataAfterBinding: { nodeName: 'learn-x' } } }));

    // A verifier with the same test root and a policy for both nodes' command lines records appraisals:
    // learn-a passes, then fails (a PCR changed after the quote); learn-b passes.
    const policy = a.goodPolicy();
    policy.referenceValues![0]!.boot!.kernelCmdline = [a.boot.kernelCmdline, b.boot.kernelCmdline];
    policy.referenceValues![0]!.pcrs = {};
    const policyFile = write('verifier-policy.yaml', toYaml(policy));
    const base = defaultConfig(join(dir, 'verifier'));
    v = await startVerifier({ ...base, listen: { host: '127.0.0.1', port: 0 }, policy: { file: policyFile }, trust: { snpTestRoots: [root], tdxTestRoots: [] }, logLevel: 'silent' });
    storeFile = base.store.kind === 'sqlite' ? base.store.path : '';
    const attest = async (sim: SimCvm, tamper?: { pcr: { index: number; value: string } }) => {
      const { nonce } = (await (await fetch(`${v!.url}/v1/challenge`)).json()) as { nonce: string };
      const ev: Evidence = await sim.evidence({ nonce, ...(tamper ? { tamper } : {}) });
      return (await (await fetch(`${v!.url}/v1/attest`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ev) })).json()) as AttestResponse;
    };
    const pa = await attest(a);
    expect(pa.appraisal.verdict).toBe('pass');
    rec.passA = pa.recordId;
    const fa = await attest(a, { pcr: { index: 7, value: 'ab'.repeat(32) } });
    expect(fa.appraisal.verdict).toBe('fail');
    rec.failA = fa.recordId;
    const pb = await attest(b);
    expect(pb.appraisal.verdict).toBe('pass');
    rec.passB = pb.recordId;
  });
  afterAll(async () => {
    await v?.close();
    await a?.close();
    await b?.close();
  });

  it('learn takes evidence: appraises it with --snp-test-root, keeps what both nodes share and reports the command lines', async () => {
    const r = await run(['policy', 'learn', evA, evB, '--snp-test-root', root, '--id', 'os', '--ref-version', '2', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    // Nodes are named by the runtimeData.nodeName their evidence binds.
    expect(j.nodes).toEqual(['learn-a', 'learn-b']);
    const good = a.goodPolicy().referenceValues![0]!;
    expect(j.referenceValue).toMatchObject({ id: 'os', version: '2', snp: { measurement: good.snp!.measurement } });
    expect(j.referenceValue.boot.bootApps).toEqual(a.boot.bootApps.map((x) => x.digestSha256));
    expect(j.referenceValue.pcrs.sha256['7']).toEqual(good.pcrs!.sha256!['7']);
    // The kernel command line (and PCR 8, which measures it) differ per node and are left out.
    expect(j.referenceValue.pcrs.sha256['8']).toBeUndefined();
    expect(j.differing).toEqual(
      expect.arrayContaining([
        { key: 'boot.kernelCmdline', values: { 'learn-a': [a.boot.kernelCmdline], 'learn-b': [b.boot.kernelCmdline] } },
        expect.objectContaining({ key: 'pcrs.sha256.8' }),
      ]),
    );
    expect(j.policy.tee.allowed).toEqual(['snp']);
    expect(j.policy.snp.minimumTcb).toMatchObject({ bootloader: 3, tee: 0, snp: 14, microcode: 209 });
  });

  it('learn mixes evidence and claims files, and names a node seen twice by its file', async () => {
    const claims = write('claims-milan.json', { name: 'milan', claims: snpClaims('snp/virtee_milan_v2/report.bin') });
    const r = await run(['policy', 'learn', evA, evA2, claims, '--snp-test-root', root, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).nodes).toEqual(['learn-a', 'learn-a@evidence-a-again', 'milan']);
  });

  it('learn refuses evidence that does not verify (exit 1 naming the node and the check)', async () => {
    const untrusted = await run(['policy', 'learn', evA, evB, '--json']);
    expect(untrusted.code).toBe(1);
    const u = JSON.parse(untrusted.stdout).error;
    expect(u.code).toMatch(/^SNP_/);
    expect(u.details).toMatchObject({ node: 'learn-a', check: 'snp.hardware' });
    const tampered = await run(['policy', 'learn', evA, evBad, '--snp-test-root', root, '--json']);
    expect(tampered.code).toBe(1);
    expect(JSON.parse(tampered.stdout).error).toMatchObject({ code: 'APPRAISE_REPORT_DATA_MISMATCH', details: { node: 'learn-x', check: 'binding.reportData' } });
    const text = await run(['policy', 'learn', evBad, '--snp-test-root', root]);
    expect(text.code).toBe(1);
    expect(text.stderr).toMatch(/APPRAISE_REPORT_DATA_MISMATCH: evidence of learn-x does not verify \(binding\.reportData/);
  });

  it('learn and dry-run exit 2 for unusable trust options and evidence, evaluate refuses evidence', async () => {
    expect((await run(['policy', 'learn', evA, '--snp-test-root', join(dir, 'absent.pem'), '--json'])).code).toBe(2);
    expect((await run(['policy', 'learn', evA, '--tdx-collateral', join(dir, 'absent-dir'), '--json'])).code).toBe(2);
    const notRoot = write('not-a-root.pem', 'not a PEM');
    expect((await run(['policy', 'learn', evA, '--snp-test-root', notRoot, '--json'])).code).toBe(2);
    const e = await run(['policy', 'evaluate', '--policy', write('any.json', a.goodPolicy()), evA, '--json']);
    expect(e.code).toBe(2);
    expect(e.stderr).toMatch(/evidence bundle.*joinguard verify/);
  });

  it('a draft learned from the evidence passes that evidence in a dry run', async () => {
    const learned = await run(['policy', 'learn', evA, evB, '--snp-test-root', root]);
    expect(learned.code).toBe(0);
    const draft = write('learned-from-evidence.yaml', learned.stdout);
    const r = await run(['policy', 'dry-run', '--policy', draft, evA, evB, '--snp-test-root', root, '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.items.map((i: { id: string; newVerdict: string }) => [i.id, i.newVerdict])).toEqual([
      ['learn-a', 'pass'],
      ['learn-b', 'pass'],
    ]);
    expect(j.unverified).toEqual([]);
  });

  it('dry-run over evidence: the draft against the current policy, with evidence that does not verify set apart', async () => {
    const current = write('current-a.json', a.goodPolicy());
    const r = await run(['policy', 'dry-run', '--policy', strictDraft(), '--current', current, evA, evBad, '--snp-test-root', root, '--at', AT(), '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.items).toHaveLength(1);
    expect(j.items[0]).toMatchObject({ id: 'learn-a', oldVerdict: 'pass', newVerdict: 'fail', changed: true });
    expect(j.items[0].newFailures).toEqual([expect.objectContaining({ rule: 'snp.tcb.minimum', expected: { snp: 15 }, actual: { snp: 14 } })]);
    expect(j.newlyFailing).toEqual(['learn-a']);
    expect(j.unverified).toEqual([expect.objectContaining({ id: 'learn-x', check: 'binding.reportData', code: 'APPRAISE_REPORT_DATA_MISMATCH' })]);
    const t = await run(['policy', 'dry-run', '--policy', strictDraft(), '--current', current, evA, evBad, '--snp-test-root', root]);
    expect(t.stdout).toContain('learn-a: pass -> fail (changed); new failures: snp.tcb.minimum');
    expect(t.stdout).toMatch(/learn-x: fail \(evidence does not verify: binding\.reportData \[APPRAISE_REPORT_DATA_MISMATCH\]/);
  });

  it('dry-run --store: the claims of every stored appraisal (from its evidence) against the draft, beside the stored verdicts', async () => {
    const r = await run(['policy', 'dry-run', '--policy', strictDraft(), '--store', storeFile, '--snp-test-root', root, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.items.map((i: { id: string; oldVerdict: string; newVerdict: string }) => [i.id, i.oldVerdict, i.newVerdict])).toEqual([
      [`learn-a/${rec.passA}`, 'pass', 'fail'],
      [`learn-b/${rec.passB}`, 'pass', 'fail'],
    ]);
    expect(j.newlyFailing).toEqual([`learn-a/${rec.passA}`, `learn-b/${rec.passB}`]);
    // The record whose quote did not verify keeps its verdict under any policy.
    expect(j.unverified).toEqual([{ id: `learn-a/${rec.failA}`, check: 'tpm.quote', code: 'TPM_QUOTE_PCR_DIGEST_MISMATCH', message: expect.any(String), oldVerdict: 'fail' }]);
    // The verifier's own policy passes what it passed.
    const same = await run(['policy', 'dry-run', '--policy', join(dir, 'verifier-policy.yaml'), '--store', storeFile, '--snp-test-root', root, '--json']);
    expect(JSON.parse(same.stdout)).toMatchObject({ passing: 2, failing: 0, newlyFailing: [], newlyPassing: [] });
  });

  it('dry-run --store derives the claims from the stored evidence: records keep none, and without the test root nothing verifies', async () => {
    const store = await openStoreFile(storeFile);
    try {
      const got = await store.get(rec.passA);
      expect(got?.record.kind).toBe('appraisal');
      expect(got?.record.body).not.toHaveProperty('claims');
      expect(got?.record.body).toHaveProperty('evidence');
    } finally {
      await store.close();
    }
    const r = await run(['policy', 'dry-run', '--policy', strictDraft(), '--store', storeFile, '--node', 'learn-b', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.items).toEqual([]);
    expect(j.unverified).toEqual([expect.objectContaining({ id: `learn-b/${rec.passB}`, check: 'snp.hardware', code: 'SNP_CHAIN_ISSUER_MISMATCH', oldVerdict: 'pass' })]);
  });

  it('dry-run --store --node and --latest select records; files and the store combine', async () => {
    const node = JSON.parse((await run(['policy', 'dry-run', '--policy', strictDraft(), '--store', storeFile, '--snp-test-root', root, '--node', 'learn-b', '--json'])).stdout);
    expect(node.items.map((i: { id: string }) => i.id)).toEqual([`learn-b/${rec.passB}`]);
    expect(node.unverified).toEqual([]);
    const latest = JSON.parse((await run(['policy', 'dry-run', '--policy', strictDraft(), '--store', storeFile, '--snp-test-root', root, '--latest', '--json'])).stdout);
    // learn-a's latest appraisal is the failed one.
    expect(latest.items.map((i: { id: string }) => i.id)).toEqual([`learn-b/${rec.passB}`]);
    expect(latest.unverified.map((u: { id: string }) => u.id)).toEqual([`learn-a/${rec.failA}`]);
    const both = JSON.parse((await run(['policy', 'dry-run', '--policy', strictDraft(), evB, '--snp-test-root', root, '--store', storeFile, '--node', 'learn-a', '--json'])).stdout);
    expect(both.items.map((i: { id: string }) => i.id)).toEqual(['learn-b', `learn-a/${rec.passA}`]);
  });

  it('dry-run exits 2 without inputs, for --latest without --store, and for a store file that does not exist', async () => {
    const draft = strictDraft();
    expect((await run(['policy', 'dry-run', '--policy', draft, '--json'])).code).toBe(2);
    expect((await run(['policy', 'dry-run', '--policy', draft, evA, '--latest', '--json'])).code).toBe(2);
    const missing = await run(['policy', 'dry-run', '--policy', draft, '--store', join(dir, 'absent.sqlite'), '--json']);
    expect(missing.code).toBe(2);
    expect(JSON.parse(missing.stdout).error.code).toBe('INPUT_NOT_FOUND');
    expect((await run(['policy', 'dry-run', '--policy', draft, '--store', storeFile, '--node', 'Not_A_Node', '--json'])).code).toBe(2);
  });
});
