import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '@joinguard/core/testing';
import { createSimCvm, type SimCvm } from '@joinguard/simcvm';

/*
 * `joinguard verify EVIDENCE.json --policy POLICY --json`, spawned as a process. Until main.ts registers the
 * command the built CLI does not know it; the test then bundles the same registerVerify() the way
 * scripts/build.mjs bundles the CLI (esbuild, third-party packages external) and runs that, so the exit codes
 * and JSON are checked either way.
 */

let useBundle = false;
const HARNESS_OUT = join(repoRoot, 'services/cli/dist/verify-harness.mjs');
const HARNESS = `
import { Command } from 'commander';
import { registerVerify } from './src/commands/verify.ts';
const p = new Command('joinguard').exitOverride();
registerVerify(p);
p.commands.forEach((c) => c.exitOverride());
try { await p.parseAsync(process.argv.slice(2), { from: 'user' }); } catch (e) { process.exitCode = e.exitCode === 0 ? 0 : 2; }
`;

async function bundleHarness(): Promise<void> {
  const { build } = await import('esbuild');
  await build({
    stdin: { contents: HARNESS, resolveDir: join(repoRoot, 'services/cli'), loader: 'ts' },
    outfile: HARNESS_OUT,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'warning',
    plugins: [
      {
        name: 'external-third-party',
        setup(b) {
          b.onResolve({ filter: /^[^./]/ }, (args) => (args.path.startsWith('@joinguard/') ? undefined : { path: args.path, external: true }));
        },
      },
    ],
  });
}

function cli(...args: string[]): { code: number; json: Record<string, unknown> | undefined; stdout: string; stderr: string } {
  const r = useBundle
    ? spawnSync(process.execPath, [join(repoRoot, 'services/cli/bin/joinguard.js'), 'verify', ...args], { encoding: 'utf8' })
    : spawnSync(process.execPath, [HARNESS_OUT, 'verify', ...args], { encoding: 'utf8' });
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(r.stdout) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  return { code: r.status ?? -1, json, stdout: r.stdout, stderr: r.stderr };
}

const errorOf = (j: Record<string, unknown> | undefined) => j?.error as { code?: string; details?: { check?: string; appraisal?: { verdict: string } } } | undefined;

