import { describe, expect, it } from 'vitest';
import { expectedDecodedFields, readVector, codeOf } from '@joinguard/core/testing';
import { toHex } from '@joinguard/core';
import {
  decodeReport,
  decodeTcb,
  encodeTcb,
  inspectReport,
  productFromCpuid,
  REPORT_LAYOUT,
  REPORT_SIZE,
  resolveProduct,
  SnpErrorCode,
  tcbHex,
  type SnpReport,
} from '../src/index.js';
import { manifestRow, stated, matchesElided } from './manifest.js';

const tcbRaw: Record<string, (r: SnpReport) => bigint> = {
  current_tcb: (r) => r.currentTcb,
  reported_tcb: (r) => r.reportedTcb,
  committed_tcb: (r) => r.committedTcb,
  launch_tcb: (r) => r.launchTcb,
};
const tcbJson: Record<string, string> = { current_tcb: 'currentTcb', reported_tcb: 'reportedTcb', committed_tcb: 'committedTcb', launch_tcb: 'launchTcb' };
const hexFields: Record<string, string> = {
  family_id: 'familyId',
  image_id: 'imageId',
  report_data: 'reportData',
  measurement: 'measurement',
  host_data: 'hostData',
  id_key_digest: 'idKeyDigest',
  author_key_digest: 'authorKeyDigest',
  report_id: 'reportId',
  report_id_ma: 'reportIdMa',
  chip_id: 'chipId',
};
const numFields: Record<string, string> = {
  version: 'version',
  guest_svn: 'guestSvn',
  vmpl: 'vmpl',
  signature_algo: 'signatureAlgo',
  cpuid_fam_id: 'cpuidFamId',
  cpuid_mod_id: 'cpuidModId',
  cpuid_step: 'cpuidStep',
};

/** Compares one report with the independent decoder's output, field by field; unknown fields fail. */
function compareWithExpected(bytes: Uint8Array, expected: Record<string, unknown>, product?: 'milan' | 'genoa') {
  const { report, json } = inspectReport(bytes, product);
  let compared = 0;
  for (const [k, v] of Object.entries(expected)) {
    compared++;
    if (k === 'size') expect(bytes.length, k).toBe(v);
    else if (k in numFields) expect(json[numFields[k]!], k).toBe(v);
    else if (k in hexFields) expect(json[hexFields[k]!], k).toBe(v);
    else if (k === 'policy') expect(BigInt(json.policy as string), k).toBe(BigInt(v as string));
    else if (k === 'platform_info') expect(BigInt(json.platformInfo as string), k).toBe(BigInt(v as string));
    else if (k === 'author_key_en_etc') expect(BigInt(report.keyInfo), k).toBe(BigInt(v as string));
    else if (k in tcbRaw) {
      const e = v as { raw: string; bootloader: number; tee: number; snp: number; microcode: number; reserved: string };
      const raw = tcbRaw[k]!(report);
      expect(BigInt(tcbHex(raw)), `${k}.raw`).toBe(BigInt(e.raw));
      expect(json[tcbJson[k]!], k).toEqual({ bootloader: e.bootloader, tee: e.tee, snp: e.snp, microcode: e.microcode });
      const le = new Uint8Array(8);
      new DataView(le.buffer).setBigUint64(0, raw, true);
      expect(toHex(le.subarray(2, 6)), `${k}.reserved`).toBe(e.reserved);
    } else if (k === 'current_build.minor.major') expect([json.currentBuild, json.currentMinor, json.currentMajor], k).toEqual(v);
    else if (k === 'committed_build.minor.major') expect([json.committedBuild, json.committedMinor, json.committedMajor], k).toEqual(v);
    else throw new Error(`EXPECTED_decoded_fields has a field the test does not compare: ${k}`);
  }
  return compared;
}

