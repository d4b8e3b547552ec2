import { beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { isJoinguardError } from '@joinguard/core';
import { decodeReport, inspectReport, REPORT_LAYOUT, SnpErrorCode, verifyReport, type SnpCollateral, type SnpVerifyOptions, type TcbVersion } from '../src/index.js';
import { createTestAuthority, createTestCrl, issueTestLeaf, makeTestReport, signTestReport, type TestAuthority, type TestLeaf } from '../src/testing.js';
import { codeOf } from '@joinguard/core/testing';

const NOW = new Date('2026-11-23T00:00:00Z');

describe('simulated signer: Milan v3', () => {
  let auth: TestAuthority;
  let vcek: TestLeaf;
  const chipId = new Uint8Array(randomBytes(64));
  const tcb: TcbVersion = { bootloader: 4, tee: 0, snp: 22, microcode: 213 };
  const reportData = new Uint8Array(randomBytes(64));
  const measurement = new Uint8Array(randomBytes(48));
  let report: Uint8Array;
  const v = (r: Uint8Array, c: Partial<SnpCollateral> = {}, o: Partial<SnpVerifyOptions> = {}) => verifyReport(r, { vcek: vcek.der, ...c }, { now: NOW, trust: auth.trust, ...o });

  beforeAll(async () => {
    auth = await createTestAuthority({ product: 'milan' });
    vcek = await issueTestLeaf(auth, { chipId, tcb });
    report = makeTestReport({ product: 'milan', chipId, reportedTcb: tcb, reportData, measurement, policy: 0x30000n | (1n << 19n), vmpl: 2 }, vcek.privateKey);
  });

  it('verifies through the same code only with the test ARK as trust anchor', () => {
    const ok = v(report);
    expect(ok.product).toBe('milan');
    expect(ok.report.version).toBe(3);
    expect(ok.claims.reportData).toBe(Buffer.from(reportData).toString('hex'));
    expect(ok.claims.measurement).toBe(Buffer.from(measurement).toString('hex'));
    expect(ok.claims.policy.debug).toBe(true);
    expect(ok.claims.policy.migrateMa).toBe(false);
    expect(ok.claims.vmpl).toBe(2);
    expect(ok.claims.reportedTcb).toEqual(tcb);
    // The default store holds AMD's roots only.
    expect(codeOf(() => verifyReport(report, { vcek: vcek.der }, { now: NOW }))).toBe(SnpErrorCode.CHAIN_ISSUER_MISMATCH);
    expect(codeOf(() => verifyReport(report, { vcek: vcek.der, ask: auth.ask.der, ark: auth.ark.der }, { now: NOW }))).toBe(SnpErrorCode.ARK_NOT_TRUSTED);
  });

  it('a flipped byte anywhere in the signed area or the signature is rejected', () => {
    for (const off of [0x00, 0x08, 0x50, 0x90, 0x180, 0x1a0, 0x29f, 0x2a0, 0x2e8]) {
      const b = new Uint8Array(report);
      b[off]! ^= 0x10;
      expect(codeOf(() => v(b)), `0x${off.toString(16)}`).toBeDefined();
    }
    const b = new Uint8Array(report);
    b[0x60]! ^= 1; // inside REPORT_DATA: only the signature can notice
    expect(codeOf(() => v(b))).toBe(SnpErrorCode.BAD_SIGNATURE);
  });

  it('expired VCEK, expired ASK, not-yet-valid chain', async () => {
    const old = await issueTestLeaf(auth, { chipId, tcb, keys: vcek.keys, notBefore: new Date('2020-01-01'), notAfter: new Date('2025-01-01') });
    expect(codeOf(() => v(report, { vcek: old.der }))).toBe(SnpErrorCode.CERT_EXPIRED);
    const shortAsk = await createTestAuthority({ product: 'milan', askNotAfter: new Date('2026-01-01'), keysFrom: auth, withAsvk: false });
    const leaf = await issueTestLeaf(shortAsk, { chipId, tcb });
    const r = makeTestReport({ product: 'milan', chipId, reportedTcb: tcb }, leaf.privateKey);
    let err: unknown;
    try {
      verifyReport(r, { vcek: leaf.der }, { now: NOW, trust: shortAsk.trust });
    } catch (e) {
      err = e;
    }
    expect(isJoinguardError(err) && err.code).toBe(SnpErrorCode.CERT_EXPIRED);
    expect(isJoinguardError(err) && err.details.certificate).toBe('ASK');
    expect(codeOf(() => v(report, {}, { now: new Date('2019-01-01') }))).toBe(SnpErrorCode.CERT_NOT_YET_VALID);
  });

  it('VCEK of another chip or another TCB (same key) is rejected on the extensions', async () => {
    const otherChip = await issueTestLeaf(auth, { chipId: new Uint8Array(randomBytes(64)), tcb, keys: vcek.keys });
    expect(codeOf(() => v(report, { vcek: otherChip.der }))).toBe(SnpErrorCode.CHIP_ID_MISMATCH);
    const otherTcb = await issueTestLeaf(auth, { chipId, tcb: { ...tcb, snp: tcb.snp + 1 }, keys: vcek.keys });
    expect(codeOf(() => v(report, { vcek: otherTcb.der }))).toBe(SnpErrorCode.TCB_MISMATCH);
    const otherProduct = await issueTestLeaf(auth, { chipId, tcb, keys: vcek.keys, productName: 'Genoa' });
    expect(codeOf(() => v(report, { vcek: otherProduct.der }))).toBe(SnpErrorCode.PRODUCT_MISMATCH);
    const otherKey = await issueTestLeaf(auth, { chipId, tcb });
    expect(codeOf(() => v(report, { vcek: otherKey.der }))).toBe(SnpErrorCode.BAD_SIGNATURE);
  });

  it('CRL: revoking the ASK rejects; a current CRL without it passes; stale or foreign CRLs reject', async () => {
    const revoked = await createTestCrl(auth, [auth.ask.cert.serialNumber], new Date('2026-11-01'), new Date('2026-12-01'));
    expect(codeOf(() => v(report, { crl: revoked }))).toBe(SnpErrorCode.CERT_REVOKED);
    const clean = await createTestCrl(auth, ['7777'], new Date('2026-11-01'), new Date('2026-12-01'));
    expect(v(report, { crl: clean }).chain.crl?.revokedSerials.has('7777')).toBe(true);
    expect(codeOf(() => v(report, { crl: clean }, { now: new Date('2027-01-01') }))).toBe(SnpErrorCode.CRL_STALE);
    const foreign = await createTestCrl(auth, [], new Date('2026-11-01'), new Date('2026-12-01'), auth.ask.keys.privateKey);
    expect(codeOf(() => v(report, { crl: foreign }))).toBe(SnpErrorCode.CRL_BAD_SIGNATURE);
    expect(codeOf(() => v(report, { crl: new Uint8Array([0x30, 0x00]) }))).toBe(SnpErrorCode.CRL_MALFORMED);
  });

  it('VLEK → ASVK → ARK, and a masked CHIP_ID', async () => {
    const vlek = await issueTestLeaf(auth, { kind: 'vlek', chipId, tcb });
    const r = makeTestReport({ product: 'milan', chipId, reportedTcb: tcb, signingKey: 'vlek', maskChipKey: true }, vlek.privateKey);
    const ok = verifyReport(r, { vcek: vlek.der }, { now: NOW, trust: auth.trust });
    expect(ok.signingKey).toBe('vlek');
    expect(ok.chain.intermediate.commonName).toMatch(/^SEV-VLEK-/);
    expect(codeOf(() => verifyReport(r, { vcek: vcek.der }, { now: NOW, trust: auth.trust }))).toBe(SnpErrorCode.SIGNING_KEY_MISMATCH);
    const masked = makeTestReport({ product: 'milan', chipId, reportedTcb: tcb, maskChipKey: true }, vcek.privateKey);
    expect(v(masked).claims.maskChipKey).toBe(true);
  });

  it('a VCEK signed with RSASSA-PSS but not salt 48 is refused, not verified under other parameters', async () => {
    const odd = await issueTestLeaf(auth, { chipId, tcb, keys: vcek.keys, saltLength: 32 });
    expect(codeOf(() => v(report, { vcek: odd.der }))).toBe(SnpErrorCode.CERT_BAD_SIGNATURE_ALGO);
  });

  it('an unsigned report (SIGNING_KEY 7) is rejected', () => {
    const b = new Uint8Array(report);
    b[REPORT_LAYOUT.KEY_INFO[0]] = 7 << 2;
    signTestReport(b, vcek.privateKey);
    expect(codeOf(() => v(b))).toBe(SnpErrorCode.REPORT_UNSIGNED);
  });
});

describe('simulated signer: Turin v5', () => {
  it('decodes the Turin TCB layout and v5 fields, and verifies with an 8-byte hwID', async () => {
    const auth = await createTestAuthority({ product: 'turin', withAsvk: false });
    const chipId = new Uint8Array(64);
    chipId.set(randomBytes(8));
    const tcb: TcbVersion = { fmc: 1, bootloader: 2, tee: 3, snp: 4, microcode: 5 };
    const vcek = await issueTestLeaf(auth, { chipId, tcb });
    const r = makeTestReport({ product: 'turin', chipId, reportedTcb: tcb, currentTcb: { ...tcb, microcode: 6 }, launchMitVector: 0x5n, currentMitVector: 0x7n }, vcek.privateKey);
    const decoded = decodeReport(r);
    expect(decoded.version).toBe(5);
    expect([decoded.cpuidFamId, decoded.cpuidModId]).toEqual([0x1a, 0x02]);
    expect(decoded.launchMitVector).toBe(5n);
    expect(decoded.currentMitVector).toBe(7n);
    // byte 0 FMC, 1 BL, 2 TEE, 3 SNP, 7 microcode
    expect(decoded.reportedTcb).toBe(0x0500000004030201n);
    const { json, product } = inspectReport(r);
    expect(product).toBe('turin');
    expect(json.reportedTcb).toEqual({ bootloader: 2, tee: 3, snp: 4, microcode: 5, fmc: 1 });
    expect(json.currentTcb).toEqual({ bootloader: 2, tee: 3, snp: 4, microcode: 6, fmc: 1 });
    expect(json.launchMitVector).toBe('0x5');
    const ok = verifyReport(r, { vcek: vcek.der }, { now: NOW, trust: auth.trust });
    expect(ok.product).toBe('turin');
    expect(ok.chain.leaf.extensions.hwId?.length).toBe(8);
    const wrongFmc = await issueTestLeaf(auth, { chipId, tcb: { ...tcb, fmc: 9 }, keys: vcek.keys });
    expect(codeOf(() => verifyReport(r, { vcek: wrongFmc.der }, { now: NOW, trust: auth.trust }))).toBe(SnpErrorCode.TCB_MISMATCH);
  });
});
