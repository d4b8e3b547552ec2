import { ByteReader, reject } from '@joinguard/core';
import { SnpErrorCode } from './errors.js';

/**
 * ATTESTATION_REPORT structure, AMD SEV-SNP Firmware ABI specification (56860), table "ATTESTATION_REPORT
 * Structure". One row per field: [offset, size in bytes]. Version 3 added CPUID_FAM_ID/MOD_ID/STEP in what
 * was reserved space; version 5 added LAUNCH_MIT_VECTOR/CURRENT_MIT_VECTOR.
 */
export const REPORT_LAYOUT = {
  VERSION: [0x000, 4],
  GUEST_SVN: [0x004, 4],
  POLICY: [0x008, 8],
  FAMILY_ID: [0x010, 16],
  IMAGE_ID: [0x020, 16],
  VMPL: [0x030, 4],
  SIGNATURE_ALGO: [0x034, 4],
  CURRENT_TCB: [0x038, 8],
  PLATFORM_INFO: [0x040, 8],
  /** AUTHOR_KEY_EN (bit 0), MASK_CHIP_KEY (bit 1), SIGNING_KEY (bits 4:2), bits 31:5 reserved. */
  KEY_INFO: [0x048, 4],
  RESERVED_04C: [0x04c, 4],
  REPORT_DATA: [0x050, 64],
  MEASUREMENT: [0x090, 48],
  HOST_DATA: [0x0c0, 32],
  ID_KEY_DIGEST: [0x0e0, 48],
  AUTHOR_KEY_DIGEST: [0x110, 48],
  REPORT_ID: [0x140, 32],
  REPORT_ID_MA: [0x160, 32],
  REPORTED_TCB: [0x180, 8],
  CPUID_FAM_ID: [0x188, 1],
  CPUID_MOD_ID: [0x189, 1],
  CPUID_STEP: [0x18a, 1],
  RESERVED_18B: [0x18b, 0x15],
  CHIP_ID: [0x1a0, 64],
  COMMITTED_TCB: [0x1e0, 8],
  CURRENT_BUILD: [0x1e8, 1],
  CURRENT_MINOR: [0x1e9, 1],
  CURRENT_MAJOR: [0x1ea, 1],
  RESERVED_1EB: [0x1eb, 1],
  COMMITTED_BUILD: [0x1ec, 1],
  COMMITTED_MINOR: [0x1ed, 1],
  COMMITTED_MAJOR: [0x1ee, 1],
  RESERVED_1EF: [0x1ef, 1],
  LAUNCH_TCB: [0x1f0, 8],
  LAUNCH_MIT_VECTOR: [0x1f8, 8],
  CURRENT_MIT_VECTOR: [0x200, 8],
  RESERVED_208: [0x208, 0x98],
  SIGNATURE: [0x2a0, 0x200],
} as const satisfies Record<string, readonly [number, number]>;

export const REPORT_SIZE = 0x4a0;
/** The signature covers bytes 0x000-0x29F. */
export const SIGNED_LENGTH = 0x2a0;
/** ECDSA P-384 r and s: 72-byte little-endian fields at the start of SIGNATURE. */
export const SIG_R_OFFSET = 0x2a0;
export const SIG_S_OFFSET = 0x2e8;
export const SIG_COMPONENT_SIZE = 72;

export const SUPPORTED_VERSIONS: readonly number[] = [2, 3, 5];
export const SIGNATURE_ALGO_ECDSA_P384_SHA384 = 1;

export const SIGNING_KEY_VCEK = 0;
export const SIGNING_KEY_VLEK = 1;
export const SIGNING_KEY_NONE = 7;

/** A decoded report. Byte fields are views into the caller's buffer (no copies); TCBs are raw u64. */
export interface SnpReport {
  version: number;
  guestSvn: number;
  policy: bigint;
  familyId: Uint8Array;
  imageId: Uint8Array;
  vmpl: number;
  signatureAlgo: number;
  currentTcb: bigint;
  platformInfo: bigint;
  keyInfo: number;
  authorKeyEn: boolean;
  maskChipKey: boolean;
  signingKey: number;
  reportData: Uint8Array;
  measurement: Uint8Array;
  hostData: Uint8Array;
  idKeyDigest: Uint8Array;
  authorKeyDigest: Uint8Array;
  reportId: Uint8Array;
  reportIdMa: Uint8Array;
  reportedTcb: bigint;
  /** v3+ only. */
  cpuidFamId?: number;
  cpuidModId?: number;
  cpuidStep?: number;
  chipId: Uint8Array;
  committedTcb: bigint;
  currentBuild: number;
  currentMinor: number;
  currentMajor: number;
  committedBuild: number;
  committedMinor: number;
  committedMajor: number;
  launchTcb: bigint;
  /** v5+ only. */
  launchMitVector?: bigint;
  currentMitVector?: bigint;
  /** The whole 512-byte SIGNATURE field. */
  signature: Uint8Array;
  /** r and s, 72 bytes each, little-endian as in the report. */
  signatureR: Uint8Array;
  signatureS: Uint8Array;
  /** Bytes 0x000-0x29F, the signed area (a view). */
  signedBytes: Uint8Array;
  raw: Uint8Array;
}

