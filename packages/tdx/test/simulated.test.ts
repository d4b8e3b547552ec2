import { beforeAll, describe, expect, it } from 'vitest';
import { JoinguardError } from '@joinguard/core';
import { buildQuote, createTestPki, testCollateral, testTcbInfo, type IssuedPck, type TestPki, type TestPlatform } from '@joinguard/tdx/testing';
import { decodeQuote, inspectQuote, verifyCollateral, verifyQuote, verifyQuoteSignatures, PckChainCache } from '../src/index.js';

const T0 = new Date('2025-01-01T00:00:00Z');
const T1 = new Date('2025-02-01T00:00:00Z');
const NOW = new Date('2025-01-15T00:00:00Z');
const platform: TestPlatform = { fmspc: '00906ed50000', sgxTcbComponents: [5, 5, 2, 2, 3, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0], pceSvn: 11, teeTcbSvn: Uint8Array.from([3, 0, 5]) };

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(JoinguardError);
    return (e as JoinguardError).code;
  }
  throw new Error('expected a rejection');
}

let pki: TestPki;
let pck: IssuedPck;
beforeAll(async () => {
  pki = await createTestPki();
  pck = await pki.issuePck(platform);
});

describe('simulated signer: byte-exact quotes accepted only under the test root', () => {
  it('v4 and v5 quotes verify with the test root as trust anchor and carry the claims', async () => {
    const coll = await testCollateral(pki, platform, T0, T1);
    for (const [version, bodyType] of [[4, 2], [5, 3], [5, 2]] as const) {
      const reportData = Uint8Array.from({ length: 64 }, (_, i) => i);
      const td15 = { teeTcbSvn2: new Uint8Array(16).fill(9), mrServiceTd: new Uint8Array(48).fill(0xaa) };
      const q = buildQuote({ version, bodyType, pck, body: { teeTcbSvn: platform.teeTcbSvn, reportData, mrTd: new Uint8Array(48).fill(7), ...td15 } });
      const r = await verifyQuote(q, { collateral: coll, now: NOW, trustAnchor: pki.anchor });
      expect(r).toMatchObject({ verified: true, tcbStatus: 'UpToDate', qeTcbStatus: 'UpToDate', advisoryIds: [] });
      expect(r.claims.reportData).toBe(Buffer.from(reportData).toString('hex'));
      expect(r.claims.mrTd).toBe('07'.repeat(48));
      expect(r.claims.version).toBe(version);
      expect(r.claims.bodyType).toBe(bodyType);
      // TD 1.5 fields exist only in a TD 1.5 body (v5, body type 3).
      expect(r.claims.teeTcbSvn2).toBe(bodyType === 3 ? '09'.repeat(16) : undefined);
      expect(r.claims.mrServiceTd).toBe(bodyType === 3 ? 'aa'.repeat(48) : undefined);
      expect(decodeQuote(q).signedData.length).toBe(version === 4 ? 48 + 584 : 54 + (bodyType === 3 ? 648 : 584));
      expect(inspectQuote(decodeQuote(q)).reportData).toBe(r.claims.reportData);
    }
  });

  it('the same quote is refused under the pinned Intel root (chain to another root)', async () => {
    const q = decodeQuote(buildQuote({ pck, body: { teeTcbSvn: platform.teeTcbSvn } }));
    let code = '';
    try {
      verifyQuoteSignatures(q, { now: NOW });
    } catch (e) {
      code = (e as JoinguardError).code;
    }
    expect(code).toBe('TDX_CHAIN_UNTRUSTED_ROOT');
    const coll = await testCollateral(pki, platform, T0, T1);
    expect(await codeOf(verifyQuote(buildQuote({ pck }), { collateral: coll, now: NOW }))).toBe('TDX_CRL_BAD_SIGNATURE');
  });

  it('another test root as anchor is refused too', async () => {
    const other = await createTestPki({ name: 'other test' });
    const q = decodeQuote(buildQuote({ pck }));
    expect(() => verifyQuoteSignatures(q, { now: NOW, trustAnchor: other.anchor })).toThrow(expect.objectContaining({ code: 'TDX_CHAIN_UNTRUSTED_ROOT' }));
  });

  it('a revoked PCK certificate (PCK CRL) → TDX_CERT_REVOKED', async () => {
    const coll = await testCollateral(pki, platform, T0, T1, { revokedPckSerials: [pck.serialNumber] });
    expect(await codeOf(verifyQuote(buildQuote({ pck, body: { teeTcbSvn: platform.teeTcbSvn } }), { collateral: coll, now: NOW, trustAnchor: pki.anchor }))).toBe('TDX_CERT_REVOKED');
  });

  it('a revoked PCK CA (Root CA CRL) → TDX_CERT_REVOKED', async () => {
    const caSerial = new (await import('node:crypto')).X509Certificate(pki.pckCaPem).serialNumber;
    const coll = await testCollateral(pki, platform, T0, T1, { revokedCaSerials: [caSerial] });
    expect(await codeOf(verifyCollateral(coll, { now: NOW, trustAnchor: pki.anchor }))).toBe('TDX_CERT_REVOKED');
  });

  it('expired and not-yet-valid collateral', async () => {
    const coll = await testCollateral(pki, platform, T0, T1);
    expect(await codeOf(verifyQuote(buildQuote({ pck }), { collateral: coll, now: new Date('2025-03-01T00:00:00Z'), trustAnchor: pki.anchor }))).toBe('TDX_CRL_EXPIRED');
    expect(await codeOf(verifyQuote(buildQuote({ pck }), { collateral: coll, now: new Date('2024-12-01T00:00:00Z'), trustAnchor: pki.anchor }))).toBe('TDX_CRL_NOT_YET_VALID');
    const tcbOnly = { ...coll, tcbInfo: pki.signTcbInfo(testTcbInfo(platform, T0, new Date('2025-01-10T00:00:00Z'))) };
    expect(await codeOf(verifyCollateral(tcbOnly, { now: NOW, trustAnchor: pki.anchor }))).toBe('TDX_COLLATERAL_EXPIRED');
  });

  it('an expired PCK leaf → TDX_CERT_EXPIRED', async () => {
    const old = await pki.issuePck(platform, { notBefore: new Date('2020-01-01T00:00:00Z'), notAfter: new Date('2024-12-31T00:00:00Z') });
    const coll = await testCollateral(pki, platform, T0, T1);
    expect(await codeOf(verifyQuote(buildQuote({ pck: old }), { collateral: coll, now: NOW, trustAnchor: pki.anchor }))).toBe('TDX_CERT_EXPIRED');
  });

  it('wrong QE authentication data binding → TDX_QE_REPORT_DATA_MISMATCH', async () => {
    const q = buildQuote({ pck });
    // Change one byte of the QE auth data (after the QE report and its signature): the QE report still verifies.
    const off = 48 + 584 + 4 + 134 + 384 + 64 + 2;
    q[off]! ^= 0xff;
    const coll = await testCollateral(pki, platform, T0, T1);
    expect(await codeOf(verifyQuote(q, { collateral: coll, now: NOW, trustAnchor: pki.anchor }))).toBe('TDX_QE_REPORT_DATA_MISMATCH');
  });

  it('TCB status is a claim: SWHardeningNeeded with its advisory IDs passes only when the policy allows it', async () => {
    const coll = await testCollateral(pki, platform, T0, T1);
    const lower: TestPlatform = { ...platform, sgxTcbComponents: platform.sgxTcbComponents.map((s) => Math.max(0, s - 1)), pceSvn: 10, teeTcbSvn: Uint8Array.from([2, 0, 4]) };
    const lowPck = await pki.issuePck(lower);
    const q = buildQuote({ pck: lowPck, body: { teeTcbSvn: lower.teeTcbSvn } });
    const err = await verifyQuote(q, { collateral: coll, now: NOW, trustAnchor: pki.anchor }).catch((e: unknown) => e as JoinguardError);
    expect((err as JoinguardError).code).toBe('TDX_TCB_STATUS_NOT_ALLOWED');
    expect((err as JoinguardError).details).toMatchObject({ tcbStatus: 'SWHardeningNeeded', advisoryIds: ['INTEL-SA-00615', 'INTEL-SA-00657'] });
    const ok = await verifyQuote(q, { collateral: coll, now: NOW, trustAnchor: pki.anchor, policy: { allowedTcbStatuses: ['UpToDate', 'SWHardeningNeeded'] } });
    expect(ok).toMatchObject({ tcbStatus: 'SWHardeningNeeded', advisoryIds: ['INTEL-SA-00615', 'INTEL-SA-00657'] });
  });

  it('a platform below every TCB level → TDX_TCB_LEVEL_NOT_FOUND; a QE below every level → TDX_QE_TCB_LEVEL_NOT_FOUND', async () => {
    const coll = await testCollateral(pki, platform, T0, T1);
    const ancient = await pki.issuePck({ ...platform, sgxTcbComponents: new Array<number>(16).fill(0), pceSvn: 1 });
    expect(await codeOf(verifyQuote(buildQuote({ pck: ancient }), { collateral: coll, now: NOW, trustAnchor: pki.anchor }))).toBe('TDX_TCB_LEVEL_NOT_FOUND');
    expect(await codeOf(verifyQuote(buildQuote({ pck, body: { teeTcbSvn: platform.teeTcbSvn }, qeIsvSvn: 1 }), { collateral: coll, now: NOW, trustAnchor: pki.anchor }))).toBe('TDX_QE_TCB_LEVEL_NOT_FOUND');
    expect(await codeOf(verifyQuote(buildQuote({ pck, body: { teeTcbSvn: platform.teeTcbSvn }, qeIsvSvn: 3 }), { collateral: coll, now: NOW, trustAnchor: pki.anchor }))).toBe('TDX_QE_TCB_STATUS_NOT_ALLOWED');
    expect(await codeOf(verifyQuote(buildQuote({ pck, body: { teeTcbSvn: platform.teeTcbSvn }, qeMrSigner: new Uint8Array(32).fill(1) }), { collateral: coll, now: NOW, trustAnchor: pki.anchor }))).toBe('TDX_QE_IDENTITY_MISMATCH');
  });

  it('TDX module identity (TEE_TCB_SVN[1] > 0): matched by TDX_<major>, ISVSVN from TEE_TCB_SVN[0]', async () => {
    const tee = Uint8Array.from([3, 1, 5]);
    const info = testTcbInfo({ ...platform, teeTcbSvn: tee }, T0, T1, {
      tdxModuleIdentities: [{ id: 'TDX_01', mrsigner: '0'.repeat(96), attributes: '0000000000000000', attributesMask: 'FFFFFFFFFFFFFFFF', tcbLevels: [
        { tcb: { isvsvn: 5 }, tcbDate: '2024-06-01T00:00:00Z', tcbStatus: 'UpToDate' },
        { tcb: { isvsvn: 2 }, tcbDate: '2023-06-01T00:00:00Z', tcbStatus: 'OutOfDate', advisoryIDs: ['INTEL-SA-01036'] },
      ] }],
    });
    const coll = await testCollateral(pki, platform, T0, T1, { tcbInfo: info });
    const q = buildQuote({ pck, body: { teeTcbSvn: tee } });
    const err = await verifyQuote(q, { collateral: coll, now: NOW, trustAnchor: pki.anchor }).catch((e: unknown) => e as JoinguardError);
    expect((err as JoinguardError).code).toBe('TDX_TCB_STATUS_NOT_ALLOWED');
    expect((err as JoinguardError).details).toMatchObject({ tcbStatus: 'OutOfDate', advisoryIds: ['INTEL-SA-01036'] });
    const q2 = buildQuote({ pck, body: { teeTcbSvn: Uint8Array.from([3, 2, 5]) } });
    expect(await codeOf(verifyQuote(q2, { collateral: coll, now: NOW, trustAnchor: pki.anchor }))).toBe('TDX_MODULE_IDENTITY_NOT_FOUND');
  });

  it('the PCK chain cache: second verification of a platform reuses the checked chain, revocation still applies', async () => {
    const cache = new PckChainCache();
    const coll = await verifyCollateral(await testCollateral(pki, platform, T0, T1), { now: NOW, trustAnchor: pki.anchor });
    const q = buildQuote({ pck, body: { teeTcbSvn: platform.teeTcbSvn } });
    await verifyQuote(q, { collateral: coll, now: NOW, cache });
    await verifyQuote(q, { collateral: coll, now: NOW, cache });
    expect(cache.size).toBe(1);
    const revoked = await verifyCollateral(await testCollateral(pki, platform, T0, T1, { revokedPckSerials: [pck.serialNumber] }), { now: NOW, trustAnchor: pki.anchor });
    expect(await codeOf(verifyQuote(q, { collateral: revoked, now: NOW, cache }))).toBe('TDX_CERT_REVOKED');
  });

  it('the QE report cache: a verified QE report is not re-verified, but changed QE report bytes or signature still fail', async () => {
    const cache = new PckChainCache();
    const coll = await verifyCollateral(await testCollateral(pki, platform, T0, T1), { now: NOW, trustAnchor: pki.anchor });
    const q = buildQuote({ pck, body: { teeTcbSvn: platform.teeTcbSvn } });
    await verifyQuote(q, { collateral: coll, now: NOW, cache });
    const d = decodeQuote(q);
    const sd = d.signatureData;
    const chain = [...cache['map'].values()][0]!;
    const { createHash } = await import('node:crypto');
    const digest = createHash('sha256').update(sd.certificationData.qeReport.raw).update(sd.certificationData.qeReportSignature).digest('base64');
    expect(cache.qeReportVerified(chain, digest)).toBe(true);
    // Locate the QE report and its signature in the quote bytes and flip one bit in each, with the cache warm.
    const at = (needle: Uint8Array) => Buffer.from(q).indexOf(Buffer.from(needle));
    const reportAt = at(sd.certificationData.qeReport.raw);
    const sigAt = at(sd.certificationData.qeReportSignature);
    expect(reportAt).toBeGreaterThan(0);
    expect(sigAt).toBeGreaterThan(0);
    const badReport = Uint8Array.from(q);
    badReport[reportAt + 100]! ^= 1;
    expect(await codeOf(verifyQuote(badReport, { collateral: coll, now: NOW, cache }))).toBe('TDX_QE_REPORT_BAD_SIGNATURE');
    const badSig = Uint8Array.from(q);
    badSig[sigAt + 10]! ^= 1;
    expect(await codeOf(verifyQuote(badSig, { collateral: coll, now: NOW, cache }))).toBe('TDX_QE_REPORT_BAD_SIGNATURE');
    // And the good quote still verifies from the cache.
    await verifyQuote(q, { collateral: coll, now: NOW, cache });
  });

  it('TCB info signed by a platform PCK key (certified under the same root) → TDX_COLLATERAL_BAD_SIGNER', async () => {
    const { sign } = await import('node:crypto');
    const coll = await testCollateral(pki, platform, T0, T1);
    const member = JSON.stringify(testTcbInfo(platform, T0, T1));
    const sig = sign('sha256', Buffer.from(member), { key: pck.privateKey, dsaEncoding: 'ieee-p1363' }).toString('hex');
    const forged = { ...coll, tcbInfo: `{"tcbInfo":${member},"signature":"${sig}"}`, tcbInfoIssuerChain: pck.chainPem };
    expect(await codeOf(verifyCollateral(forged, { now: NOW, trustAnchor: pki.anchor }))).toBe('TDX_COLLATERAL_BAD_SIGNER');
  });

  it('a PCK CRL of another PCK CA than the quote PCK issuer → TDX_PCK_CRL_ISSUER_MISMATCH', async () => {
    const other = await createTestPki({ name: 'other test' });
    const otherVc = await verifyCollateral(await testCollateral(other, platform, T0, T1), { now: NOW, trustAnchor: other.anchor });
    const vc = await verifyCollateral(await testCollateral(pki, platform, T0, T1), { now: NOW, trustAnchor: pki.anchor });
    // Same anchor, but the CRL issuer recorded is the other PKI's PCK CA.
    const mixed = { ...vc, pckCaFingerprint256: otherVc.pckCaFingerprint256 };
    expect(await codeOf(verifyQuote(buildQuote({ pck, body: { teeTcbSvn: platform.teeTcbSvn } }), { collateral: mixed, now: NOW }))).toBe('TDX_PCK_CRL_ISSUER_MISMATCH');
  });

  it('trailing bytes after the signature data are tolerated and reported', () => {
    const q = decodeQuote(buildQuote({ pck, trailingBytes: 100 }));
    expect(q.trailingBytes).toBe(100);
    expect(() => verifyQuoteSignatures(q, { now: NOW, trustAnchor: pki.anchor })).not.toThrow();
  });
});
