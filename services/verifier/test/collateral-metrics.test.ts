import { mkdirSync, mkdtempSync, renameSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSimCvm, type SimCvm } from '@joinguard/simcvm';
import { KdsClient, kdsCertChainPath, kdsCrlPath, kdsVcekPath } from '@joinguard/snp';
import { createTestCrl } from '@joinguard/snp/testing';
import type { AttestResponse, Evidence } from '@joinguard/protocol';
import { defaultTrust, readCollateralDir } from '../src/appraise/index.js';
import { tdxCollateralIssuedAt } from '../src/appraise/trust.js';
import { verifySnpHardware } from '../src/appraise/hardware.js';
import { defaultConfig, type VerifierConfig } from '../src/config.js';
import { startVerifier, type RunningVerifier } from '../src/run.js';

/*
 * joinguard_collateral_cache_age_seconds{kind} and joinguard_collateral_fetch_failures_total{kind} for what the
 * verifier loads: the TDX offline bundle (age from its issue date) and the SNP offline KDS cache
 * (trust.snpCollateralDir: age from its files' times), which now verifies SNP evidence that carries no VCEK.
 */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function metric(text: string, name: string, kind: string): number | undefined {
  const m = new RegExp(`^${name}\\{kind="${kind}"\\} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

function withoutCerts(e: Evidence): Evidence {
  const { certs: _certs, ...hardware } = e.hardware;
  void _certs;
  return { ...e, hardware };
}

/** A verifier configuration in `dir` with the simulator's good policy (trust is set by the caller). */
function baseConfig(dir: string, policy: object): VerifierConfig {
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, YAML.stringify(policy));
  const base = defaultConfig(join(dir, 'data'));
  return { ...base, listen: { host: '127.0.0.1', port: 0 }, policy: { file: policyFile }, logLevel: 'silent' };
}

describe('collateral metrics and the SNP offline KDS cache', () => {
  // The TDX bundle of the simulator is issued one day before its `now`.
  const tdxNow = new Date(Math.floor(Date.now() / 1000) * 1000 - HOUR);
  const clock = { now: new Date(tdxNow.getTime() + 600_000) };
  let dir: string;
  let snpSim: SimCvm;
  let tdxSim: SimCvm;
  let snpV: RunningVerifier;
  let tdxV: RunningVerifier;
  let kdsDir: string;
  const files: { vcek: string; chain: string; crl: string } = { vcek: '', chain: '', crl: '' };
  let goodCrl: Uint8Array;
  let tdxRootPem: string;

  const scrape = async (v: RunningVerifier) => (await v.app.inject({ method: 'GET', url: '/metrics' })).body;
  async function attest(v: RunningVerifier, sim: SimCvm, edit: (e: Evidence) => Evidence = (e) => e): Promise<AttestResponse> {
    const { nonce } = (await v.app.inject({ method: 'GET', url: '/v1/challenge' })).json<{ nonce: string }>();
    const evidence = edit(await sim.evidence({ nonce, runtimeData: { nodeName: sim.nodeName, purpose: 'join' } }));
    const r = await v.app.inject({ method: 'POST', url: '/v1/attest', payload: evidence });
    expect(r.statusCode).toBe(200);
    return r.json<AttestResponse>();
  }
  const hardwareCheck = (a: AttestResponse) => a.appraisal.checks.find((c) => c.name.endsWith('.hardware'))!;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'jg-collateral-'));
    snpSim = await createSimCvm({ tee: 'snp', nodeName: 'worker-kds-0', vtpm: 'software' });
    tdxSim = await createSimCvm({ tee: 'tdx', nodeName: 'worker-tdx-0', vtpm: 'software', now: tdxNow });
    const snpFiles = snpSim.writeTrust(join(dir, 'snp-trust'));
    const tdxFiles = tdxSim.writeTrust(join(dir, 'tdx-trust'));
    tdxRootPem = tdxFiles.tdxRootPem!;

    // An offline KDS cache as KdsClient({ cacheDir }) lays it out, holding this simulated chip's VCEK (DER),
    // the chain (ASK + ARK) and a current ARK CRL, "fetched" 2 days, 3 days and 1 hour ago.
    kdsDir = join(dir, 'kds-cache');
    const s = snpSim.signer.snp!;
    const layout = new KdsClient({ cacheDir: kdsDir, offline: true });
    files.vcek = layout.cachePath(kdsVcekPath(s.product, s.chipId, s.tcb))!;
    files.chain = layout.cachePath(kdsCertChainPath(s.product, 'vcek'))!;
    files.crl = layout.cachePath(kdsCrlPath(s.product, 'vcek'))!;
    goodCrl = await createTestCrl(s.auth, [], new Date(clock.now.getTime() - DAY), new Date(clock.now.getTime() + 30 * DAY));
    for (const [f, data, age] of [[files.vcek, s.vcek.der, 2 * DAY], [files.chain, `${s.auth.ask.pem}\n${s.auth.ark.pem}\n`, 3 * DAY], [files.crl, goodCrl, HOUR]] as const) {
      mkdirSync(dirname(f), { recursive: true });
      writeFileSync(f, data);
      const t = new Date(clock.now.getTime() - age);
      utimesSync(f, t, t);
    }

    const snpDir = join(dir, 'snp-verifier');
    mkdirSync(snpDir);
    snpV = await startVerifier(
      {
        ...baseConfig(snpDir, snpSim.goodPolicy()),
        trust: { snpTestRoots: [snpFiles.snpRootsPem!], tdxTestRoots: [], snpCollateralDir: kdsDir },
      },
      { listen: false, now: () => clock.now },
    );
    const tdxDir = join(dir, 'tdx-verifier');
    mkdirSync(tdxDir);
    tdxV = await startVerifier(
      {
        ...baseConfig(tdxDir, tdxSim.goodPolicy()),
        trust: { snpTestRoots: [], tdxTestRoots: [tdxFiles.tdxRootPem!], tdxCollateralDir: tdxFiles.tdxCollateralDir! },
      },
      { listen: false, now: () => clock.now },
    );
  });
  afterAll(async () => {
    await snpV?.close();
    await tdxV?.close();
    await snpSim?.close();
    await tdxSim?.close();
  });

  it('reports the TDX bundle age from its issue date and the KDS cache age from its file times, at the verifier clock', async () => {
    const age = 'joinguard_collateral_cache_age_seconds';
    let tdx = await scrape(tdxV);
    // issued tdxNow - 1 day; the clock is tdxNow + 600 s
    expect(metric(tdx, age, 'tdx')).toBe(86_400 + 600);
    expect(metric(tdx, age, 'snp_vcek')).toBeUndefined();
    let snp = await scrape(snpV);
    expect(metric(snp, age, 'snp_vcek')).toBeCloseTo(2 * 86_400, 0);
    expect(metric(snp, age, 'snp_cert_chain')).toBeCloseTo(3 * 86_400, 0);
    expect(metric(snp, age, 'snp_crl')).toBeCloseTo(3600, 0);
    expect(metric(snp, age, 'tdx')).toBeUndefined();
    // Nothing failed yet: the counters are there, at zero.
    expect(metric(snp, 'joinguard_collateral_fetch_failures_total', 'snp_vcek')).toBe(0);
    expect(metric(tdx, 'joinguard_collateral_fetch_failures_total', 'tdx')).toBe(0);

    clock.now = new Date(clock.now.getTime() + 100_000);
    tdx = await scrape(tdxV);
    snp = await scrape(snpV);
    expect(metric(tdx, age, 'tdx')).toBe(86_400 + 700);
    expect(metric(snp, age, 'snp_crl')).toBeCloseTo(3700, 0);
  });

  it('verifies SNP evidence without a VCEK from the offline KDS cache, and evidence with one as before', async () => {
    const offline = await attest(snpV, snpSim, withoutCerts);
    expect(hardwareCheck(offline)).toMatchObject({ name: 'snp.hardware', outcome: 'pass' });
    expect(offline.appraisal.verdict).toBe('pass');
    const carried = await attest(snpV, snpSim);
    expect(hardwareCheck(carried).outcome).toBe('pass');
    expect(carried.appraisal.verdict).toBe('pass');
    expect(metric(await scrape(snpV), 'joinguard_collateral_fetch_failures_total', 'snp_vcek')).toBe(0);
  });

  it('checks the cached CRL', async () => {
    const s = snpSim.signer.snp!;
    writeFileSync(files.crl, await createTestCrl(s.auth, [s.auth.ask.cert.serialNumber], new Date(clock.now.getTime() - HOUR), new Date(clock.now.getTime() + DAY)));
    try {
      const revoked = await attest(snpV, snpSim, withoutCerts);
      expect(hardwareCheck(revoked)).toMatchObject({ outcome: 'fail', code: 'SNP_CERT_REVOKED' });
    } finally {
      writeFileSync(files.crl, goodCrl);
    }
    expect((await attest(snpV, snpSim, withoutCerts)).appraisal.verdict).toBe('pass');
  });

  it('counts a VCEK missing from the cache as a fetch failure and fails the hardware check', async () => {
    renameSync(files.vcek, `${files.vcek}.away`);
    try {
      const missing = await attest(snpV, snpSim, withoutCerts);
      expect(missing.appraisal.verdict).toBe('fail');
      expect(hardwareCheck(missing)).toMatchObject({ outcome: 'fail', code: 'SNP_KDS_OFFLINE_MISS' });
      expect(hardwareCheck(missing).message).toContain(kdsVcekPath(snpSim.signer.snp!.product, snpSim.signer.snp!.chipId, snpSim.signer.snp!.tcb));
      expect(hardwareCheck(missing).message).not.toContain(kdsDir);
      expect(metric(await scrape(snpV), 'joinguard_collateral_fetch_failures_total', 'snp_vcek')).toBe(1);
      // Evidence that carries its VCEK does not need the cache.
      expect((await attest(snpV, snpSim)).appraisal.verdict).toBe('pass');
      expect(metric(await scrape(snpV), 'joinguard_collateral_fetch_failures_total', 'snp_vcek')).toBe(1);
    } finally {
      renameSync(`${files.vcek}.away`, files.vcek);
    }
    // Put back, it is found again (misses are not remembered).
    expect((await attest(snpV, snpSim, withoutCerts)).appraisal.verdict).toBe('pass');
    expect(metric(await scrape(snpV), 'joinguard_collateral_fetch_failures_total', 'snp_vcek')).toBe(1);
  });

  it('counts TDX evidence for which no collateral is configured as a fetch failure', async () => {
    expect((await attest(tdxV, tdxSim)).appraisal.verdict).toBe('pass');
    expect(metric(await scrape(tdxV), 'joinguard_collateral_fetch_failures_total', 'tdx')).toBe(0);
    // The same quote at a verifier with the TDX root but no bundle.
    const noBundleDir = join(dir, 'tdx-no-bundle');
    mkdirSync(noBundleDir);
    const v = await startVerifier(
      { ...baseConfig(noBundleDir, tdxSim.goodPolicy()), trust: { snpTestRoots: [], tdxTestRoots: [tdxRootPem] } },
      { listen: false, now: () => clock.now },
    );
    try {
      const a = await attest(v, tdxSim);
      expect(hardwareCheck(a)).toMatchObject({ outcome: 'fail', code: 'APPRAISE_TDX_NO_COLLATERAL' });
      const text = await scrape(v);
      expect(metric(text, 'joinguard_collateral_fetch_failures_total', 'tdx')).toBe(1);
      expect(metric(text, 'joinguard_collateral_cache_age_seconds', 'tdx')).toBeUndefined();
    } finally {
      await v.close();
    }
  });
});

describe('collateral helpers', () => {
  it('dates a TDX bundle by its oldest part, CRLs included', async () => {
    const sim = await createSimCvm({ tee: 'tdx', vtpm: 'software', now: new Date('2026-06-01T00:00:00Z') });
    try {
      const d = mkdtempSync(join(tmpdir(), 'jg-tdx-dated-'));
      const bundle = readCollateralDir(sim.writeTrust(d).tdxCollateralDir!);
      expect(tdxCollateralIssuedAt(bundle)?.toISOString()).toBe('2026-05-31T00:00:00.000Z');
      const pki = sim.signer.tdx!.pki;
      const olderCrl = await pki.pckCrl({ thisUpdate: new Date('2026-05-20T00:00:00Z'), nextUpdate: new Date('2026-07-01T00:00:00Z') });
      expect(tdxCollateralIssuedAt({ ...bundle, pckCrl: olderCrl })?.toISOString()).toBe('2026-05-20T00:00:00.000Z');
      expect(tdxCollateralIssuedAt({ ...bundle, tcbInfo: 'not json', qeIdentity: '{}', pckCrl: new Uint8Array([1]), rootCaCrl: new Uint8Array() })).toBeUndefined();
    } finally {
      await sim.close();
    }
  });

  it('refuses a KDS cache folder that does not exist at start, and evidence without a VCEK when none is configured', async () => {
    expect(() => defaultTrust({ snpCollateralDir: join(tmpdir(), 'jg-no-such-kds-cache') })).toThrow(expect.objectContaining({ code: 'APPRAISE_SNP_COLLATERAL_DIR', kind: 'input' }));
    const sim = await createSimCvm({ tee: 'snp', vtpm: 'software' });
    try {
      const e = await sim.evidence();
      const trust = defaultTrust({ snpTestRootsPem: sim.trust.snpRootsPem });
      expect(() => verifySnpHardware(Buffer.from(e.hardware.report, 'base64'), {}, trust, new Date())).toThrow(expect.objectContaining({ code: 'APPRAISE_SNP_NO_VCEK' }));
      expect(verifySnpHardware(Buffer.from(e.hardware.report, 'base64'), e.hardware.certs!, trust, new Date()).verified.signingKey).toBe('vcek');
    } finally {
      await sim.close();
    }
  });
});
