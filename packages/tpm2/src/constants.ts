/** TPM 2.0 Part 2 constants used by the attester (algorithm ids, handles, attribute bits). */

export const TPM2_ALG = {
  RSA: 0x0001,
  SHA1: 0x0004,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  RSASSA: 0x0014,
  ECDSA: 0x0018,
  ECC: 0x0023,
} as const;

export const TPM2_ECC_NIST_P256 = 0x0003;

/** PCR banks by their tpm2-tools names; the digest size is what the TPM returns for one PCR. */
export const PCR_BANKS = {
  sha1: { alg: TPM2_ALG.SHA1, size: 20 },
  sha256: { alg: TPM2_ALG.SHA256, size: 32 },
  sha384: { alg: TPM2_ALG.SHA384, size: 48 },
  sha512: { alg: TPM2_ALG.SHA512, size: 64 },
} as const;
export type PcrBank = keyof typeof PCR_BANKS;

export function bankOfAlg(alg: number): PcrBank | undefined {
  for (const [name, b] of Object.entries(PCR_BANKS)) if (b.alg === alg) return name as PcrBank;
  return undefined;
}

/** PC Client platforms have 24 PCRs; a 3-byte select bitmap covers them. */
export const PCR_COUNT = 24;
export const PCR_SELECT_SIZE = 3;

/** ESYS_TR values (tss2_esys.h), not TPM handles. */
export const ESYS_TR = {
  NONE: 0xfff,
  PASSWORD: 0x0ff,
  RH_OWNER: 0x101,
  RH_ENDORSEMENT: 0x10b,
  RH_PLATFORM: 0x10c,
  PCR0: 0,
} as const;

/** TPMA_OBJECT bits (Part 2, 8.3). */
export const TPMA_OBJECT = {
  fixedTPM: 0x00000002,
  fixedParent: 0x00000010,
  sensitiveDataOrigin: 0x00000020,
  userWithAuth: 0x00000040,
  noDA: 0x00000400,
  restricted: 0x00010000,
  decrypt: 0x00020000,
  sign: 0x00040000,
} as const;

/** TPMA_NV bits (Part 2, 13.4). */
export const TPMA_NV = {
  PPWRITE: 0x00000001,
  OWNERWRITE: 0x00000002,
  AUTHWRITE: 0x00000004,
  POLICYWRITE: 0x00000008,
  WRITE_STCLEAR: 0x00004000,
  WRITEDEFINE: 0x00002000,
  WRITELOCKED: 0x00000800,
  PPREAD: 0x00010000,
  OWNERREAD: 0x00020000,
  AUTHREAD: 0x00040000,
  POLICYREAD: 0x00080000,
  NO_DA: 0x02000000,
  WRITTEN: 0x20000000,
  PLATFORMCREATE: 0x40000000,
} as const;
/** TPM_NT lives in bits 4..7 of TPMA_NV; ordinary indices are TPM_NT_ORDINARY (0). */
export const TPMA_NV_TPM_NT_MASK = 0x000000f0;

/** NV indices are the handle range 0x01xxxxxx. */
export const NV_INDEX_FIRST = 0x01000000;
export const NV_INDEX_LAST = 0x01ffffff;
/** Persistent objects (Part 2, 29.3 / TCG provisioning guidance). */
export const PERSISTENT_FIRST = 0x81000000;
export const PERSISTENT_LAST = 0x81ffffff;

export const TPM2_CAP_TPM_PROPERTIES = 0x00000006;
export const TPM2_PT_NV_BUFFER_MAX = 0x0000012c;
export const TPM2_PT_NV_INDEX_MAX = 0x00000117;

export const TPM2_GENERATED_VALUE = 0xff544347;
export const TPM2_ST_ATTEST_QUOTE = 0x8018;

/** The largest qualifyingData a TPM accepts is sizeof(TPMU_HA) = 64 bytes (SHA-512). */
export const MAX_EXTRA_DATA = 64;

/** TPM_RC values we recognise after masking off handle/parameter/session numbers. */
export const TPM2_RC_HANDLE = 0x08b;
export const TPM2_RC_FMT1 = 0x080;
