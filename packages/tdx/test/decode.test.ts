import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { JoinguardError, toHex } from '@joinguard/core';
import { expectedDecodedFields, readVector } from '@joinguard/core/testing';
import { decodeQuote, inspectQuote, parsePemChain, type TdxQuote } from '../src/index.js';
import { QUOTES } from './vectors.js';

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(JoinguardError);
    return (e as JoinguardError).code;
  }
  throw new Error('expected a rejection');
}

/** The shape of one TDX entry of EXPECTED_decoded_fields.json. */
interface ExpectedQuote {
  header: { version: number; att_key_type: number; tee_type: string; qe_svn: number; pce_svn: number; qe_vendor_id: string; user_data: string };
  body_type?: number;
  body_size?: number;
  body: Record<string, string>;
  sig_data_len: number;
  trailing_after_sig: number;
  outer_cert_type: number;
  qe_report: { cpusvn: string; miscselect: string; attributes: string; mrenclave: string; mrsigner: string; isvprodid: number; isvsvn: number; report_data: string };
  qe_auth_data: string;
  inner_cert_type: number;
  pck_chain: string[];
}

function dn(subject: string): string {
  // node lists RDNs in certificate order (CN first here); the expected file uses RFC 4514 order (last RDN first).
  return subject.split('\n').reverse().join(',');
}

describe('decodeQuote on the published quotes', () => {
  const expected = expectedDecodedFields();
  for (const [name, v] of Object.entries(QUOTES)) {
    it(`${name}: every field equals EXPECTED_decoded_fields.json`, () => {
      const exp = expected[v.path] as unknown as ExpectedQuote;
      expect(exp).toBeDefined();
      const bytes = readVector(v.path);
      const q: TdxQuote = decodeQuote(bytes);
      const h = exp.header;
      expect(q.header.version).toBe(h.version);
      expect(q.header.attestationKeyType).toBe(h.att_key_type);
      expect(`0x${q.header.teeType.toString(16)}`).toBe(h.tee_type);
      expect(q.header.qeSvn).toBe(h.qe_svn);
      expect(q.header.pceSvn).toBe(h.pce_svn);
      expect(toHex(q.header.qeVendorId)).toBe(h.qe_vendor_id);
      expect(toHex(q.header.userData)).toBe(h.user_data);
      if (exp.body_type !== undefined) expect(q.bodyType).toBe(exp.body_type);
      const b = exp.body;
      const map: Record<string, Uint8Array | undefined> = {
        tee_tcb_svn: q.body.teeTcbSvn, mrseam: q.body.mrSeam, mrsignerseam: q.body.mrSignerSeam, seam_attributes: q.body.seamAttributes,
        td_attributes: q.body.tdAttributes, xfam: q.body.xfam, mrtd: q.body.mrTd, mrconfigid: q.body.mrConfigId, mrowner: q.body.mrOwner,
        mrownerconfig: q.body.mrOwnerConfig, rtmr0: q.body.rtmr0, rtmr1: q.body.rtmr1, rtmr2: q.body.rtmr2, rtmr3: q.body.rtmr3,
        report_data: q.body.reportData, tee_tcb_svn2: q.body.teeTcbSvn2, mrservicetd: q.body.mrServiceTd,
      };
      for (const k of Object.keys(b)) {
        expect(map[k], k).toBeDefined();
        expect(toHex(map[k]!), k).toBe(b[k]);
      }
      if (q.header.version === 4) expect(q.body.teeTcbSvn2).toBeUndefined();
      expect(q.signatureDataLength).toBe(exp.sig_data_len);
      expect(q.trailingBytes).toBe(exp.trailing_after_sig);
      expect(q.signatureData.certificationDataType).toBe(exp.outer_cert_type);
      const cd = q.signatureData.certificationData;
      const qe = cd.qeReport;
      expect(toHex(qe.cpuSvn)).toBe(exp.qe_report.cpusvn);
      expect(qe.miscSelect).toBe(Buffer.from(exp.qe_report.miscselect, 'hex').readUInt32LE());
      expect(toHex(qe.attributes)).toBe(exp.qe_report.attributes);
      expect(toHex(qe.mrEnclave)).toBe(exp.qe_report.mrenclave);
      expect(toHex(qe.mrSigner)).toBe(exp.qe_report.mrsigner);
      expect(qe.isvProdId).toBe(exp.qe_report.isvprodid);
      expect(qe.isvSvn).toBe(exp.qe_report.isvsvn);
      expect(toHex(qe.reportData)).toBe(exp.qe_report.report_data);
      expect(toHex(cd.qeAuthData)).toBe(exp.qe_auth_data);
      expect(cd.pckCertDataType).toBe(exp.inner_cert_type);
      expect(parsePemChain(cd.pckCertChainPem, 'PCK chain').map((c) => dn(c.subject))).toEqual(exp.pck_chain);
      // The signed region is header ‖ body (v5: ‖ type and size), right before the signature data length.
      expect(q.signedData.length).toBe(q.header.version === 4 ? 48 + 584 : 54 + (q.bodyType === 3 ? 648 : 584));
      if (exp.body_size !== undefined) expect(q.signedData.length - 54, 'body_size').toBe(exp.body_size);
    });

    it(`${name}: the test compares every field the expected-fields file has (a new field fails here)`, () => {
      const exp = expected[v.path] as unknown as Record<string, unknown>;
      // "verify" (quote signature, QE report signature, QE binding) is asserted in verify-vectors.test.ts.
      const compared = ['header', 'body_type', 'body_size', 'body', 'sig_data_len', 'trailing_after_sig', 'outer_cert_type', 'qe_report', 'qe_auth_data', 'inner_cert_type', 'pck_chain', 'verify'];
      expect(Object.keys(exp).filter((k) => !compared.includes(k))).toEqual([]);
      expect(Object.keys(exp.header as object).sort()).toEqual(['att_key_type', 'pce_svn', 'qe_svn', 'qe_vendor_id', 'tee_type', 'user_data', 'version']);
      expect(Object.keys(exp.qe_report as object).sort()).toEqual(['attributes', 'cpusvn', 'isvprodid', 'isvsvn', 'miscselect', 'mrenclave', 'mrsigner', 'report_data']);
    });

    it(`${name}: inspect JSON carries the DESIGN.md field names in hex`, () => {
      const j = inspectQuote(decodeQuote(readVector(v.path)));
      for (const k of ['version', 'attestationKeyType', 'teeType', 'qeSvn', 'pceSvn', 'qeVendorId', 'userData', 'teeTcbSvn', 'mrSeam', 'mrSignerSeam', 'seamAttributes', 'tdAttributes', 'xfam', 'mrTd', 'mrConfigId', 'mrOwner', 'mrOwnerConfig', 'rtmr0', 'rtmr1', 'rtmr2', 'rtmr3', 'reportData']) {
        expect(j, k).toHaveProperty(k);
      }
      expect(j.mrTd).toBe((expected[v.path] as unknown as ExpectedQuote).body.mrtd);
    });
  }
});