describe('decode: real reports against EXPECTED_decoded_fields.json', () => {
  const expected = expectedDecodedFields();
  const snpKeys = Object.keys(expected).filter((k) => k.startsWith('snp/'));

  it('covers every SNP report in the expected-fields file', () => {
    expect(snpKeys.length).toBeGreaterThanOrEqual(4);
  });

  for (const key of snpKeys) {
    it(`${key}: every field`, () => {
      const bytes = readVector(key);
      // v2 reports carry no CPUID; their product comes from MANIFEST ("Milan report v2").
      const n = compareWithExpected(bytes, expected[key]!, decodeReport(bytes).version === 2 ? 'milan' : undefined);
      expect(n).toBe(Object.keys(expected[key]!).length);
    });
  }

  it('the VLEK v3 report: CPUID family/model/stepping, signing key, platform info as MANIFEST states', () => {
    const row = manifestRow('snp/', 'trustee_milan_vlek_v3');
    const { report, json, product } = inspectReport(readVector('snp/trustee_milan_vlek_v3/report.bin'));
    const [fam, mod, step] = /cpuid fam\/mod\/step (0x[0-9A-Fa-f]+)\/(0x[0-9A-Fa-f]+)\/(0x[0-9A-Fa-f]+)/.exec(row.expected)!.slice(1).map(Number);
    expect([report.cpuidFamId, report.cpuidModId, report.cpuidStep]).toEqual([fam, mod, step]);
    expect(product).toBe('milan');
    expect(row.expected).toContain('signing_key=1 VLEK');
    expect(json.signingKey).toBe('vlek');
    expect(BigInt(json.platformInfo as string)).toBe(BigInt(stated(row.expected, 'platform_info')!));
    expect(json.vmpl).toBe(Number(stated(row.expected, 'vmpl')));
    expect(matchesElided(json.measurement as string, stated(row.expected, 'measurement')!)).toBe(true);
  });

  it('the Azure HCL report holds a v2 SNP report at 0x20 with the MANIFEST measurement, policy and TCB', () => {
    const row = manifestRow('azure/', 'az_snp_vtpm_milan_v2');
    const hcl = readVector('azure/az_snp_vtpm_milan_v2/hcl-report.bin');
    const { report, json } = inspectReport(hcl.subarray(0x20, 0x20 + REPORT_SIZE), 'milan');
    expect(report.version).toBe(2);
    expect(matchesElided(json.measurement as string, stated(row.expected, 'measurement')!)).toBe(true);
    expect(report.policy).toBe(BigInt(stated(row.expected, 'policy')!));
    expect(report.reportedTcb).toBe(BigInt(stated(row.expected, 'tcb')!));
  });
});

describe('decode: malformed input', () => {
  const good = readVector('snp/gosevguest_milan_v2/report.bin');

  it('rejects a truncated report on length (derived vector)', () => {
    expect(codeOf(() => decodeReport(readVector('snp/derived/gosevguest_milan_v2_truncated_0x2A0.bin')))).toBe(SnpErrorCode.REPORT_TRUNCATED);
    expect(codeOf(() => decodeReport(new Uint8Array(0)))).toBe(SnpErrorCode.REPORT_TRUNCATED);
  });

  it('rejects trailing bytes', () => {
    const longer = new Uint8Array(REPORT_SIZE + 1);
    longer.set(good);
    expect(codeOf(() => decodeReport(longer))).toBe(SnpErrorCode.REPORT_TRAILING_DATA);
  });

  it.each([0, 1, 4, 6, 0xffffffff])('rejects version %i', (v) => {
    const b = new Uint8Array(good);
    new DataView(b.buffer).setUint32(REPORT_LAYOUT.VERSION[0], v, true);
    expect(codeOf(() => decodeReport(b))).toBe(SnpErrorCode.UNSUPPORTED_VERSION);
  });

  it('rejects an unknown signature algorithm, reserved signing keys and non-zero reserved fields', () => {
    const algo = new Uint8Array(good);
    algo[REPORT_LAYOUT.SIGNATURE_ALGO[0]] = 2;
    expect(codeOf(() => decodeReport(algo))).toBe(SnpErrorCode.UNSUPPORTED_SIGNATURE_ALGO);
    const key = new Uint8Array(good);
    key[REPORT_LAYOUT.KEY_INFO[0]] = 2 << 2;
    expect(codeOf(() => decodeReport(key))).toBe(SnpErrorCode.RESERVED_SIGNING_KEY);
    const res = new Uint8Array(good);
    res[0x1f8] = 1; // LAUNCH_MIT_VECTOR is reserved before version 5
    expect(codeOf(() => decodeReport(res))).toBe(SnpErrorCode.RESERVED_FIELD_NONZERO);
    const cpuidInV2 = new Uint8Array(good);
    cpuidInV2[REPORT_LAYOUT.CPUID_FAM_ID[0]] = 0x19;
    expect(codeOf(() => decodeReport(cpuidInV2))).toBe(SnpErrorCode.RESERVED_FIELD_NONZERO);
  });

  it('never reads the caller buffer out of place: fields are views of the input', () => {
    const r = decodeReport(good);
    expect(r.measurement.buffer).toBe(good.buffer);
    expect(r.signedBytes.length).toBe(0x2a0);
  });
});

