import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCli, cliAsync, errCode } from './support.js';

let dir: string;

beforeAll(() => {
  buildCli();
  dir = mkdtempSync(join(tmpdir(), 'jg-cli-demo-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('joinguard demo', () => {
  it('runs the whole flow on both simulated TEEs and the offline audit, every step as it should be', async () => {
    const r = await cliAsync('demo', '--dir', join(dir, 'kept'), '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const j = r.json as { ok: boolean; dir: string; audit: string; steps: { step: string; ok: boolean; detail: string }[] };
    expect(j.ok).toBe(true);
    const names = j.steps.map((s) => s.step);
    const perNode = ['attest', 'result', 'disk key', 'replay', "another node's key", 'altered boot', 'key after a failure'];
    expect(names).toEqual(['verifier', ...perNode.map((s) => `snp-worker-0: ${s}`), ...perNode.map((s) => `tdx-worker-0: ${s}`), 'audit, offline']);
    expect(j.steps.filter((s) => !s.ok)).toEqual([]);
    const detail = (step: string) => j.steps.find((s) => s.step === step)!.detail;
    // The refusals are the verifier's own codes, not just "not 200".
    expect(detail('snp-worker-0: replay')).toContain('PROTOCOL_NONCE_REPLAYED');
    expect(detail('tdx-worker-0: another node\'s key')).toContain('KEYS_NODE_MISMATCH');
    expect(detail('tdx-worker-0: key after a failure')).toContain('KEYS_RESULT_FAILED');
    expect(detail('snp-worker-0: altered boot')).toMatch(/verdict fail, first failed check eventlog\.replay/);
    expect(detail('tdx-worker-0: result')).toMatch(/tee tdx, TCB UpToDate/);
    // Two passes and two failures re-run offline from the store.
    expect(detail('audit, offline')).toMatch(/appraisals 4\b.*4 appraisals re-run/);
    expect(j.audit).toMatch(/^joinguard audit verify --store .*records\.sqlite --keys .* --reappraise /);
  });

  it('keeps what it ran on with --dir: a config that names the test roots it trusts, and the store', () => {
    const kept = join(dir, 'kept');
    const config = YAML.parse(readFileSync(join(kept, 'verifier.yaml'), 'utf8')) as { trust: { snpTestRoots: string[]; tdxTestRoots: string[] }; policy: { pools: { name: string }[] } };
    expect(config.trust.snpTestRoots).toHaveLength(1);
    expect(config.trust.tdxTestRoots).toHaveLength(1);
    expect(config.policy.pools.map((p) => p.name)).toEqual(['snp-workers', 'tdx-workers']);
    expect(readFileSync(join(kept, 'verifier.yaml'), 'utf8')).toMatch(/never use it in production/);
    expect(existsSync(join(kept, 'data', 'records.sqlite'))).toBe(true);
  });

  it('refuses a --dir that is not empty, leaving what is there as it was', async () => {
    const kept = join(dir, 'kept');
    const before = readFileSync(join(kept, 'data', 'records.sqlite'));
    const r = await cliAsync('demo', '--dir', kept, '--json');
    expect(r.code).toBe(2);
    expect(errCode(r.json)).toBe('CLI_USAGE');
    expect(r.stderr).toMatch(/is not empty/);
    expect(readFileSync(join(kept, 'data', 'records.sqlite')).equals(before)).toBe(true);
  });

  it('refuses a --dir that is a file or cannot be made, before doing anything', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    for (const d of [file, join(file, 'below')]) {
      const r = await cliAsync('demo', '--dir', d, '--json');
      expect(r.code, d).toBe(2);
      expect(errCode(r.json)).toBe('CLI_USAGE');
    }
    expect(readFileSync(file, 'utf8')).toBe('x');
  });

  it('removes its temporary directory when every step passed', async () => {
    const r = await cliAsync('demo', '--json');
    expect(r.code).toBe(0);
    const j = r.json as { ok: boolean; dir: string };
    expect(j.ok).toBe(true);
    expect(existsSync(j.dir)).toBe(false);
  });

  it('prints one line per step without --json', async () => {
    const r = await cliAsync('demo');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('ok   '))).toHaveLength(16);
    expect(lines.at(-1)).toBe('every step behaved as it should');
  });
});
