import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSimCvm, type SimCvm } from '@joinguard/simcvm';
import { KdsClient, kdsCertChainPath, kdsCrlPath, kdsVcekPath } from '@joinguard/snp';
import { createTestCrl } from '@joinguard/snp/testing';
import type { AttestResponse, Evidence } from '@joinguard/protocol';
import { defaultConfig, startVerifier, type VerifierConfig } from '@joinguard/verifier';
import { buildCli, cli, errCode } from './support.js';

/*
 * `--snp-collateral DIR` (an offline AMD KDS cache in the KdsClient({cacheDir}) layout, as the verifier's
 * trust.snpCollateralDir) for `joinguard verify` and `joinguard audit verify --reappraise`: SNP evidence whose
 * hardware.certs carries no VCEK cannot be appraised without it (APPRAISE_SNP_NO_VCEK), fails with
 * SNP_KDS_OFFLINE_MISS when the cache does not hold its VCEK, and passes when it does.
 */

const DAY = 86_400_000;

let dir: string;
let sim: SimCvm;
let snpRoot: string;
let policyFile: string;
/** A KDS cache holding this chip's VCEK, the product's chain and a current CRL. */
let kdsDir: string;
/** A KDS cache folder that holds nothing. */
let emptyKds: string;
/** Evidence without hardware.certs.vcek (other certs kept) and, for contrast, the same kind of bundle with it. */
let noVcekFile: string;
let withVcekFile: string;

function withoutVcek(e: Evidence): Evidence {
  const { vcek: _vcek, ...certs } = e.hardware.certs ?? {};
  void _vcek;
  return { ...e, hardware: { ...e.hardware, certs } };
}

type ErrorJson = { code?: string; details?: { check?: string; failedChecks?: string[] } };
const errorOf = (j: Record<string, unknown> | undefined) => j?.error as ErrorJson | undefined;

beforeAll(async () => {
  buildCli();
  dir = mkdtempSync(join(tmpdir(), 'jg-cli-snp-kds-'));
  sim = await createSimCvm({ tee: 'snp', vtpm: 'software', nodeName: 'kds-node' });
  snpRoot = sim.writeTrust(join(dir, 'trust')).snpRootsPem!;
  policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, YAML.stringify(sim.goodPolicy()));

  // The cache as KdsClient({ cacheDir }) lays it out (see services/verifier/test/collateral-metrics.test.ts).
  kdsDir = join(dir, 'kds-cache');
  const s = sim.signer.snp!;
  const layout = new KdsClient({ cacheDir: kdsDir, offline: true });
  const now = Date.now();
  const crl = await createTestCrl(s.auth, [], new Date(now - DAY), new Date(now + 30 * DAY));
  for (const [f, data] of [
    [layout.cachePath(kdsVcekPath(s.product, s.chipId, s.tcb))!, s.vcek.der],
    [layout.cachePath(kdsCertChainPath(s.product, 'vcek'))!, `${s.auth.ask.pem}\n${s.auth.ark.pem}\n`],
    [layout.cachePath(kdsCrlPath(s.product, 'vcek'))!, crl],
  ] as const) {
    mkdirSync(dirname(f), { recursive: true });
    writeFileSync(f, data);
  }
  emptyKds = join(dir, 'empty-kds-cache');
  mkdirSync(emptyKds);

  const e = await sim.evidence();
  expect(e.hardware.certs?.vcek).toBeDefined();
  noVcekFile = join(dir, 'no-vcek.json');
  writeFileSync(noVcekFile, JSON.stringify(withoutVcek(e)));
  withVcekFile = join(dir, 'with-vcek.json');
  writeFileSync(withVcekFile, JSON.stringify(e));
});