function mbz(bytes: Uint8Array, field: string, offset: number): void {
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] !== 0) {
      throw reject(SnpErrorCode.RESERVED_FIELD_NONZERO, `reserved field ${field} at offset 0x${(offset + i).toString(16)} is 0x${bytes[i]!.toString(16)}, must be zero`, { field, offset: offset + i });
    }
  }
}

/**
 * Decodes an attestation report. Pure and bounds-checked: anything but exactly 1184 bytes, a version
 * other than 2, 3 or 5, an unknown signature algorithm or a non-zero reserved field is a rejection.
 */
export function decodeReport(bytes: Uint8Array): SnpReport {
  if (bytes.length < REPORT_SIZE) {
    throw reject(SnpErrorCode.REPORT_TRUNCATED, `SNP attestation report is ${bytes.length} bytes, expected ${REPORT_SIZE}`, { length: bytes.length, expected: REPORT_SIZE });
  }
  if (bytes.length > REPORT_SIZE) {
    throw reject(SnpErrorCode.REPORT_TRAILING_DATA, `SNP attestation report is ${bytes.length} bytes, expected exactly ${REPORT_SIZE}`, { length: bytes.length, expected: REPORT_SIZE });
  }
  const r = new ByteReader(bytes, { truncatedCode: SnpErrorCode.REPORT_TRUNCATED, what: 'SNP attestation report' });
  const L = REPORT_LAYOUT;
  const at = (f: readonly [number, number], name: string): Uint8Array => {
    r.offset = f[0];
    return r.bytes(f[1], name);
  };
  const u32 = (f: readonly [number, number], name: string): number => {
    r.offset = f[0];
    return r.u32le(name);
  };
  const u64 = (f: readonly [number, number], name: string): bigint => {
    r.offset = f[0];
    return r.u64le(name);
  };
  const u8 = (f: readonly [number, number], name: string): number => {
    r.offset = f[0];
    return r.u8(name);
  };

  const version = u32(L.VERSION, 'VERSION');
  if (!SUPPORTED_VERSIONS.includes(version)) {
    throw reject(SnpErrorCode.UNSUPPORTED_VERSION, `SNP attestation report version ${version} is not supported (2, 3 or 5)`, { version, supported: SUPPORTED_VERSIONS });
  }
  const signatureAlgo = u32(L.SIGNATURE_ALGO, 'SIGNATURE_ALGO');
  if (signatureAlgo !== SIGNATURE_ALGO_ECDSA_P384_SHA384) {
    throw reject(SnpErrorCode.UNSUPPORTED_SIGNATURE_ALGO, `SIGNATURE_ALGO ${signatureAlgo} is not ECDSA P-384 with SHA-384 (1)`, { signatureAlgo });
  }
  const keyInfo = u32(L.KEY_INFO, 'KEY_INFO');
  if (keyInfo >>> 5 !== 0) {
    throw reject(SnpErrorCode.RESERVED_FIELD_NONZERO, `reserved bits 31:5 of the key info word at 0x48 are set (0x${keyInfo.toString(16)})`, { field: 'KEY_INFO', keyInfo });
  }
  const signingKey = (keyInfo >>> 2) & 7;
  if (signingKey !== SIGNING_KEY_VCEK && signingKey !== SIGNING_KEY_VLEK && signingKey !== SIGNING_KEY_NONE) {
    throw reject(SnpErrorCode.RESERVED_SIGNING_KEY, `SIGNING_KEY ${signingKey} is reserved (0 VCEK, 1 VLEK, 7 none)`, { signingKey });
  }
  mbz(at(L.RESERVED_04C, 'reserved'), 'reserved 0x04C', L.RESERVED_04C[0]);
  const hasCpuid = version >= 3;
  if (hasCpuid) mbz(at(L.RESERVED_18B, 'reserved'), 'reserved 0x18B', L.RESERVED_18B[0]);
  else mbz(bytes.subarray(L.CPUID_FAM_ID[0], L.CHIP_ID[0]), 'reserved 0x188', L.CPUID_FAM_ID[0]);
  mbz(at(L.RESERVED_1EB, 'reserved'), 'reserved 0x1EB', L.RESERVED_1EB[0]);
  mbz(at(L.RESERVED_1EF, 'reserved'), 'reserved 0x1EF', L.RESERVED_1EF[0]);
  const hasMit = version >= 5;
  if (hasMit) mbz(at(L.RESERVED_208, 'reserved'), 'reserved 0x208', L.RESERVED_208[0]);
  else mbz(bytes.subarray(L.LAUNCH_MIT_VECTOR[0], L.SIGNATURE[0]), 'reserved 0x1F8', L.LAUNCH_MIT_VECTOR[0]);

  const signature = at(L.SIGNATURE, 'SIGNATURE');
  const report: SnpReport = {
    version,
    guestSvn: u32(L.GUEST_SVN, 'GUEST_SVN'),
    policy: u64(L.POLICY, 'POLICY'),
    familyId: at(L.FAMILY_ID, 'FAMILY_ID'),
    imageId: at(L.IMAGE_ID, 'IMAGE_ID'),
    vmpl: u32(L.VMPL, 'VMPL'),
    signatureAlgo,
    currentTcb: u64(L.CURRENT_TCB, 'CURRENT_TCB'),
    platformInfo: u64(L.PLATFORM_INFO, 'PLATFORM_INFO'),
    keyInfo,
    authorKeyEn: (keyInfo & 1) !== 0,
    maskChipKey: (keyInfo & 2) !== 0,
    signingKey,
    reportData: at(L.REPORT_DATA, 'REPORT_DATA'),
    measurement: at(L.MEASUREMENT, 'MEASUREMENT'),
    hostData: at(L.HOST_DATA, 'HOST_DATA'),
    idKeyDigest: at(L.ID_KEY_DIGEST, 'ID_KEY_DIGEST'),
    authorKeyDigest: at(L.AUTHOR_KEY_DIGEST, 'AUTHOR_KEY_DIGEST'),
    reportId: at(L.REPORT_ID, 'REPORT_ID'),
    reportIdMa: at(L.REPORT_ID_MA, 'REPORT_ID_MA'),
    reportedTcb: u64(L.REPORTED_TCB, 'REPORTED_TCB'),
    chipId: at(L.CHIP_ID, 'CHIP_ID'),
    committedTcb: u64(L.COMMITTED_TCB, 'COMMITTED_TCB'),
    currentBuild: u8(L.CURRENT_BUILD, 'CURRENT_BUILD'),
    currentMinor: u8(L.CURRENT_MINOR, 'CURRENT_MINOR'),
    currentMajor: u8(L.CURRENT_MAJOR, 'CURRENT_MAJOR'),
    committedBuild: u8(L.COMMITTED_BUILD, 'COMMITTED_BUILD'),
    committedMinor: u8(L.COMMITTED_MINOR, 'COMMITTED_MINOR'),
    committedMajor: u8(L.COMMITTED_MAJOR, 'COMMITTED_MAJOR'),
    launchTcb: u64(L.LAUNCH_TCB, 'LAUNCH_TCB'),
    signature,
    signatureR: signature.subarray(0, SIG_COMPONENT_SIZE),
    signatureS: signature.subarray(SIG_COMPONENT_SIZE, 2 * SIG_COMPONENT_SIZE),
    signedBytes: bytes.subarray(0, SIGNED_LENGTH),
    raw: bytes,
  };
  if (hasCpuid) {
    report.cpuidFamId = u8(L.CPUID_FAM_ID, 'CPUID_FAM_ID');
    report.cpuidModId = u8(L.CPUID_MOD_ID, 'CPUID_MOD_ID');
    report.cpuidStep = u8(L.CPUID_STEP, 'CPUID_STEP');
  }
  if (hasMit) {
    report.launchMitVector = u64(L.LAUNCH_MIT_VECTOR, 'LAUNCH_MIT_VECTOR');
    report.currentMitVector = u64(L.CURRENT_MIT_VECTOR, 'CURRENT_MIT_VECTOR');
  }
  return report;
}

/** CPUID family/model/stepping of a v3+ report. */
export function reportCpuid(r: SnpReport): { family: number; model: number; stepping: number } | undefined {
  if (r.cpuidFamId === undefined || r.cpuidModId === undefined || r.cpuidStep === undefined) return undefined;
  return { family: r.cpuidFamId, model: r.cpuidModId, stepping: r.cpuidStep };
}
