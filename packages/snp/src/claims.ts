import { toHex } from '@joinguard/core';
import { decodeReport, reportCpuid, SIGNING_KEY_NONE, SIGNING_KEY_VLEK, type SnpReport } from './decode.js';
import { decodeTcb, resolveProduct, tcbLayoutFor, type SnpProduct, type TcbLayout, type TcbVersion } from './tcb.js';

/** Guest policy bits (SEV-SNP ABI, "GUEST_POLICY Structure"). */
export const POLICY_BIT = {
  SMT: 16,
  RESERVED_MBO: 17,
  MIGRATE_MA: 18,
  DEBUG: 19,
  SINGLE_SOCKET: 20,
  CXL_ALLOW: 21,
  MEM_AES_256_XTS: 22,
  RAPL_DIS: 23,
  CIPHERTEXT_HIDING_DRAM: 24,
  PAGE_SWAP_DISABLE: 25,
} as const;

/** PLATFORM_INFO bits (SEV-SNP ABI, "PLATFORM_INFO Field"). */
export const PLATFORM_INFO_BIT = {
  SMT_EN: 0,
  TSME_EN: 1,
  ECC_EN: 2,
  RAPL_DIS: 3,
  CIPHERTEXT_HIDING_DRAM_EN: 4,
  ALIAS_CHECK_COMPLETE: 5,
  TIO_EN: 7,
} as const;

const bit = (v: bigint, n: number): boolean => ((v >> BigInt(n)) & 1n) === 1n;
const hex64 = (v: bigint): string => '0x' + v.toString(16);

export interface GuestPolicy {
  raw: string;
  abiMinor: number;
  abiMajor: number;
  smt: boolean;
  /** Bit 17 must be one; false means a malformed policy. */
  reservedMustBeOne: boolean;
  migrateMa: boolean;
  debug: boolean;
  singleSocket: boolean;
  cxlAllow: boolean;
  memAes256Xts: boolean;
  raplDis: boolean;
  ciphertextHiding: boolean;
  pageSwapDisable: boolean;
}

export function decodePolicy(policy: bigint): GuestPolicy {
  return {
    raw: hex64(policy),
    abiMinor: Number(policy & 0xffn),
    abiMajor: Number((policy >> 8n) & 0xffn),
    smt: bit(policy, POLICY_BIT.SMT),
    reservedMustBeOne: bit(policy, POLICY_BIT.RESERVED_MBO),
    migrateMa: bit(policy, POLICY_BIT.MIGRATE_MA),
    debug: bit(policy, POLICY_BIT.DEBUG),
    singleSocket: bit(policy, POLICY_BIT.SINGLE_SOCKET),
    cxlAllow: bit(policy, POLICY_BIT.CXL_ALLOW),
    memAes256Xts: bit(policy, POLICY_BIT.MEM_AES_256_XTS),
    raplDis: bit(policy, POLICY_BIT.RAPL_DIS),
    ciphertextHiding: bit(policy, POLICY_BIT.CIPHERTEXT_HIDING_DRAM),
    pageSwapDisable: bit(policy, POLICY_BIT.PAGE_SWAP_DISABLE),
  };
}

export interface PlatformInfo {
  raw: string;
  smtEnabled: boolean;
  tsmeEnabled: boolean;
  eccEnabled: boolean;
  raplDisabled: boolean;
  ciphertextHidingEnabled: boolean;
  aliasCheckComplete: boolean;
  tioEnabled: boolean;
}

export function decodePlatformInfo(p: bigint): PlatformInfo {
  return {
    raw: hex64(p),
    smtEnabled: bit(p, PLATFORM_INFO_BIT.SMT_EN),
    tsmeEnabled: bit(p, PLATFORM_INFO_BIT.TSME_EN),
    eccEnabled: bit(p, PLATFORM_INFO_BIT.ECC_EN),
    raplDisabled: bit(p, PLATFORM_INFO_BIT.RAPL_DIS),
    ciphertextHidingEnabled: bit(p, PLATFORM_INFO_BIT.CIPHERTEXT_HIDING_DRAM_EN),
    aliasCheckComplete: bit(p, PLATFORM_INFO_BIT.ALIAS_CHECK_COMPLETE),
    tioEnabled: bit(p, PLATFORM_INFO_BIT.TIO_EN),
  };
}

export type SigningKeyName = 'vcek' | 'vlek' | 'none';

export function signingKeyName(r: SnpReport): SigningKeyName {
  return r.signingKey === SIGNING_KEY_VLEK ? 'vlek' : r.signingKey === SIGNING_KEY_NONE ? 'none' : 'vcek';
}

/** What a policy checks, from a verified report. Byte fields are lower-case hex. */
export interface SnpClaims {
  version: number;
  product: SnpProduct;
  signingKey: SigningKeyName;
  guestSvn: number;
  policy: GuestPolicy;
  vmpl: number;
  measurement: string;
  hostData: string;
  reportData: string;
  idKeyDigest: string;
  authorKeyDigest: string;
  authorKeyEn: boolean;
  maskChipKey: boolean;
  familyId: string;
  imageId: string;
  reportId: string;
  reportIdMa: string;
  chipId: string;
  platformInfo: PlatformInfo;
  currentTcb: TcbVersion;
  reportedTcb: TcbVersion;
  committedTcb: TcbVersion;
  launchTcb: TcbVersion;
  currentFirmware: string;
  committedFirmware: string;
  cpuid?: { family: number; model: number; stepping: number };
  launchMitVector?: string;
  currentMitVector?: string;
}