describe('TCB layouts and product', () => {
  it('Milan/Genoa: BL, TEE, 4 reserved, SNP, microcode (the vector raw values decode as MANIFEST says)', () => {
    // MANIFEST: reported_tcb 0x4405000000000002 (bl 2, tee 0, snp 5, ucode 68)
    const row = manifestRow('snp/', 'gosevguest_milan_v2');
    const m = /reported_tcb (0x[0-9a-f]+) \(bl (\d+), tee (\d+), snp (\d+), ucode (\d+)\)/.exec(row.expected)!;
    expect(decodeTcb(BigInt(m[1]!), 'milan-genoa')).toEqual({ bootloader: Number(m[2]), tee: Number(m[3]), snp: Number(m[4]), microcode: Number(m[5]) });
  });

  it('Turin: FMC, BL, TEE, SNP, 3 reserved, microcode, and encode/decode round-trip', () => {
    const raw = 0x0900000004030201n; // byte 0 = 1 … byte 7 = 9
    expect(decodeTcb(raw, 'turin')).toEqual({ fmc: 1, bootloader: 2, tee: 3, snp: 4, microcode: 9 });
    expect(encodeTcb({ fmc: 1, bootloader: 2, tee: 3, snp: 4, microcode: 9 }, 'turin')).toBe(raw);
    // The same bytes read with the other layout give other values: the layout matters.
    expect(decodeTcb(raw, 'milan-genoa')).toEqual({ bootloader: 1, tee: 2, snp: 0, microcode: 9 });
  });

  it('TCB minimums: each component at least the minimum, else SNP_TCB_TOO_LOW', async () => {
    const { checkTcbAtLeast } = await import('../src/index.js');
    const tcb = decodeTcb(decodeReport(readVector('snp/virtee_milan_v2/report.bin')).reportedTcb, 'milan-genoa');
    expect(() => checkTcbAtLeast(tcb, { bootloader: tcb.bootloader, snp: tcb.snp, microcode: tcb.microcode })).not.toThrow();
    expect(codeOf(() => checkTcbAtLeast(tcb, { microcode: tcb.microcode + 1 }))).toBe(SnpErrorCode.TCB_TOO_LOW);
    expect(codeOf(() => checkTcbAtLeast(tcb, { fmc: 0 }))).toBe(SnpErrorCode.TCB_TOO_LOW);
  });

  it('product from CPUID, and a v2 report without a stated product is an error, never a guess', () => {
    expect(productFromCpuid(0x19, 0x01)).toBe('milan');
    expect(productFromCpuid(0x19, 0xa0)).toBe('genoa');
    expect(productFromCpuid(0x19, 0x11)).toBe('genoa');
    expect(productFromCpuid(0x1a, 0x02)).toBe('turin');
    expect(productFromCpuid(0x17, 0x31)).toBeUndefined();
    expect(codeOf(() => resolveProduct(undefined, undefined))).toBe(SnpErrorCode.PRODUCT_UNKNOWN);
    expect(codeOf(() => resolveProduct({ family: 0x17, model: 0x31 }, undefined))).toBe(SnpErrorCode.PRODUCT_UNKNOWN);
    expect(codeOf(() => resolveProduct({ family: 0x19, model: 0x01 }, 'genoa'))).toBe(SnpErrorCode.PRODUCT_MISMATCH);
    expect(resolveProduct({ family: 0x19, model: 0x01 }, 'milan')).toBe('milan');
  });
});
