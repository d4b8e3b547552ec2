import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectedDecodedFields, readVector, repoRoot, vectorPath } from '@joinguard/core/testing';
import { decodeQuote, writeCollateralBundle } from '@joinguard/tdx';
import { buildQuote, createTestPki, testCollateral, type TestPlatform } from '@joinguard/tdx/testing';
import { assembleCollateralDir } from '../../../packages/tdx/test/vectors.js';

function cli(...args: string[]): { code: number; json: Record<string, unknown> | undefined; stderr: string } {
  const r = spawnSync(process.execPath, [join(repoRoot, 'services/cli/bin/joinguard.js'), ...args], { encoding: 'utf8' });
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(r.stdout) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  return { code: r.status ?? -1, json, stderr: r.stderr };
}

const errorCode = (j: Record<string, unknown> | undefined) => (j?.error as { code?: string } | undefined)?.code;

beforeAll(() => {
  execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: repoRoot });
});

describe('joinguard tdx inspect', () => {
  const expected = expectedDecodedFields();
  for (const rel of ['tdx/gotdxguest_v4_spr/quote.dat', 'tdx/gotdxguest_v5/quote.dat', 'tdx/gotdxguest_cos113_v4_ccel/quote.dat', 'azure/az_tdx_vtpm/td-quote.bin']) {
    it(`${rel}: exit 0, DESIGN.md field names, values as EXPECTED_decoded_fields.json`, () => {
      const r = cli('tdx', 'inspect', vectorPath(rel), '--json');
      expect(r.code).toBe(0);
      const exp = expected[rel] as { header: Record<string, unknown>; body: Record<string, string> };
      const j = r.json!;
      expect(j.version).toBe(exp.header.version);
      expect(j.attestationKeyType).toBe(exp.header.att_key_type);
      expect(`0x${(j.teeType as number).toString(16)}`).toBe(exp.header.tee_type);
      expect(j.qeVendorId).toBe(exp.header.qe_vendor_id);
      expect(j.userData).toBe(exp.header.user_data);
      const names: Record<string, string> = {
        tee_tcb_svn: 'teeTcbSvn', mrseam: 'mrSeam', mrsignerseam: 'mrSignerSeam', seam_attributes: 'seamAttributes', td_attributes: 'tdAttributes',
        xfam: 'xfam', mrtd: 'mrTd', mrconfigid: 'mrConfigId', mrowner: 'mrOwner', mrownerconfig: 'mrOwnerConfig', rtmr0: 'rtmr0', rtmr1: 'rtmr1',
        rtmr2: 'rtmr2', rtmr3: 'rtmr3', report_data: 'reportData', tee_tcb_svn2: 'teeTcbSvn2', mrservicetd: 'mrServiceTd',
      };
      for (const [k, v] of Object.entries(exp.body)) expect(j[names[k]!], k).toBe(v);
    });
  }

  it('accepts the quote as hex text', () => {
    const dir = mkdtempSync(join(tmpdir(), 'jg-tdx-cli-'));
    const f = join(dir, 'quote.hex');
    writeFileSync(f, Buffer.from(readVector('tdx/gotdxguest_v5/quote.dat')).toString('hex') + '\n');
    const r = cli('tdx', 'inspect', f, '--json');
    expect(r.code).toBe(0);
    expect(r.json!.mrTd).toBe((expectedDecodedFields()['tdx/gotdxguest_v5/quote.dat'] as { body: { mrtd: string } }).body.mrtd);
  });

  it('truncated quote → exit 1 TDX_QUOTE_TRUNCATED; missing file → exit 2', () => {
    const r = cli('tdx', 'inspect', vectorPath('tdx/derived/gotdxguest_v5_truncated_4000.dat'), '--json');
    expect(r.code).toBe(1);
    expect(errorCode(r.json)).toBe('TDX_QUOTE_TRUNCATED');
    const m = cli('tdx', 'inspect', '/nonexistent/quote.dat', '--json');
    expect(m.code).toBe(2);
    expect(m.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('joinguard tdx verify with the published collateral', () => {
  it('v4 SPR at 2023-07-01: every check passes up to TCB matching, which finds no level → exit 1 TDX_TCB_LEVEL_NOT_FOUND', () => {
    const dir = assembleCollateralDir('tdx/gotdxguest_v4_spr/tcbinfo_fmspc_50806f000000.json', '50806f000000');
    const r = cli('tdx', 'verify', vectorPath('tdx/gotdxguest_v4_spr/quote.dat'), '--collateral', dir, '--at', '2023-07-01T00:00:00Z', '--json');
    expect(r.code).toBe(1);
    expect(r.json!.verified).toBe(false);
    expect(errorCode(r.json)).toBe('TDX_TCB_LEVEL_NOT_FOUND');
  });

  it('v4 SPR at 2023-07-10 (PCK CRL expired) → exit 1 TDX_CRL_EXPIRED', () => {
    const dir = assembleCollateralDir('tdx/gotdxguest_v4_spr/tcbinfo_fmspc_50806f000000.json', '50806f000000');
    const r = cli('tdx', 'verify', vectorPath('tdx/gotdxguest_v4_spr/quote.dat'), '--collateral', dir, '--at', '2023-07-10T00:00:00Z', '--json');
    expect(r.code).toBe(1);
    expect(errorCode(r.json)).toBe('TDX_CRL_EXPIRED');
  });

  it('v5 at 2026-02-10: the 2023 Root CA CRL in the only published bundle has expired → exit 1 TDX_CRL_EXPIRED', () => {
    const dir = assembleCollateralDir('tdx/gotdxguest_v5/tcbinfo_fmspc_90c06f000000.json', '90c06f000000');
    const r = cli('tdx', 'verify', vectorPath('tdx/gotdxguest_v5/quote.dat'), '--collateral', dir, '--at', '2026-02-10T00:00:00Z', '--json');
    expect(r.code).toBe(1);
    expect(errorCode(r.json)).toBe('TDX_CRL_EXPIRED');
  });

  it('derived v5 RTMR0 bit flip → exit 1 TDX_QUOTE_BAD_SIGNATURE', () => {
    const dir = assembleCollateralDir('tdx/gotdxguest_v5/tcbinfo_fmspc_90c06f000000.json', '90c06f000000');
    const r = cli('tdx', 'verify', vectorPath('tdx/derived/gotdxguest_v5_rtmr0_bitflip.dat'), '--collateral', dir, '--at', '2023-07-01T00:00:00Z', '--json');
    expect(r.code).toBe(1);
    expect(errorCode(r.json)).toBe('TDX_QUOTE_BAD_SIGNATURE');
  });

  it('no TCB info for the quote FMSPC (COS-113, Azure) → exit 2 TDX_COLLATERAL_MISSING', () => {
    const dir = assembleCollateralDir('tdx/gotdxguest_v4_spr/tcbinfo_fmspc_50806f000000.json', '50806f000000');
    for (const rel of ['tdx/gotdxguest_cos113_v4_ccel/quote.dat', 'azure/az_tdx_vtpm/td-quote.bin']) {
      const r = cli('tdx', 'verify', vectorPath(rel), '--collateral', dir, '--at', '2025-01-01T00:00:00Z', '--json');
      expect(r.code).toBe(2);
      expect(errorCode(r.json)).toBe('TDX_COLLATERAL_MISSING');
    }
  });

  it('bad --at, missing --collateral → exit 2', () => {
    const dir = assembleCollateralDir('tdx/gotdxguest_v4_spr/tcbinfo_fmspc_50806f000000.json', '50806f000000');
    expect(cli('tdx', 'verify', vectorPath('tdx/gotdxguest_v4_spr/quote.dat'), '--collateral', dir, '--at', 'yesterday', '--json').code).toBe(2);
    expect(cli('tdx', 'verify', vectorPath('tdx/gotdxguest_v4_spr/quote.dat'), '--json').code).toBe(2);
  });
});

describe('joinguard tdx verify with the simulated signer', () => {
  it('exit 0 with the success JSON only when the test root is the trust anchor', async () => {
    const pki = await createTestPki();
    const p: TestPlatform = { fmspc: '00906ed50000', sgxTcbComponents: [5, 5, 2, 2, 3, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0], pceSvn: 11, teeTcbSvn: Uint8Array.from([3, 0, 5]) };
    const pck = await pki.issuePck(p);
    const dir = mkdtempSync(join(tmpdir(), 'jg-tdx-sim-'));
    writeCollateralBundle(join(dir, 'collateral'), p.fmspc, 'platform', await testCollateral(pki, p, new Date('2025-01-01T00:00:00Z'), new Date('2025-02-01T00:00:00Z')));
    writeFileSync(join(dir, 'root.pem'), pki.rootPem);
    const reportData = Buffer.alloc(64, 0x42);
    writeFileSync(join(dir, 'quote.dat'), buildQuote({ version: 5, pck, body: { teeTcbSvn: p.teeTcbSvn, reportData } }));
    const args = ['tdx', 'verify', join(dir, 'quote.dat'), '--collateral', join(dir, 'collateral'), '--at', '2025-01-15T00:00:00Z', '--json'];
    const ok = cli(...args, '--trust-anchor', join(dir, 'root.pem'));
    expect(ok.code).toBe(0);
    expect(ok.json).toMatchObject({ verified: true, tcbStatus: 'UpToDate', advisoryIds: [], qeTcbStatus: 'UpToDate' });
    expect((ok.json!.claims as Record<string, unknown>).reportData).toBe(reportData.toString('hex'));
    expect((ok.json!.claims as Record<string, unknown>).fmspc).toBe(p.fmspc);
    const pinned = cli(...args);
    expect(pinned.code).toBe(1);
    expect(errorCode(pinned.json)).toBe('TDX_CHAIN_UNTRUSTED_ROOT');

    // --ccel: a quote carrying the COS-113 RTMRs matches the COS-113 CCEL replay; the zero-RTMR quote does not.
    const cos = decodeQuote(readVector('tdx/gotdxguest_cos113_v4_ccel/quote.dat')).body;
    writeFileSync(join(dir, 'quote-rtmr.dat'), buildQuote({ pck, body: { teeTcbSvn: p.teeTcbSvn, rtmr0: cos.rtmr0, rtmr1: cos.rtmr1, rtmr2: cos.rtmr2, rtmr3: cos.rtmr3 } }));
    const ccel = vectorPath('tdx/gotdxguest_cos113_v4_ccel/ccel_data.bin');
    const withCcel = cli('tdx', 'verify', join(dir, 'quote-rtmr.dat'), '--collateral', join(dir, 'collateral'), '--at', '2025-01-15T00:00:00Z', '--trust-anchor', join(dir, 'root.pem'), '--ccel', ccel, '--json');
    expect(withCcel.code).toBe(0);
    expect((withCcel.json!.claims as Record<string, unknown>).ccel).toEqual({ events: 44, rtmrsMatch: true });
    const mismatch = cli(...args, '--trust-anchor', join(dir, 'root.pem'), '--ccel', ccel);
    expect(mismatch.code).toBe(1);
    expect(errorCode(mismatch.json)).toBe('TDX_RTMR_MISMATCH');
  });

  it('--allow-tcb-status / --allow-qe-tcb-status: a lowered platform (SWHardeningNeeded) and an older QE (OutOfDate) pass only when allowed, the JSON naming the advisories', async () => {
    const pki = await createTestPki();
    const p: TestPlatform = { fmspc: '00906ed50000', sgxTcbComponents: [5, 5, 2, 2, 3, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0], pceSvn: 11, teeTcbSvn: Uint8Array.from([3, 0, 5]) };
    // As packages/tdx/test/simulated.test.ts: every SVN one below the UpToDate level matches the SWHardeningNeeded level.
    const lower: TestPlatform = { ...p, sgxTcbComponents: p.sgxTcbComponents.map((s) => Math.max(0, s - 1)), pceSvn: 10, teeTcbSvn: Uint8Array.from([2, 0, 4]) };
    const [pck, lowPck] = [await pki.issuePck(p), await pki.issuePck(lower)];
    const dir = mkdtempSync(join(tmpdir(), 'jg-tdx-tcb-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    writeCollateralBundle(join(dir, 'collateral'), p.fmspc, 'platform', await testCollateral(pki, p, new Date('2025-01-01T00:00:00Z'), new Date('2025-02-01T00:00:00Z')));
    writeFileSync(join(dir, 'root.pem'), pki.rootPem);
    writeFileSync(join(dir, 'low.dat'), buildQuote({ pck: lowPck, body: { teeTcbSvn: lower.teeTcbSvn } }));
    // QE ISVSVN 3: below the UpToDate level (4), at the OutOfDate level (2) of the test QE identity.
    writeFileSync(join(dir, 'old-qe.dat'), buildQuote({ pck, body: { teeTcbSvn: p.teeTcbSvn }, qeIsvSvn: 3 }));
    writeFileSync(join(dir, 'both.dat'), buildQuote({ pck: lowPck, body: { teeTcbSvn: lower.teeTcbSvn }, qeIsvSvn: 3 }));
    const run = (quote: string, ...flags: string[]) =>
      cli('tdx', 'verify', join(dir, quote), '--collateral', join(dir, 'collateral'), '--at', '2025-01-15T00:00:00Z', '--trust-anchor', join(dir, 'root.pem'), '--json', ...flags);
    const details = (j: Record<string, unknown> | undefined) => (j?.error as { details?: unknown } | undefined)?.details;
    const platformAdvisories = ['INTEL-SA-00615', 'INTEL-SA-00657'];

    const denied = run('low.dat');
    expect(denied.code).toBe(1);
    expect(denied.json!.verified).toBe(false);
    expect(errorCode(denied.json)).toBe('TDX_TCB_STATUS_NOT_ALLOWED');
    expect(details(denied.json)).toMatchObject({ tcbStatus: 'SWHardeningNeeded', advisoryIds: platformAdvisories, allowed: ['UpToDate'] });
    const allowed = run('low.dat', '--allow-tcb-status', 'SWHardeningNeeded');
    expect(allowed.code).toBe(0);
    expect(allowed.json).toMatchObject({ verified: true, tcbStatus: 'SWHardeningNeeded', advisoryIds: platformAdvisories, qeTcbStatus: 'UpToDate' });
    expect(run('low.dat', '--allow-tcb-status', 'UpToDate, SWHardeningNeeded').code).toBe(0); // a comma-separated list
    const other = run('low.dat', '--allow-tcb-status', 'UpToDate,OutOfDate');
    expect(errorCode(other.json)).toBe('TDX_TCB_STATUS_NOT_ALLOWED');
    expect(details(other.json)).toMatchObject({ allowed: ['UpToDate', 'OutOfDate'] });
    // the QE flag does not widen the platform's statuses
    expect(errorCode(run('low.dat', '--allow-qe-tcb-status', 'SWHardeningNeeded').json)).toBe('TDX_TCB_STATUS_NOT_ALLOWED');

    const qeDenied = run('old-qe.dat');
    expect(qeDenied.code).toBe(1);
    expect(errorCode(qeDenied.json)).toBe('TDX_QE_TCB_STATUS_NOT_ALLOWED');
    expect(details(qeDenied.json)).toMatchObject({ qeTcbStatus: 'OutOfDate', advisoryIds: ['INTEL-SA-00837'] });
    // nor the platform flag the QE's
    expect(errorCode(run('old-qe.dat', '--allow-tcb-status', 'UpToDate,OutOfDate').json)).toBe('TDX_QE_TCB_STATUS_NOT_ALLOWED');
    const qeAllowed = run('old-qe.dat', '--allow-qe-tcb-status', 'OutOfDate');
    expect(qeAllowed.code).toBe(0);
    expect(qeAllowed.json).toMatchObject({ verified: true, tcbStatus: 'UpToDate', qeTcbStatus: 'OutOfDate', advisoryIds: ['INTEL-SA-00837'] });

    // both lowered: each flag alone rejects; both together pass with the platform's and the QE's advisories
    expect(errorCode(run('both.dat', '--allow-tcb-status', 'SWHardeningNeeded').json)).toBe('TDX_QE_TCB_STATUS_NOT_ALLOWED');
    expect(errorCode(run('both.dat', '--allow-qe-tcb-status', 'OutOfDate').json)).toBe('TDX_TCB_STATUS_NOT_ALLOWED');
    const both = run('both.dat', '--allow-tcb-status', 'SWHardeningNeeded', '--allow-qe-tcb-status', 'OutOfDate');
    expect(both.code).toBe(0);
    expect(both.json).toMatchObject({ verified: true, tcbStatus: 'SWHardeningNeeded', qeTcbStatus: 'OutOfDate', advisoryIds: [...platformAdvisories, 'INTEL-SA-00837'] });
  });
});