export function buildClaims(r: SnpReport, product: SnpProduct): SnpClaims {
  const layout = tcbLayoutFor(product);
  const c: SnpClaims = {
    version: r.version,
    product,
    signingKey: signingKeyName(r),
    guestSvn: r.guestSvn,
    policy: decodePolicy(r.policy),
    vmpl: r.vmpl,
    measurement: toHex(r.measurement),
    hostData: toHex(r.hostData),
    reportData: toHex(r.reportData),
    idKeyDigest: toHex(r.idKeyDigest),
    authorKeyDigest: toHex(r.authorKeyDigest),
    authorKeyEn: r.authorKeyEn,
    maskChipKey: r.maskChipKey,
    familyId: toHex(r.familyId),
    imageId: toHex(r.imageId),
    reportId: toHex(r.reportId),
    reportIdMa: toHex(r.reportIdMa),
    chipId: toHex(r.chipId),
    platformInfo: decodePlatformInfo(r.platformInfo),
    currentTcb: decodeTcb(r.currentTcb, layout),
    reportedTcb: decodeTcb(r.reportedTcb, layout),
    committedTcb: decodeTcb(r.committedTcb, layout),
    launchTcb: decodeTcb(r.launchTcb, layout),
    currentFirmware: `${r.currentMajor}.${r.currentMinor}.${r.currentBuild}`,
    committedFirmware: `${r.committedMajor}.${r.committedMinor}.${r.committedBuild}`,
  };
  const cpuid = reportCpuid(r);
  if (cpuid) c.cpuid = cpuid;
  if (r.launchMitVector !== undefined) c.launchMitVector = hex64(r.launchMitVector);
  if (r.currentMitVector !== undefined) c.currentMitVector = hex64(r.currentMitVector);
  return c;
}

/**
 * The `inspect` view (DESIGN.md "inspect JSON"): lowerCamelCase spec names, hex for byte fields, each
 * TCB as {bootloader, tee, snp, microcode, fmc?}. `layout` is the product's TCB layout.
 */
export function reportToJson(r: SnpReport, product: SnpProduct | undefined, layout: TcbLayout): Record<string, unknown> {
  const out: Record<string, unknown> = {
    version: r.version,
    product: product ?? null,
    guestSvn: r.guestSvn,
    policy: hex64(r.policy),
    familyId: toHex(r.familyId),
    imageId: toHex(r.imageId),
    vmpl: r.vmpl,
    signatureAlgo: r.signatureAlgo,
    currentTcb: decodeTcb(r.currentTcb, layout),
    platformInfo: hex64(r.platformInfo),
    authorKeyEn: r.authorKeyEn,
    maskChipKey: r.maskChipKey,
    signingKey: signingKeyName(r),
    reportData: toHex(r.reportData),
    measurement: toHex(r.measurement),
    hostData: toHex(r.hostData),
    idKeyDigest: toHex(r.idKeyDigest),
    authorKeyDigest: toHex(r.authorKeyDigest),
    reportId: toHex(r.reportId),
    reportIdMa: toHex(r.reportIdMa),
    reportedTcb: decodeTcb(r.reportedTcb, layout),
  };
  if (r.cpuidFamId !== undefined) {
    out.cpuidFamId = r.cpuidFamId;
    out.cpuidModId = r.cpuidModId;
    out.cpuidStep = r.cpuidStep;
  }
  Object.assign(out, {
    chipId: toHex(r.chipId),
    committedTcb: decodeTcb(r.committedTcb, layout),
    currentBuild: r.currentBuild,
    currentMinor: r.currentMinor,
    currentMajor: r.currentMajor,
    committedBuild: r.committedBuild,
    committedMinor: r.committedMinor,
    committedMajor: r.committedMajor,
    launchTcb: decodeTcb(r.launchTcb, layout),
  });
  if (r.launchMitVector !== undefined) out.launchMitVector = hex64(r.launchMitVector);
  if (r.currentMitVector !== undefined) out.currentMitVector = hex64(r.currentMitVector);
  out.signature = toHex(r.signature);
  return out;
}

/**
 * The TCB layout for displaying a report. With a product (from CPUID or stated) it is that product's.
 * A version 2 report without a stated product uses the Milan/Genoa layout: both share it, and Turin
 * firmware emits version 3 or later, so the layout (unlike the product) is known.
 */
export function inspectLayout(_r: SnpReport, product: SnpProduct | undefined): TcbLayout {
  if (product) return tcbLayoutFor(product);
  return 'milan-genoa';
}

/** Decodes a report for display: the product from CPUID or the statement, when either is there. */
export function inspectReport(bytes: Uint8Array, stated?: SnpProduct): { report: SnpReport; product: SnpProduct | undefined; json: Record<string, unknown> } {
  const report = decodeReport(bytes);
  const cpuid = reportCpuid(report);
  const product = cpuid || stated ? resolveProduct(cpuid, stated) : undefined;
  return { report, product, json: reportToJson(report, product, inspectLayout(report, product)) };
}
