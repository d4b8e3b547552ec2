import { describe, expect, it } from 'vitest';
import { verify as cryptoVerify } from 'node:crypto';
import { JoinguardError } from '@joinguard/core';
import { createHash } from 'node:crypto';
import { expectedDecodedFields, readVector, readVectorText } from '@joinguard/core/testing';
import {
  decodeQuote, verifyQuoteSignatures, verifyQuote, verifyCollateral, readCollateralBundle, parseSignedJson, parsePemChain, verifyChain,
  intelSgxRootCa, checkTcbInfoShape, checkEnclaveIdentityShape, evaluateTdxTcb, evaluateQeIdentity, verifyCcel, compareRtmrs, checkPckChain,
} from '../src/index.js';
import { QUOTES, assembleCollateralDir } from './vectors.js';

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    if (typeof p === 'function') p();
    else await p;
  } catch (e) {
    expect(e).toBeInstanceOf(JoinguardError);
    return (e as JoinguardError).code;
  }
  throw new Error('expected a rejection');
}

const at = (s: string) => new Date(s);

/*
 * Which checks the published collateral lets us exercise (MANIFEST.md):
 * - v4 SPR at 2023-07-01: everything (quote, QE, binding, PCK chain, PCK CRL + Root CA CRL, TCB info and
 *   QE identity signatures/chains/windows) → TCB matching finds no level (TDX_TCB_LEVEL_NOT_FOUND).
 * - v5: quote/QE/binding/PCK chain at 2026-02-03. Its TCB info (2026-02-01..03-03) is signed by the TCB
 *   Signing key, whose certificate expired 2025-05-21, and the only CRLs and QE identity are from 2023, so no
 *   single time makes the whole bundle valid: the signature and chain are checked at 2024-06-01, the
 *   window and TCB matching at 2026-02-10 (UpToDate, TDX module TDX_01 UpToDate).
 * - COS-113 and Azure (FMSPC 00806f050000): quote/QE/binding/PCK chain only; no TCB info is published for
 *   that FMSPC and their PCK certificates postdate the only PCK CRL, so revocation is not exercised for them.
 */
