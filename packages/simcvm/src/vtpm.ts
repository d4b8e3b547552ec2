import { createHash, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { toHex, newKeyPair } from '@joinguard/core';
import { openTpm, pcrValuesToHex, type AttestationKey, type Tpm } from '@joinguard/tpm2';
import { startSwtpm, type Swtpm } from '@joinguard/tpm2/testing';
import type { SimBank } from './eventlog.js';

/** What the simulated CVM needs from a vTPM: extend at boot, quote at attestation time. */
export interface SimVtpm {
  readonly kind: 'swtpm' | 'software';
  /** TPMT_PUBLIC of the AK (a restricted ECDSA P-256 signing key). */
  readonly akPublic: Uint8Array;
  extend(pcr: number, digests: Record<SimBank, Uint8Array>): void;
  /** TPM2_Quote over the SHA-256 bank PCRs `pcrs` with `extraData`; returns the quoted PCR values as hex. */
  quote(extraData: Uint8Array, pcrs: readonly number[]): { quoted: Uint8Array; signature: Uint8Array; pcrs: Record<string, string> };
  close(): Promise<void>;
}

// TPM 2.0 Part 2 constants used below.
const TPM_ALG_ECC = 0x0023;
const TPM_ALG_SHA256 = 0x000b;
const TPM_ALG_NULL = 0x0010;
const TPM_ALG_ECDSA = 0x0018;
const TPM_ECC_NIST_P256 = 0x0003;
const TPM_GENERATED_VALUE = 0xff544347;
const TPM_ST_ATTEST_QUOTE = 0x8018;
/** fixedTPM | fixedParent | sensitiveDataOrigin | userWithAuth | restricted | sign */
export const AK_ATTRIBUTES = (1 << 1) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 16) | (1 << 18);

class Be {
  private readonly parts: Buffer[] = [];
  u8(v: number): this {
    this.parts.push(Buffer.from([v & 0xff]));
    return this;
  }
  u16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(v);
    this.parts.push(b);
    return this;
  }
  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v >>> 0);
    this.parts.push(b);
    return this;
  }
  u64(v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(v);
    this.parts.push(b);
    return this;
  }
  raw(b: Uint8Array): this {
    this.parts.push(Buffer.from(b));
    return this;
  }
  tpm2b(b: Uint8Array): this {
    return this.u16(b.length).raw(b);
  }
  done(): Uint8Array {
    return new Uint8Array(Buffer.concat(this.parts));
  }
}

/** TPMT_PUBLIC of an ECC P-256 restricted signing key with scheme ECDSA/SHA-256 (what tpm2_createak makes). */
export function eccAkPublic(key: KeyObject, attributes = AK_ATTRIBUTES): Uint8Array {
  const jwk = key.export({ format: 'jwk' });
  return new Be()
    .u16(TPM_ALG_ECC)
    .u16(TPM_ALG_SHA256)
    .u32(attributes)
    .tpm2b(new Uint8Array(0))
    .u16(TPM_ALG_NULL) // symmetric: none (a signing key)
    .u16(TPM_ALG_ECDSA)
    .u16(TPM_ALG_SHA256)
    .u16(TPM_ECC_NIST_P256)
    .u16(TPM_ALG_NULL) // kdf
    .tpm2b(Buffer.from(jwk.x!, 'base64url'))
    .tpm2b(Buffer.from(jwk.y!, 'base64url'))
    .done();
}

function pcrSelect(bankAlg: number, pcrs: readonly number[]): Uint8Array {
  const bitmap = new Uint8Array(3);
  for (const p of pcrs) bitmap[p >> 3]! |= 1 << (p & 7);
  return new Be().u32(1).u16(bankAlg).u8(3).raw(bitmap).done();
}

/**
 * An in-process vTPM: PCR banks in memory and a P-256 AK in node:crypto, producing byte-exact TPMS_ATTEST,
 * TPMT_SIGNATURE and TPMT_PUBLIC. For benchmarks and fast tests; it proves nothing a real TPM would.
 */
export function softwareVtpm(): SimVtpm {
  const { privateKey, publicKey } = newKeyPair({ type: 'ec', namedCurve: 'P-256' });
  const akPublic = eccAkPublic(publicKey);
  const name = new Be().u16(TPM_ALG_SHA256).raw(createHash('sha256').update(akPublic).digest()).done();
  const banks: Record<SimBank, Uint8Array[]> = {
    sha1: Array.from({ length: 24 }, (_, i) => new Uint8Array(20).fill(i >= 17 && i <= 22 ? 0xff : 0)),
    sha256: Array.from({ length: 24 }, (_, i) => new Uint8Array(32).fill(i >= 17 && i <= 22 ? 0xff : 0)),
  };
  let clock = 1_000_000n;
  return {
    kind: 'software',
    akPublic,
    extend(pcr, digests) {
      for (const bank of ['sha1', 'sha256'] as const) {
        banks[bank][pcr] = new Uint8Array(createHash(bank).update(banks[bank][pcr]!).update(digests[bank]).digest());
      }
    },
    quote(extraData, pcrs) {
      const sorted = [...pcrs].sort((a, b) => a - b);
      const composite = createHash('sha256');
      for (const p of sorted) composite.update(banks.sha256[p]!);
      clock += 1000n;
      const quoted = new Be()
        .u32(TPM_GENERATED_VALUE)
        .u16(TPM_ST_ATTEST_QUOTE)
        .tpm2b(name)
        .tpm2b(extraData)
        .u64(clock)
        .u32(1) // resetCount
        .u32(0) // restartCount
        .u8(1) // safe
        .u64(0x2023_0001_0000_0000n) // firmwareVersion
        .raw(pcrSelect(TPM_ALG_SHA256, sorted))
        .tpm2b(composite.digest())
        .done();
      const p1363 = cryptoSign('sha256', quoted, { key: privateKey, dsaEncoding: 'ieee-p1363' });
      const signature = new Be().u16(TPM_ALG_ECDSA).u16(TPM_ALG_SHA256).tpm2b(p1363.subarray(0, 32)).tpm2b(p1363.subarray(32)).done();
      const values: Record<string, string> = {};
      for (const p of sorted) values[String(p)] = toHex(banks.sha256[p]!);
      return { quoted, signature, pcrs: values };
    },
    async close() {},
  };
}

/** swtpm through @joinguard/tpm2: a real TPM 2.0 implementation; the AK is created in its endorsement hierarchy. */
export async function swtpmVtpm(opts: { templateDir?: string } = {}): Promise<SimVtpm> {
  const sw: Swtpm = await startSwtpm({ pcrBanks: ['sha1', 'sha256'], ...(opts.templateDir ? { templateDir: opts.templateDir } : {}) });
  let tpm: Tpm | undefined;
  let ak: AttestationKey;
  try {
    tpm = openTpm(sw.tcti);
    ak = tpm.createAk({ alg: 'ecc' });
  } catch (e) {
    tpm?.close();
    await sw.stop();
    throw e;
  }
  const t = tpm;
  return {
    kind: 'swtpm',
    akPublic: ak.public,
    extend(pcr, digests) {
      t.pcrExtend(pcr, { sha1: digests.sha1, sha256: digests.sha256 });
    },
    quote(extraData, pcrs) {
      const q = t.quote(ak, { extraData, pcrs: { sha256: [...pcrs].sort((a, b) => a - b) } });
      const hex = pcrValuesToHex(q.pcrs ?? {});
      return { quoted: q.quoted, signature: q.signature, pcrs: hex.sha256 ?? {} };
    },
    async close() {
      try {
        t.close();
      } finally {
        await sw.stop();
      }
    },
  };
}

