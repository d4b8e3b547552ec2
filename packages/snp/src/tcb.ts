import { inputError, reject } from '@joinguard/core';
import { SnpErrorCode } from './errors.js';

export type SnpProduct = 'milan' | 'genoa' | 'turin';
export const SNP_PRODUCTS: readonly SnpProduct[] = ['milan', 'genoa', 'turin'];

/** The product name AMD's KDS and certificates use. */
export function kdsProductName(p: SnpProduct): 'Milan' | 'Genoa' | 'Turin' {
  return p === 'milan' ? 'Milan' : p === 'genoa' ? 'Genoa' : 'Turin';
}

export function parseProduct(s: string): SnpProduct {
  const p = s.trim().toLowerCase();
  if ((SNP_PRODUCTS as readonly string[]).includes(p)) return p as SnpProduct;
  throw inputError(SnpErrorCode.BAD_PRODUCT, `unknown SEV-SNP product "${s}" (expected milan, genoa or turin)`, { product: s });
}

/**
 * The product from CPUID_FAM_ID/CPUID_MOD_ID (report v3+), or undefined when the family/model is not one
 * AMD issues SNP keys for. Family 19h: models 00h-0Fh are Milan; 10h-1Fh (Genoa) and A0h-AFh
 * (Bergamo/Siena) share Genoa's keys. Family 1Ah: models 00h-1Fh are Turin (classic and dense).
 */
export function productFromCpuid(family: number, model: number): SnpProduct | undefined {
  if (family === 0x19) {
    if (model <= 0x0f) return 'milan';
    if ((model >= 0x10 && model <= 0x1f) || (model >= 0xa0 && model <= 0xaf)) return 'genoa';
    return undefined;
  }
  if (family === 0x1a && model <= 0x1f) return 'turin';
  return undefined;
}

/**
 * TCB_VERSION (SEV-SNP ABI, "TCB_VERSION Structure"). Two layouts of the same 8 bytes:
 * Milan/Genoa: BOOT_LOADER, TEE, 4 reserved, SNP, MICROCODE;
 * Turin: FMC, BOOT_LOADER, TEE, SNP, 3 reserved, MICROCODE.
 */
export interface TcbVersion {
  bootloader: number;
  tee: number;
  snp: number;
  microcode: number;
  /** Turin only. */
  fmc?: number;
}

export type TcbLayout = 'milan-genoa' | 'turin';

export function tcbLayoutFor(product: SnpProduct): TcbLayout {
  return product === 'turin' ? 'turin' : 'milan-genoa';
}

/** Byte positions of each TCB component per layout (byte 0 is the least significant of the u64). */
export const TCB_BYTE = {
  'milan-genoa': { bootloader: 0, tee: 1, snp: 6, microcode: 7, reserved: [2, 3, 4, 5] },
  turin: { fmc: 0, bootloader: 1, tee: 2, snp: 3, microcode: 7, reserved: [4, 5, 6] },
} as const;

function byteOf(raw: bigint, i: number): number {
  return Number((raw >> BigInt(8 * i)) & 0xffn);
}

export function decodeTcb(raw: bigint, layout: TcbLayout): TcbVersion {
  if (layout === 'turin') {
    const t = TCB_BYTE.turin;
    return { bootloader: byteOf(raw, t.bootloader), tee: byteOf(raw, t.tee), snp: byteOf(raw, t.snp), microcode: byteOf(raw, t.microcode), fmc: byteOf(raw, t.fmc) };
  }
  const m = TCB_BYTE['milan-genoa'];
  return { bootloader: byteOf(raw, m.bootloader), tee: byteOf(raw, m.tee), snp: byteOf(raw, m.snp), microcode: byteOf(raw, m.microcode) };
}

export function encodeTcb(tcb: TcbVersion, layout: TcbLayout): bigint {
  const put = (v: number, i: number) => BigInt(v & 0xff) << BigInt(8 * i);
  if (layout === 'turin') {
    const t = TCB_BYTE.turin;
    return put(tcb.fmc ?? 0, t.fmc) | put(tcb.bootloader, t.bootloader) | put(tcb.tee, t.tee) | put(tcb.snp, t.snp) | put(tcb.microcode, t.microcode);
  }
  const m = TCB_BYTE['milan-genoa'];
  return put(tcb.bootloader, m.bootloader) | put(tcb.tee, m.tee) | put(tcb.snp, m.snp) | put(tcb.microcode, m.microcode);
}

/** Reserved TCB bytes that are not zero (firmware writes zero; reported so a policy can act). */
export function tcbReservedNonzero(raw: bigint, layout: TcbLayout): boolean {
  return TCB_BYTE[layout].reserved.some((i) => byteOf(raw, i) !== 0);
}

/** Hex of the u64 as written in the AMD tools (0x + 16 digits). */
export function tcbHex(raw: bigint): string {
  return '0x' + raw.toString(16).padStart(16, '0');
}

/**
 * Which product the report belongs to: CPUID fields when the report has them, otherwise the caller's
 * statement. Both present and different is a rejection; neither is an error, never a guess.
 */
export function resolveProduct(cpuid: { family: number; model: number } | undefined, stated: SnpProduct | undefined): SnpProduct {
  if (cpuid) {
    const fromCpuid = productFromCpuid(cpuid.family, cpuid.model);
    if (!fromCpuid) {
      if (stated) return stated;
      throw reject(SnpErrorCode.PRODUCT_UNKNOWN, `CPUID family 0x${cpuid.family.toString(16)} model 0x${cpuid.model.toString(16)} is not a known SEV-SNP product; pass the product explicitly`, { cpuidFamId: cpuid.family, cpuidModId: cpuid.model });
    }
    if (stated && stated !== fromCpuid) {
      throw reject(SnpErrorCode.PRODUCT_MISMATCH, `the report's CPUID (family 0x${cpuid.family.toString(16)}, model 0x${cpuid.model.toString(16)}) says ${fromCpuid}, but ${stated} was stated`, { fromCpuid, stated });
    }
    return fromCpuid;
  }
  if (stated) return stated;
  throw inputError(SnpErrorCode.PRODUCT_UNKNOWN, 'the report (version 2) carries no CPUID, so its product cannot be known: pass the product (milan, genoa or turin)', {});
}

/**
 * Every component of `actual` must be at least the minimum's (components the minimum leaves out are
 * not checked). A policy uses this on REPORTED_TCB (what the VCEK is derived from) or COMMITTED_TCB.
 */
export function checkTcbAtLeast(actual: TcbVersion, minimum: Partial<TcbVersion>, which = 'reportedTcb'): void {
  for (const k of ['fmc', 'bootloader', 'tee', 'snp', 'microcode'] as const) {
    const min = minimum[k];
    if (min === undefined) continue;
    const have = actual[k];
    if (have === undefined || have < min) {
      throw reject(SnpErrorCode.TCB_TOO_LOW, `${which}.${k} is ${have ?? 'absent'}, the minimum is ${min}`, { tcb: which, component: k, actual: have, minimum: min });
    }
  }
}