describe('joinguard verify', () => {
  let dir: string;
  let sim: SimCvm;
  let trust: { snpRootsPem?: string; tdxRootPem?: string; tdxCollateralDir?: string };
  let good: string;
  let policy: string;

  beforeAll(async () => {
    execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: repoRoot });
    const help = spawnSync(process.execPath, [join(repoRoot, 'services/cli/bin/joinguard.js'), 'verify', '--help'], { encoding: 'utf8' });
    useBundle = help.status === 0 && help.stdout.includes('--policy');
    if (!useBundle) await bundleHarness();
    dir = mkdtempSync(join(tmpdir(), 'jg-cli-verify-'));
    sim = await createSimCvm({ tee: 'snp', vtpm: 'software', nodeName: 'cli-node' });
    trust = sim.writeTrust(join(dir, 'trust'));
    good = join(dir, 'good.json');
    writeFileSync(good, JSON.stringify(await sim.evidence()));
    policy = join(dir, 'policy.json');
    writeFileSync(policy, JSON.stringify(sim.goodPolicy()));
  });
  afterAll(async () => {
    await sim?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('exit 0 with the appraisal JSON for a good simulated SNP bundle and its test root', () => {
    const r = cli(good, '--policy', policy, '--snp-test-root', trust.snpRootsPem!, '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const j = r.json as { verified: boolean; appraisal: { verdict: string; checks: { name: string; outcome: string }[] }; bindingDigest: string; measurements: Record<string, string> };
    expect(j.verified).toBe(true);
    expect(j.appraisal.verdict).toBe('pass');
    expect(j.appraisal.checks.slice(0, 3).map((c) => c.name)).toEqual(['evidence.decode', 'snp.hardware', 'binding.reportData']);
    expect(j.bindingDigest).toMatch(/^[0-9a-f]{128}$/);
    expect(j.measurements.measurement).toMatch(/^[0-9a-f]{96}$/);
  });

  it('exit 1 naming snp.hardware when the test root is not configured', () => {
    const r = cli(good, '--policy', policy, '--json');
    expect(r.code).toBe(1);
    expect(r.json?.verified).toBe(false);
    expect(errorOf(r.json)?.code).toMatch(/^SNP_/);
    expect(errorOf(r.json)?.details?.check).toBe('snp.hardware');
  });

  it('exit 1 naming the binding when runtimeData was changed after binding', async () => {
    const f = join(dir, 'tampered.json');
    writeFileSync(f, JSON.stringify(await sim.evidence({ tamper: { runtimeDataAfterBinding: { nodeName: 'someone-else' } } })));
    const r = cli(f, '--policy', policy, '--snp-test-root', trust.snpRootsPem!, '--json');
    expect(r.code).toBe(1);
    expect(errorOf(r.json)?.code).toBe('APPRAISE_REPORT_DATA_MISMATCH');
    expect(errorOf(r.json)?.details?.check).toBe('binding.reportData');
  });

  it('exit 1 naming the policy rule when the policy refuses the measurement', () => {
    const p = sim.goodPolicy();
    p.referenceValues![0]!.snp = { measurement: ['00'.repeat(48)] };
    const f = join(dir, 'strict.json');
    writeFileSync(f, JSON.stringify(p));
    const r = cli(good, '--policy', f, '--snp-test-root', trust.snpRootsPem!, '--json');
    expect(r.code).toBe(1);
    expect(errorOf(r.json)?.code).toBe('POLICY_MEASUREMENT_MISMATCH');
    expect(errorOf(r.json)?.details?.check).toBe('policy.snp.measurement');
  });

  it('exit 2 for unusable input: no policy, evidence that is not JSON, a bad --at', () => {
    expect(cli(good, '--json').code).toBe(2);
    const notJson = join(dir, 'x.json');
    writeFileSync(notJson, 'not json');
    const r = cli(notJson, '--policy', policy, '--json');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/CLI_BAD_EVIDENCE/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(cli(good, '--policy', policy, '--at', 'yesterday', '--json').code).toBe(2);
  });

  it.each([
    ['[]', 'an array'],
    ['null', 'null'],
    ['42', 'a number'],
    ['"evidence"', 'a string'],
  ])('exit 2 for JSON that is not an evidence bundle at all: %s', (content, what) => {
    const f = join(dir, `not-a-bundle-${what.replace(/\W/g, '')}.json`);
    writeFileSync(f, content);
    const r = cli(f, '--policy', policy, '--snp-test-root', trust.snpRootsPem!, '--json');
    expect(r.code).toBe(2);
    expect(errorOf(r.json)?.code).toBe('CLI_BAD_EVIDENCE');
    expect(r.stderr).toContain(`CLI_BAD_EVIDENCE: evidence ${f} is ${what}, not an evidence bundle`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('an object that is not valid evidence is still evidence rejected (exit 1)', () => {
    const f = join(dir, 'empty-object.json');
    writeFileSync(f, '{}');
    const r = cli(f, '--policy', policy, '--snp-test-root', trust.snpRootsPem!, '--json');
    expect(r.code).toBe(1);
    expect(r.json?.verified).toBe(false);
    expect(errorOf(r.json)?.details?.check).toBe('evidence.decode');
  });

  it('a simulated TDX bundle passes with --tdx-test-root and --tdx-collateral, and fails without the collateral', async () => {
    const tdx = await createSimCvm({ tee: 'tdx', vtpm: 'software', nodeName: 'cli-tdx' });
    try {
      const t = tdx.writeTrust(join(dir, 'tdx-trust'));
      const f = join(dir, 'tdx.json');
      writeFileSync(f, JSON.stringify(await tdx.evidence()));
      const p = join(dir, 'tdx-policy.json');
      writeFileSync(p, JSON.stringify(tdx.goodPolicy()));
      const ok = cli(f, '--policy', p, '--tdx-test-root', t.tdxRootPem!, '--tdx-collateral', t.tdxCollateralDir!, '--json');
      expect(ok.stderr).toBe('');
      expect(ok.code).toBe(0);
      const no = cli(f, '--policy', p, '--tdx-test-root', t.tdxRootPem!, '--json');
      expect(no.code).toBe(1);
      expect(errorOf(no.json)?.code).toBe('APPRAISE_TDX_NO_COLLATERAL');
    } finally {
      await tdx.close();
    }
  });
});