afterAll(async () => {
  await sim?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('joinguard verify --snp-collateral', () => {
  it('evidence without a VCEK: refused without a cache, SNP_KDS_OFFLINE_MISS with a cache lacking it, pass with one holding it', () => {
    const none = cli('verify', noVcekFile, '--policy', policyFile, '--snp-test-root', snpRoot, '--json');
    expect(none.code).toBe(1);
    expect(errorOf(none.json)?.code).toBe('APPRAISE_SNP_NO_VCEK');
    expect(errorOf(none.json)?.details?.check).toBe('snp.hardware');

    const miss = cli('verify', noVcekFile, '--policy', policyFile, '--snp-test-root', snpRoot, '--snp-collateral', emptyKds, '--json');
    expect(miss.code).toBe(1);
    expect(errorOf(miss.json)?.code).toBe('SNP_KDS_OFFLINE_MISS');
    expect(errorOf(miss.json)?.details?.check).toBe('snp.hardware');

    const hit = cli('verify', noVcekFile, '--policy', policyFile, '--snp-test-root', snpRoot, '--snp-collateral', kdsDir, '--json');
    expect(hit.stderr).toBe('');
    expect(hit.code).toBe(0);
    const j = hit.json as { verified: boolean; appraisal: { verdict: string; checks: Array<{ name: string; outcome: string }> } };
    expect(j.verified).toBe(true);
    expect(j.appraisal.checks.find((c) => c.name === 'snp.hardware')?.outcome).toBe('pass');
    expect(hit.stdout).not.toContain(kdsDir);
  });

  it('the cache does not replace the test root, and evidence that carries its VCEK does not need it', () => {
    const untrusted = cli('verify', noVcekFile, '--policy', policyFile, '--snp-collateral', kdsDir, '--json');
    expect(untrusted.code).toBe(1);
    expect(errorOf(untrusted.json)?.details?.check).toBe('snp.hardware');
    expect(errorOf(untrusted.json)?.code).toMatch(/^SNP_/);
    // The empty cache is never consulted for a bundle that carries its VCEK.
    const carried = cli('verify', withVcekFile, '--policy', policyFile, '--snp-test-root', snpRoot, '--snp-collateral', emptyKds, '--json');
    expect(carried.code).toBe(0);
  });

  it('exit 2 for a --snp-collateral that is not a directory', () => {
    for (const bad of [join(dir, 'no-such-dir'), policyFile]) {
      const r = cli('verify', noVcekFile, '--policy', policyFile, '--snp-test-root', snpRoot, '--snp-collateral', bad, '--json');
      expect(r.code).toBe(2);
      expect(errCode(r.json)).toBe('CLI_USAGE');
      expect(r.stderr).toMatch(/--snp-collateral .* is not a directory/);
    }
  });
});

describe('joinguard audit verify --reappraise --snp-collateral', () => {
  let store: string;
  let keysDir: string;
  const ids: { noVcek: string; withVcek: string } = { noVcek: '', withVcek: '' };

  beforeAll(async () => {
    // A verifier with the same cache records one appraisal of evidence without a VCEK and one with it.
    const base = defaultConfig(join(dir, 'data'));
    const config: VerifierConfig = {
      ...base,
      listen: { host: '127.0.0.1', port: 0 },
      policy: { file: policyFile },
      trust: { snpTestRoots: [snpRoot], tdxTestRoots: [], snpCollateralDir: kdsDir },
      logLevel: 'silent',
    };
    if (config.store.kind !== 'sqlite') throw new Error('the default store is SQLite');
    store = config.store.path;
    keysDir = config.signing.keysDir;
    const v = await startVerifier(config, { listen: false });
    try {
      for (const k of ['noVcek', 'withVcek'] as const) {
        const { nonce } = (await v.app.inject({ method: 'GET', url: '/v1/challenge' })).json<{ nonce: string }>();
        const e = await sim.evidence({ nonce, runtimeData: { nodeName: k === 'noVcek' ? 'kds-no-vcek' : 'kds-with-vcek', purpose: 'join' } });
        const r = await v.app.inject({ method: 'POST', url: '/v1/attest', payload: k === 'noVcek' ? withoutVcek(e) : e });
        expect(r.statusCode, r.body).toBe(200);
        const a = r.json<AttestResponse>();
        expect(a.appraisal.verdict).toBe('pass');
        ids[k] = a.recordId;
      }
    } finally {
      await v.close();
    }
  });

  const reappraise = (...extra: string[]) => cli('audit', 'verify', '--store', store, '--keys', keysDir, '--reappraise', '--policy', policyFile, '--snp-test-root', snpRoot, ...extra, '--json');
  type Reappraisal = { id: string; recorded?: string; now: string; same: boolean; code?: string; reason?: string };
  const reappraisalsOf = (j: Record<string, unknown> | undefined): Reappraisal[] =>
    ((j?.reappraisals ?? (j?.error as { details?: { reappraisals?: unknown } } | undefined)?.details?.reappraisals) ?? []) as Reappraisal[];

  it('without the cache the stored appraisal without a VCEK does not reproduce (exit 1, naming the check and code)', () => {
    const r = reappraise();
    expect(r.code).toBe(1);
    expect(errCode(r.json)).toBe('AUDIT_REAPPRAISAL_DIFFERS');
    const rs = reappraisalsOf(r.json);
    expect(rs.map((x) => [x.id, x.recorded, x.now, x.same])).toEqual([
      [ids.noVcek, 'pass', 'fail', false],
      [ids.withVcek, 'pass', 'pass', true],
    ]);
    expect(rs[0]).toMatchObject({ code: 'APPRAISE_SNP_NO_VCEK' });
    expect(rs[0]!.reason).toContain('snp.hardware');
  });

  it('with a cache that lacks the VCEK: exit 1 with SNP_KDS_OFFLINE_MISS for that record', () => {
    const r = reappraise('--snp-collateral', emptyKds);
    expect(r.code).toBe(1);
    const rs = reappraisalsOf(r.json);
    expect(rs.map((x) => x.same)).toEqual([false, true]);
    expect(rs[0]).toMatchObject({ id: ids.noVcek, now: 'fail', code: 'SNP_KDS_OFFLINE_MISS' });
  });

  it('with the cache holding it: exit 0, every stored verdict reproduced', () => {
    const r = reappraise('--snp-collateral', kdsDir);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.json?.verified).toBe(true);
    expect(reappraisalsOf(r.json).map((x) => [x.id, x.now, x.same])).toEqual([
      [ids.noVcek, 'pass', true],
      [ids.withVcek, 'pass', true],
    ]);
  });
});