describe('published quotes: signatures, QE binding and PCK chain', () => {
  for (const [name, v] of Object.entries(QUOTES)) {
    it(`${name}: verifies at ${v.at}`, () => {
      const q = decodeQuote(readVector(v.path));
      const chain = verifyQuoteSignatures(q, { now: at(v.at) });
      expect(chain.pckCa).toBe('platform');
      expect(chain.path[chain.path.length - 1]!.fingerprint256).toBe(intelSgxRootCa().fingerprint256);
    });

    it(`${name}: each check the expected-fields file states ("verify") holds on its own`, () => {
      const exp = (expectedDecodedFields()[v.path] as { verify: Record<string, boolean> }).verify;
      const q = decodeQuote(readVector(v.path));
      const sd = q.signatureData;
      const cd = sd.certificationData;
      const ak = (sig: Uint8Array, data: Uint8Array, key: Parameters<typeof cryptoVerify>[2]) => cryptoVerify('sha256', data, key, sig);
      const akKey = { key: Buffer.concat([Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex'), Buffer.from([4]), sd.attestationKey]), format: 'der' as const, type: 'spki' as const, dsaEncoding: 'ieee-p1363' as const };
      const pck = checkPckChain(cd.pckCertChainPem, intelSgxRootCa());
      const binding = createHash('sha256').update(sd.attestationKey).update(cd.qeAuthData).digest();
      expect({
        quote_sig: ak(sd.quoteSignature, q.signedData, akKey),
        qe_report_sig_by_pck: ak(cd.qeReportSignature, cd.qeReport.raw, { key: pck.leafKey, dsaEncoding: 'ieee-p1363' }),
        qe_report_data_binds_ak: binding.equals(Buffer.from(cd.qeReport.reportData.subarray(0, 32))),
      }).toEqual(exp);
    });
  }

  it('COS-113: report_data is the 64 zero bytes of nonce.bin', () => {
    const nonce = readVector('tdx/gotdxguest_cos113_v4_ccel/nonce.bin');
    expect(nonce.length).toBe(64);
    expect(Buffer.from(decodeQuote(readVector(QUOTES.cos113.path)).body.reportData).equals(Buffer.from(nonce))).toBe(true);
  });

  it('none of the published PCK leaf serials is in the published PCK Platform CRL (44 entries)', async () => {
    const dir = assembleCollateralDir('tdx/gotdxguest_v4_spr/tcbinfo_fmspc_50806f000000.json', '50806f000000');
    const vc = await verifyCollateral(readCollateralBundle(dir, '50806f000000', 'platform'), { now: at(QUOTES.v4spr.at) });
    const crl = vc.crls.find((c) => c.what.startsWith('PCK CRL'))!;
    expect(crl.revokedSerials.size).toBe(44);
    for (const v of Object.values(QUOTES)) {
      const leaf = parsePemChain(decodeQuote(readVector(v.path)).signatureData.certificationData.pckCertChainPem, 'PCK chain')[0]!;
      expect(crl.revokedSerials.has(leaf.serialNumber.toLowerCase().replace(/^0+/, '')), v.path).toBe(false);
    }
    // The lookup is live only if both sides are normalised alike: lower-case hex without leading zeros.
    expect([...crl.revokedSerials].every((x) => /^(0|[1-9a-f][0-9a-f]*)$/.test(x))).toBe(true);
  });

  it('FMSPCs from the PCK SGX extensions are those MANIFEST names', () => {
    const fmspc = (p: string, t: string) => Buffer.from(verifyQuoteSignatures(decodeQuote(readVector(p)), { now: at(t) }).pck.fmspc).toString('hex');
    expect(fmspc(QUOTES.v4spr.path, QUOTES.v4spr.at)).toBe('50806f000000');
    expect(fmspc(QUOTES.v5.path, QUOTES.v5.at)).toBe('90c06f000000');
    expect(fmspc(QUOTES.cos113.path, QUOTES.cos113.at)).toBe('00806f050000');
    expect(fmspc(QUOTES.azure.path, QUOTES.azure.at)).toBe('00806f050000');
  });

  it('v4 SPR PCK SGX TCB components are 3,3,2,2,2,1,0,2 (MANIFEST)', () => {
    const c = verifyQuoteSignatures(decodeQuote(readVector(QUOTES.v4spr.path)), { now: at(QUOTES.v4spr.at) });
    expect(c.pck.sgxTcbComponents.slice(0, 8)).toEqual([3, 3, 2, 2, 2, 1, 0, 2]);
  });

  it('a PCK chain outside its validity is rejected: COS-113 PCK before its notBefore', async () => {
    expect(await codeOf(() => verifyQuoteSignatures(decodeQuote(readVector(QUOTES.cos113.path)), { now: at('2023-07-01T00:00:00Z') }))).toBe('TDX_CERT_NOT_YET_VALID');
    expect(await codeOf(() => verifyQuoteSignatures(decodeQuote(readVector(QUOTES.v4spr.path)), { now: at('2050-01-01T00:00:00Z') }))).toBe('TDX_CERT_EXPIRED');
  });
});

describe('mutated published quotes are rejected with specific codes', () => {
  const v4 = () => new Uint8Array(readVector(QUOTES.v4spr.path));
  const sig = (bytes: Uint8Array, now: string = QUOTES.v4spr.at) => codeOf(() => verifyQuoteSignatures(decodeQuote(bytes), { now: at(now) }));
  const sd = 0x27c; // v4: signature data after header (48) + body (584) + length (4)

  it('derived v5 RTMR0 bit flip → TDX_QUOTE_BAD_SIGNATURE, while its QE parts stay valid (MANIFEST)', async () => {
    const bytes = readVector('tdx/derived/gotdxguest_v5_rtmr0_bitflip.dat');
    expect(await sig(bytes, QUOTES.v5.at)).toBe('TDX_QUOTE_BAD_SIGNATURE');
    const q = decodeQuote(bytes);
    const good = decodeQuote(readVector(QUOTES.v5.path));
    // Quote offset 382 = v5 header and type/size (54) + RTMR0's offset in the body (328): RTMR0's first byte.
    expect(q.body.rtmr0[0]! ^ good.body.rtmr0[0]!).toBe(1);
    const cd = q.signatureData.certificationData;
    const pck = checkPckChain(cd.pckCertChainPem, intelSgxRootCa());
    expect(cryptoVerify('sha256', cd.qeReport.raw, { key: pck.leafKey, dsaEncoding: 'ieee-p1363' }, cd.qeReportSignature)).toBe(true);
  });

  it('MANIFEST source negatives at 0x1E (header) and 0x3C (body) = 0x32 → TDX_QUOTE_BAD_SIGNATURE', async () => {
    for (const off of [0x1e, 0x3c]) {
      const q = v4();
      q[off] = 0x32;
      expect(await sig(q)).toBe('TDX_QUOTE_BAD_SIGNATURE');
    }
  });

  it('MANIFEST source negatives in the PCK cert (0xB77), intermediate (0xF5F), root (0x1329) = 0x32 → chain rejected', async () => {
    const codes: string[] = [];
    for (const off of [0xb77, 0xf5f, 0x1329]) {
      const q = v4();
      q[off] = 0x32;
      codes.push(await sig(q));
    }
    expect(codes).toEqual(['TDX_CHAIN_BAD_SIGNATURE', 'TDX_CHAIN_BAD_SIGNATURE', 'TDX_CHAIN_UNTRUSTED_ROOT']);
  });

  it('flipped quote signature, QE report, QE report signature, QE auth data', async () => {
    let q = v4();
    q[sd + 5] ^= 1;
    expect(await sig(q)).toBe('TDX_QUOTE_BAD_SIGNATURE');
    q = v4();
    q[sd + 134 + 100] ^= 1; // inside the QE report (MRENCLAVE)
    expect(await sig(q)).toBe('TDX_QE_REPORT_BAD_SIGNATURE');
    q = v4();
    q[sd + 134 + 384 + 10] ^= 1;
    expect(await sig(q)).toBe('TDX_QE_REPORT_BAD_SIGNATURE');
    q = v4();
    q[sd + 134 + 450 + 3] ^= 1; // QE authentication data
    expect(await sig(q)).toBe('TDX_QE_REPORT_DATA_MISMATCH');
    q = v4();
    q[sd + 64 + 7] ^= 1; // attestation key: no longer the signer (or not a curve point)
    expect(['TDX_QUOTE_BAD_SIGNATURE', 'TDX_BAD_ATTESTATION_KEY']).toContain(await sig(q));
  });
});

describe('collateral from the published files (offline directory assembled in a temp dir)', () => {
  it('v4 SPR at 2023-07-01: all collateral verifies, and TCB matching reports no matching level', async () => {
    const dir = assembleCollateralDir('tdx/gotdxguest_v4_spr/tcbinfo_fmspc_50806f000000.json', '50806f000000');
    const bundle = readCollateralBundle(dir, '50806f000000', 'platform');
    const vc = await verifyCollateral(bundle, { now: at(QUOTES.v4spr.at) });
    expect(vc.tcbInfo.tcbEvaluationDataNumber).toBe(15);
    expect(vc.crls.find((c) => c.what.startsWith('PCK CRL'))!.revokedSerials.size).toBe(44);
    const q = readVector(QUOTES.v4spr.path);
    const e = await verifyQuote(q, { collateral: vc, now: at(QUOTES.v4spr.at) }).catch((x: unknown) => x as JoinguardError);
    expect(e).toBeInstanceOf(JoinguardError);
    expect((e as JoinguardError).code).toBe('TDX_TCB_LEVEL_NOT_FOUND');
    expect((e as JoinguardError).details.sgxTcbComponents).toEqual([3, 3, 2, 2, 2, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]);
    // The QE part alone: QE identity TD_QE 2023-06 accepts this QE (ISVSVN 4 ≥ 4) as UpToDate.
    expect(evaluateQeIdentity(vc.qeIdentity, decodeQuote(q).signatureData.certificationData.qeReport).qeTcbStatus).toBe('UpToDate');
  });

  it('each piece of collateral is checked against the given time', async () => {
    const dir = assembleCollateralDir('tdx/gotdxguest_v4_spr/tcbinfo_fmspc_50806f000000.json', '50806f000000');
    const bundle = readCollateralBundle(dir, '50806f000000', 'platform');
    // 2023-06-10: CRLs and QE identity valid, TCB info not issued yet (2023-06-18).
    expect(await codeOf(verifyCollateral(bundle, { now: at('2023-06-10T00:00:00Z') }))).toBe('TDX_COLLATERAL_NOT_YET_VALID');
    // 2023-07-10: PCK CRL nextUpdate (2023-07-08) has passed.
    expect(await codeOf(verifyCollateral(bundle, { now: at('2023-07-10T00:00:00Z') }))).toBe('TDX_CRL_EXPIRED');
    // 2024-05-01: the Root CA CRL (nextUpdate 2024-04-02) has passed.
    expect(await codeOf(verifyCollateral(bundle, { now: at('2024-05-01T00:00:00Z') }))).toBe('TDX_CRL_EXPIRED');
    // Collateral verified once cannot be used for a quote at a time outside its windows.
    const vc = await verifyCollateral(bundle, { now: at('2023-07-01T00:00:00Z') });
    expect(await codeOf(verifyQuote(readVector(QUOTES.v4spr.path), { collateral: vc, now: at('2023-07-09T00:00:00Z') }))).toBe('TDX_CRL_EXPIRED');
  });

  it('collateral swapped between files is refused (TCB info signature, CRL issuer)', async () => {
    const dir = assembleCollateralDir('tdx/gotdxguest_v4_spr/tcbinfo_fmspc_50806f000000.json', '50806f000000');
    const b = readCollateralBundle(dir, '50806f000000', 'platform');
    const tampered = { ...b, tcbInfo: b.tcbInfo.replace('"tcbEvaluationDataNumber":15', '"tcbEvaluationDataNumber":16') };
    expect(await codeOf(verifyCollateral(tampered, { now: at(QUOTES.v4spr.at) }))).toBe('TDX_COLLATERAL_BAD_SIGNATURE');
    expect(await codeOf(verifyCollateral({ ...b, rootCaCrl: b.pckCrl }, { now: at(QUOTES.v4spr.at) }))).toBe('TDX_CRL_BAD_SIGNATURE');
    expect(await codeOf(verifyCollateral({ ...b, qeIdentity: b.tcbInfo }, { now: at(QUOTES.v4spr.at) }))).toBe('TDX_COLLATERAL_MALFORMED');
    expect(await codeOf(verifyCollateral({ ...b, pckCrl: b.pckCrl.subarray(0, 100) }, { now: at(QUOTES.v4spr.at) }))).toBe('TDX_CRL_MALFORMED');
  });

  it('v5: TCB info signature (chain checked at 2024-06-01) and matching at 2026-02-10 give UpToDate, module TDX_01 UpToDate', () => {
    const text = readVectorText('tdx/gotdxguest_v5/tcbinfo_fmspc_90c06f000000.json');
    const signed = parseSignedJson<unknown>(text, 'tcbInfo', 'TCB info');
    const path = verifyChain(parsePemChain(readVectorText('tdx/intel_roots/tcb_info_issuer_chain.pem'), 'TCB chain'), intelSgxRootCa(), at('2024-06-01T00:00:00Z'), [], 'TCB info issuer chain');
    expect(cryptoVerify('sha256', signed.signedBytes, { key: path[0]!.publicKey, dsaEncoding: 'ieee-p1363' }, signed.signature)).toBe(true);
    const info = checkTcbInfoShape(signed.value);
    const q = decodeQuote(readVector(QUOTES.v5.path));
    const chain = verifyQuoteSignatures(q, { now: at(QUOTES.v5.at) });
    const ev = evaluateTdxTcb(info, chain.pck, q.body);
    expect(ev.tcbStatus).toBe('UpToDate');
    expect(ev.tcbDate).toBe('2024-11-13T00:00:00Z');
    expect(ev.tdxModule).toMatchObject({ id: 'TDX_01', isvSvn: 11, tcbStatus: 'UpToDate' });
    // The whole bundle cannot be valid at one time: at 2026-02-10 the TCB Signing certificate has expired.
    expect(() => verifyChain(path, intelSgxRootCa(), at('2026-02-10T00:00:00Z'), [], 'TCB info issuer chain')).toThrow(/expired/);
  });

  it('the TD_QE identity and v5 TCB info say what MANIFEST says (id, version, tcbEval, validity, mrsigner, isvprodid, levels)', () => {
    const qe = checkEnclaveIdentityShape(parseSignedJson<unknown>(readVectorText('tdx/intel_roots/qe_identity_td_qe_2023-06.json'), 'enclaveIdentity', 'QE identity').value);
    expect([qe.id, qe.version, qe.tcbEvaluationDataNumber, qe.isvprodid]).toEqual(['TD_QE', 2, 15, 2]);
    expect(qe.issueDate.slice(0, 10)).toBe('2023-06-08');
    expect(qe.nextUpdate.slice(0, 10)).toBe('2023-07-08');
    expect(qe.mrsigner.startsWith('DC9E2A7C') && qe.mrsigner.endsWith('A8C5')).toBe(true);
    expect(qe.tcbLevels[0]).toMatchObject({ tcb: { isvsvn: 4 }, tcbStatus: 'UpToDate' });
    const v5 = checkTcbInfoShape(parseSignedJson<unknown>(readVectorText('tdx/gotdxguest_v5/tcbinfo_fmspc_90c06f000000.json'), 'tcbInfo', 'TCB info').value);
    expect([v5.tcbEvaluationDataNumber, v5.issueDate.slice(0, 10), v5.nextUpdate.slice(0, 10)]).toEqual([18, '2026-02-01', '2026-03-03']);
    const spr = checkTcbInfoShape(parseSignedJson<unknown>(readVectorText('tdx/gotdxguest_v4_spr/tcbinfo_fmspc_50806f000000.json'), 'tcbInfo', 'TCB info').value);
    expect([spr.version, spr.tcbEvaluationDataNumber, spr.issueDate.slice(0, 10), spr.nextUpdate.slice(0, 10)]).toEqual([3, 15, '2023-06-18', '2023-07-18']);
  });

  it('v5 QE against the 2023-06 TD_QE identity (the only one published): identity matches, ISVSVN 7 → UpToDate', () => {
    const signed = parseSignedJson<unknown>(readVectorText('tdx/intel_roots/qe_identity_td_qe_2023-06.json'), 'enclaveIdentity', 'QE identity');
    const path = verifyChain(parsePemChain(readVectorText('tdx/intel_roots/qe_identity_issuer_chain.pem'), 'QE chain'), intelSgxRootCa(), at('2023-07-01T00:00:00Z'), [], 'QE identity issuer chain');
    expect(cryptoVerify('sha256', signed.signedBytes, { key: path[0]!.publicKey, dsaEncoding: 'ieee-p1363' }, signed.signature)).toBe(true);
    const qe = decodeQuote(readVector(QUOTES.v5.path)).signatureData.certificationData.qeReport;
    expect(evaluateQeIdentity(checkEnclaveIdentityShape(signed.value), qe)).toMatchObject({ qeTcbStatus: 'UpToDate', isvSvn: 7 });
  });

  it('the v4 SPR TCB info applied to the v5 quote is refused for its FMSPC', () => {
    const info = checkTcbInfoShape(parseSignedJson<unknown>(readVectorText('tdx/gotdxguest_v4_spr/tcbinfo_fmspc_50806f000000.json'), 'tcbInfo', 'TCB info').value);
    const q = decodeQuote(readVector(QUOTES.v5.path));
    const chain = verifyQuoteSignatures(q, { now: at(QUOTES.v5.at) });
    expect(() => evaluateTdxTcb(info, chain.pck, q.body)).toThrow(expect.objectContaining({ code: 'TDX_TCB_INFO_FMSPC_MISMATCH' }));
  });

  it('quotes whose FMSPC has no TCB info in the directory: TDX_COLLATERAL_MISSING (an input error)', () => {
    const dir = assembleCollateralDir('tdx/gotdxguest_v4_spr/tcbinfo_fmspc_50806f000000.json', '50806f000000');
    let err: unknown;
    try {
      readCollateralBundle(dir, '00806f050000', 'platform');
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'TDX_COLLATERAL_MISSING', kind: 'input' });
  });
});

describe('CCEL replay against the quote RTMRs', () => {
  it('COS-113: replaying the CCEL gives exactly RTMR0..3 of the quote (44 events)', () => {
    const q = decodeQuote(readVector(QUOTES.cos113.path));
    verifyQuoteSignatures(q, { now: at(QUOTES.cos113.at) });
    const r = verifyCcel(q.body, readVector('tdx/gotdxguest_cos113_v4_ccel/ccel_data.bin'));
    expect(r.events).toBe(44);
    expect(r.rtmrs.rtmr0).toBe(Buffer.from(q.body.rtmr0).toString('hex'));
  });

  it('the same CCEL against another quote → TDX_RTMR_MISMATCH naming the registers', () => {
    const q = decodeQuote(readVector(QUOTES.v4spr.path));
    let err: JoinguardError | undefined;
    try {
      verifyCcel(q.body, readVector('tdx/gotdxguest_cos113_v4_ccel/ccel_data.bin'));
    } catch (e) {
      err = e as JoinguardError;
    }
    expect(err?.code).toBe('TDX_RTMR_MISMATCH');
    expect((err?.details.mismatches as { rtmr: string }[]).map((m) => m.rtmr)).toEqual(['rtmr0', 'rtmr1', 'rtmr2']);
  });

  it('compareRtmrs accepts replayed values given directly and rejects one changed register', () => {
    const q = decodeQuote(readVector(QUOTES.cos113.path));
    const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
    const r = { rtmr0: hex(q.body.rtmr0), rtmr1: hex(q.body.rtmr1), rtmr2: hex(q.body.rtmr2), rtmr3: hex(q.body.rtmr3) };
    expect(() => compareRtmrs(q.body, r)).not.toThrow();
    expect(() => compareRtmrs(q.body, { ...r, rtmr3: 'ff'.repeat(48) })).toThrow(expect.objectContaining({ code: 'TDX_RTMR_MISMATCH' }));
  });

  it('a truncated CCEL is TDX_CCEL_INVALID or an eventlog code, not a crash', () => {
    const q = decodeQuote(readVector(QUOTES.cos113.path));
    const ccel = readVector('tdx/gotdxguest_cos113_v4_ccel/ccel_data.bin');
    let err: unknown;
    try {
      verifyCcel(q.body, ccel.subarray(0, 1000));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(JoinguardError);
  });
});
