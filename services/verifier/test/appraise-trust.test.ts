import { copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JoinguardError } from '@joinguard/core';
import { createSimCvm, type SimCvm } from '@joinguard/simcvm';
import { defaultTrust, readCollateralDir } from '../src/appraise/index.js';

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    expect(e).toBeInstanceOf(JoinguardError);
    expect((e as JoinguardError).kind).toBe('input');
    return (e as JoinguardError).code;
  }
}

describe('defaultTrust', () => {
  let sim: SimCvm;
  let dir: string;
  beforeAll(async () => {
    sim = await createSimCvm({ tee: 'tdx', vtpm: 'software' });
    dir = mkdtempSync(join(tmpdir(), 'jg-trust-'));
  });
  afterAll(async () => {
    await sim?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('holds only AMD\'s and Intel\'s roots by default', () => {
    const t = defaultTrust();
    expect(t.snp.products().sort()).toEqual(['genoa', 'milan', 'turin']);
    expect(t.snpExtra).toBeUndefined();
    expect(t.tdxRoots).toHaveLength(1);
    expect(t.tdxRoots[0]!.cert.subject).toMatch(/Intel SGX Root CA/);
    expect(t.tdxCollateral).toBeUndefined();
  });

  it('adds test roots beside them, never in place of them', async () => {
    const snp = await createSimCvm({ tee: 'snp', vtpm: 'software' });
    try {
      const t = defaultTrust({ snpTestRootsPem: snp.trust.snpRootsPem, tdxTestRootsPem: sim.trust.tdxRootsPem });
      expect(t.snp.get('milan').ark.commonName).toBe('ARK-Milan');
      expect(t.snp.get('milan').ark.issuer).toMatch(/Advanced Micro Devices/);
      expect(t.snpExtra).toHaveLength(1);
      expect(t.snpExtra![0]!.get('milan').ark.issuer).toMatch(/joinguard simulated AMD/);
      expect(t.tdxRoots).toHaveLength(2);
    } finally {
      await snp.close();
    }
  });

  it('reads an offline TDX collateral directory of one platform', () => {
    const w = sim.writeTrust(join(dir, 'ok'));
    const b = defaultTrust({ tdxCollateralDir: w.tdxCollateralDir! }).tdxCollateral!;
    expect(b.tcbInfo).toBe(sim.trust.tdxCollateral!.tcbInfo);
    expect(Buffer.from(b.pckCrl).equals(Buffer.from(sim.trust.tdxCollateral!.pckCrl))).toBe(true);
  });

  it('refuses unusable configuration with input errors', () => {
    expect(codeOf(() => defaultTrust({ snpTestRootsPem: ['not a pem'] }))).toBe('APPRAISE_BAD_TRUST_ROOT');
    expect(codeOf(() => defaultTrust({ tdxTestRootsPem: ['-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'] }))).toBe('APPRAISE_BAD_TRUST_ROOT');
    expect(codeOf(() => defaultTrust({ tdxCollateralDir: join(dir, 'absent') }))).toBe('APPRAISE_TDX_COLLATERAL_DIR');
    const w = sim.writeTrust(join(dir, 'two'));
    const tcb = readdirSync(w.tdxCollateralDir!).find((f) => f.startsWith('tcb_info_'))!;
    copyFileSync(join(w.tdxCollateralDir!, tcb), join(w.tdxCollateralDir!, 'tcb_info_aaaaaaaaaaaa.json'));
    expect(codeOf(() => readCollateralDir(w.tdxCollateralDir!))).toBe('APPRAISE_TDX_COLLATERAL_DIR');
  });
});