describe('decodeQuote rejects broken quotes with specific codes', () => {
  it('derived v5 quote truncated to 4000 bytes (sig_data_len 4300, 3294 left) → TDX_QUOTE_TRUNCATED', () => {
    expect(code(() => decodeQuote(readVector('tdx/derived/gotdxguest_v5_truncated_4000.dat')))).toBe('TDX_QUOTE_TRUNCATED');
  });

  it('every prefix of a quote shorter than its signature data is rejected as truncated, never thrown raw', () => {
    const q = readVector(QUOTES.v4spr.path);
    const sigEnd = q.length - 39;
    for (let n = 0; n < sigEnd; n += n < 700 ? 1 : 17) {
      const c = code(() => decodeQuote(q.subarray(0, n)));
      expect(['TDX_QUOTE_TRUNCATED']).toContain(c);
    }
  });

  it('MANIFEST source negatives: byte 0x00 = 3 (version) → TDX_QUOTE_UNSUPPORTED_VERSION', () => {
    const q = new Uint8Array(readVector(QUOTES.v4spr.path));
    q[0x00] = 3;
    expect(code(() => decodeQuote(q))).toBe('TDX_QUOTE_UNSUPPORTED_VERSION');
  });

  it('MANIFEST source negatives: byte 0x278 = 0x10 (signature data length 16) → rejected on length', () => {
    const q = new Uint8Array(readVector(QUOTES.v4spr.path));
    q[0x278] = 0x10;
    expect(code(() => decodeQuote(q))).toBe('TDX_QUOTE_TRUNCATED');
  });

  it('absurd lengths are refused before any allocation', () => {
    const q = new Uint8Array(readVector(QUOTES.v4spr.path));
    const dv = new DataView(q.buffer);
    const withU32 = (off: number, v: number) => {
      const c = new Uint8Array(q);
      new DataView(c.buffer).setUint32(off, v, true);
      return c;
    };
    expect(code(() => decodeQuote(withU32(0x278, 0xffffffff)))).toBe('TDX_QUOTE_TRUNCATED');
    // certification data size (after sig 64 + key 64 + type 2)
    expect(code(() => decodeQuote(withU32(0x27c + 130, 0x7fffffff)))).toBe('TDX_QUOTE_TRUNCATED');
    // QE auth data size u16 at 0x27c + 134 + 384 + 64
    const c = new Uint8Array(q);
    new DataView(c.buffer).setUint16(0x27c + 134 + 448, 0xffff, true);
    expect(code(() => decodeQuote(c))).toBe('TDX_QUOTE_TRUNCATED');
    // nested PCK chain size far larger than any chain
    const authLen = dv.getUint16(0x27c + 134 + 448, true);
    expect(code(() => decodeQuote(withU32(0x27c + 134 + 450 + authLen + 2, 0x40000000)))).toBe('TDX_QUOTE_MALFORMED');
    expect(code(() => decodeQuote(new Uint8Array(1024 * 1024)))).toBe('TDX_QUOTE_MALFORMED');
  });

  it('wrong key type, TEE type, body type and certification data types are named', () => {
    const base = readVector(QUOTES.v4spr.path);
    const mut = (off: number, v: number, src = base) => {
      const c = new Uint8Array(src);
      c[off] = v;
      return c;
    };
    expect(code(() => decodeQuote(mut(2, 3)))).toBe('TDX_QUOTE_UNSUPPORTED_KEY_TYPE');
    expect(code(() => decodeQuote(mut(4, 0x00)))).toBe('TDX_QUOTE_NOT_TDX');
    expect(code(() => decodeQuote(mut(0x27c + 128, 5)))).toBe('TDX_QUOTE_UNSUPPORTED_CERT_DATA');
    const v5 = readVector(QUOTES.v5.path);
    expect(code(() => decodeQuote(mut(48, 1, v5)))).toBe('TDX_QUOTE_UNSUPPORTED_BODY_TYPE');
    expect(code(() => decodeQuote(mut(48, 2, v5)))).toBe('TDX_QUOTE_MALFORMED'); // TD 1.0 type with a 648-byte size
  });

  it('tdreport.dat (a raw, unsigned 1024-byte TDREPORT, mock input) is not accepted as a quote', () => {
    const r = readVector('tdx/gotdxguest_v4_spr/tdreport.dat');
    expect(r.length).toBe(1024);
    expect(code(() => decodeQuote(r))).toBe('TDX_QUOTE_UNSUPPORTED_VERSION');
  });

  it('random bytes are rejected with a decoding code (seeded)', () => {
    let seed = 0x7d3a;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    const codes = new Set<string>();
    for (const len of [0, 1, 47, 48, 632, 1024, 5006, 8000]) {
      const b = Uint8Array.from({ length: len }, rnd);
      codes.add(code(() => decodeQuote(b)));
      // With a valid v4 header prefix the decoder gets further but still refuses.
      if (len >= 48) {
        b.set(readVector(QUOTES.v4spr.path).subarray(0, 8));
        expect(['TDX_QUOTE_TRUNCATED', 'TDX_QUOTE_MALFORMED', 'TDX_QUOTE_UNSUPPORTED_CERT_DATA']).toContain(code(() => decodeQuote(b)));
      }
    }
    expect([...codes].every((c) => ['TDX_QUOTE_TRUNCATED', 'TDX_QUOTE_UNSUPPORTED_VERSION'].includes(c))).toBe(true);
  });

  it('the trailing bytes of the SPR quote are the marker MANIFEST describes', () => {
    const bytes = readVector(QUOTES.v4spr.path);
    const q = decodeQuote(bytes);
    expect(Buffer.from(bytes.subarray(bytes.length - q.trailingBytes)).toString('latin1')).toBe('\nextra bytes(only for testing purpose)\n');
    expect(createHash('sha256').update(q.signatureData.attestationKey).update(q.signatureData.certificationData.qeAuthData).digest('hex')).toBe(
      toHex(q.signatureData.certificationData.qeReport.reportData.subarray(0, 32)),
    );
  });
});
