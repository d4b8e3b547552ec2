import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { expectedDecodedFields, repoRoot } from '@joinguard/core/testing';
import { registerPolicy } from '../src/commands/policy.js';

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

/** AppraisalClaims of a real SNP report, from the independent decoder's fields. */
function snpClaims(rel: string): Record<string, unknown> {
  const f = expectedDecodedFields()[rel] as unknown as SnpFields;
  const p = BigInt(f.policy);
  const bit = (n: bigint) => ((p >> n) & 1n) === 1n;
  const t = f.reported_tcb;
  return {
    tee: 'snp',
    snp: {
      guestSvn: f.guest_svn,
      policy: { smt: bit(16n), migrateMa: bit(18n), debug: bit(19n), singleSocket: bit(20n) },
      vmpl: f.vmpl,
      reportedTcb: { bootloader: t.bootloader, tee: t.tee, snp: t.snp, microcode: t.microcode },
      measurement: f.measurement,
      hostData: f.host_data,
      idKeyDigest: f.id_key_digest,
      authorKeyDigest: f.author_key_digest,
    },
  };
}

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
    const good = write('good.json', snpClaims('snp/virtee_milan_v2/report.bin'));
    const debug = write('debug.json', snpClaims('snp/gosevguest_milan_v2/report.bin'));
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
      { name: 'a', claims: snpClaims('snp/virtee_milan_v2/report.bin'), verdict: 'pass' },
      { name: 'b', claims: snpClaims('snp/trustee_e2e_genoa_v3/report.reconstructed.bin'), verdict: 'pass' },
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
