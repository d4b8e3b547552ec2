import { describe, expect, it } from 'vitest';
import { readVector } from '@joinguard/core/testing';
import { buildClaims, decodePlatformInfo, decodePolicy, decodeReport, POLICY_BIT, PLATFORM_INFO_BIT, type GuestPolicy, type PlatformInfo } from '../src/index.js';
import { manifestRow, stated } from './manifest.js';

const POLICY_FLAG: Record<keyof typeof POLICY_BIT, keyof GuestPolicy> = {
  SMT: 'smt',
  RESERVED_MBO: 'reservedMustBeOne',
  MIGRATE_MA: 'migrateMa',
  DEBUG: 'debug',
  SINGLE_SOCKET: 'singleSocket',
  CXL_ALLOW: 'cxlAllow',
  MEM_AES_256_XTS: 'memAes256Xts',
  RAPL_DIS: 'raplDis',
  CIPHERTEXT_HIDING_DRAM: 'ciphertextHiding',
  PAGE_SWAP_DISABLE: 'pageSwapDisable',
};

const PLATFORM_FLAG: Record<keyof typeof PLATFORM_INFO_BIT, keyof PlatformInfo> = {
  SMT_EN: 'smtEnabled',
  TSME_EN: 'tsmeEnabled',
  ECC_EN: 'eccEnabled',
  RAPL_DIS: 'raplDisabled',
  CIPHERTEXT_HIDING_DRAM_EN: 'ciphertextHidingEnabled',
  ALIAS_CHECK_COMPLETE: 'aliasCheckComplete',
  TIO_EN: 'tioEnabled',
};

describe('guest policy and platform info as claims', () => {
  it('each GUEST_POLICY bit sets exactly its own claim (ABI table: SMT 16, MBO 17, MIGRATE_MA 18, DEBUG 19, SINGLE_SOCKET 20, …)', () => {
    expect([POLICY_BIT.SMT, POLICY_BIT.RESERVED_MBO, POLICY_BIT.MIGRATE_MA, POLICY_BIT.DEBUG, POLICY_BIT.SINGLE_SOCKET]).toEqual([16, 17, 18, 19, 20]);
    for (const [name, bitNo] of Object.entries(POLICY_BIT) as [keyof typeof POLICY_BIT, number][]) {
      const p = decodePolicy((1n << BigInt(bitNo)) | 0x0201n);
      expect([p.abiMinor, p.abiMajor], name).toEqual([1, 2]);
      for (const [other, flag] of Object.entries(POLICY_FLAG) as [keyof typeof POLICY_BIT, keyof GuestPolicy][]) {
        expect(p[flag], `${name} → ${flag}`).toBe(other === name);
      }
    }
  });

  it('each PLATFORM_INFO bit sets exactly its own claim', () => {
    for (const [name, bitNo] of Object.entries(PLATFORM_INFO_BIT) as [keyof typeof PLATFORM_INFO_BIT, number][]) {
      const p = decodePlatformInfo(1n << BigInt(bitNo));
      for (const [other, flag] of Object.entries(PLATFORM_FLAG) as [keyof typeof PLATFORM_INFO_BIT, keyof PlatformInfo][]) {
        expect(p[flag], `${name} → ${flag}`).toBe(other === name);
      }
    }
  });

  it('the real reports: policy and platform info values as MANIFEST states, decoded into their bits', () => {
    const gosev = decodePolicy(decodeReport(readVector('snp/gosevguest_milan_v2/report.bin')).policy);
    expect(BigInt(gosev.raw)).toBe(BigInt(stated(manifestRow('snp/', 'gosevguest_milan_v2').expected, 'policy')!));
    // 0xb0000: SMT, MBO and DEBUG (a debug guest: a policy must be able to refuse it).
    expect(gosev).toMatchObject({ smt: true, reservedMustBeOne: true, debug: true, migrateMa: false, singleSocket: false });
    const virtee = decodePolicy(decodeReport(readVector('snp/virtee_milan_v2/report.bin')).policy);
    expect(BigInt(virtee.raw)).toBe(BigInt(stated(manifestRow('snp/', 'virtee_milan_v2').expected, 'policy')!));
    expect(virtee).toMatchObject({ smt: true, reservedMustBeOne: true, debug: false, migrateMa: false, singleSocket: false });
    const vlek = decodeReport(readVector('snp/trustee_milan_vlek_v3/report.bin'));
    const pi = decodePlatformInfo(vlek.platformInfo);
    expect(BigInt(pi.raw)).toBe(BigInt(stated(manifestRow('snp/', 'trustee_milan_vlek_v3').expected, 'platform_info')!));
    // 0x27: SMT_EN, TSME_EN, ECC_EN, ALIAS_CHECK_COMPLETE.
    expect(pi).toMatchObject({ smtEnabled: true, tsmeEnabled: true, eccEnabled: true, raplDisabled: false, ciphertextHidingEnabled: false, aliasCheckComplete: true, tioEnabled: false });
  });

  it('claims carry VMPL, measurement, host data, key digests, report data, platform info and every TCB', () => {
    const r = decodeReport(readVector('snp/trustee_milan_vlek_v3/report.bin'));
    const c = buildClaims(r, 'milan');
    const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
    expect(c).toMatchObject({
      version: 3,
      signingKey: 'vlek',
      vmpl: r.vmpl,
      measurement: hex(r.measurement),
      hostData: hex(r.hostData),
      idKeyDigest: hex(r.idKeyDigest),
      authorKeyDigest: hex(r.authorKeyDigest),
      reportData: hex(r.reportData),
      chipId: hex(r.chipId),
      cpuid: { family: 0x19, model: 0x01, stepping: 0x01 },
    });
    expect(c.vmpl).toBe(1);
    expect(c.platformInfo.raw).toBe('0x27');
    for (const k of ['currentTcb', 'reportedTcb', 'committedTcb', 'launchTcb'] as const) expect(Object.keys(c[k]).sort(), k).toEqual(['bootloader', 'microcode', 'snp', 'tee']);
    expect(c.reportedTcb).toEqual({ bootloader: 4, tee: 0, snp: 24, microcode: 217 });
  });
});
