/** TPM 2.0 Library spec Part 2 constants (TPM_ALG_ID, TPM_ST, TPM_ECC_CURVE, TPMA_OBJECT). */

export const TPM_GENERATED_VALUE = 0xff544347;

export const TPM_ST = {
  ATTEST_NV: 0x8014,
  ATTEST_COMMAND_AUDIT: 0x8015,
  ATTEST_SESSION_AUDIT: 0x8016,
  ATTEST_CERTIFY: 0x8017,
  ATTEST_QUOTE: 0x8018,
  ATTEST_TIME: 0x8019,
  ATTEST_CREATION: 0x801a,
  ATTEST_NV_DIGEST: 0x801c,
} as const;

export const TPM_ALG = {
  RSA: 0x0001,
  SHA1: 0x0004,
  HMAC: 0x0005,
  AES: 0x0006,
  KEYEDHASH: 0x0008,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  SM3_256: 0x0012,
  RSASSA: 0x0014,
  RSAES: 0x0015,
  RSAPSS: 0x0016,
  OAEP: 0x0017,
  ECDSA: 0x0018,
  ECDH: 0x0019,
  ECDAA: 0x001a,
  SM2: 0x001b,
  ECSCHNORR: 0x001c,
  KDF1_SP800_56A: 0x0020,
  KDF1_SP800_108: 0x0022,
  ECC: 0x0023,
  SYMCIPHER: 0x0025,
  CFB: 0x0043,
  SHA3_256: 0x0027,
  SHA3_384: 0x0028,
  SHA3_512: 0x0029,
} as const;

const algNames = new Map<number, string>(Object.entries(TPM_ALG).map(([k, v]) => [v, k.toLowerCase()]));
export function tpmAlgName(id: number): string {
  return algNames.get(id) ?? `alg_0x${id.toString(16).padStart(4, '0')}`;
}

/** Hash algorithms a verifier can compute: TPM_ALG_ID → node hash name and digest size. */
export const TPM_HASH: Record<number, { name: string; node: string; size: number }> = {
  [TPM_ALG.SHA1]: { name: 'sha1', node: 'sha1', size: 20 },
  [TPM_ALG.SHA256]: { name: 'sha256', node: 'sha256', size: 32 },
  [TPM_ALG.SHA384]: { name: 'sha384', node: 'sha384', size: 48 },
  [TPM_ALG.SHA512]: { name: 'sha512', node: 'sha512', size: 64 },
  [TPM_ALG.SHA3_256]: { name: 'sha3_256', node: 'sha3-256', size: 32 },
  [TPM_ALG.SHA3_384]: { name: 'sha3_384', node: 'sha3-384', size: 48 },
  [TPM_ALG.SHA3_512]: { name: 'sha3_512', node: 'sha3-512', size: 64 },
};

export function hashIdByName(name: string): number | undefined {
  for (const [id, h] of Object.entries(TPM_HASH)) if (h.name === name) return Number(id);
  return undefined;
}

export const TPM_ECC_CURVE: Record<number, { name: string; node: string; size: number }> = {
  0x0003: { name: 'nist_p256', node: 'P-256', size: 32 },
  0x0004: { name: 'nist_p384', node: 'P-384', size: 48 },
  0x0005: { name: 'nist_p521', node: 'P-521', size: 66 },
};

/** TPMA_OBJECT bits. */
export const TPMA_OBJECT = {
  fixedTPM: 1 << 1,
  stClear: 1 << 2,
  fixedParent: 1 << 4,
  sensitiveDataOrigin: 1 << 5,
  userWithAuth: 1 << 6,
  adminWithPolicy: 1 << 7,
  noDA: 1 << 10,
  encryptedDuplication: 1 << 11,
  restricted: 1 << 16,
  decrypt: 1 << 17,
  sign: 1 << 18,
} as const;

/** PCR selections and sizes are bounded: a PC Client TPM has 24 PCRs and a handful of banks. */
export const LIMITS = {
  maxPcrSelections: 16,
  maxSizeofSelect: 8,
  maxRsaBits: 16384,
} as const;
