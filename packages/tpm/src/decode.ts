import { ByteReader, inputError, reject } from '@joinguard/core';
import { LIMITS, TPMA_OBJECT, TPM_ALG, TPM_ECC_CURVE, TPM_GENERATED_VALUE, TPM_HASH, TPM_ST, tpmAlgName } from './constants.js';

export interface PcrSelection {
  /** TPM_ALG_ID of the bank. */
  hash: number;
  /** Bank name (sha1, sha256, …). */
  bank: string;
  /** Selected PCR indices, ascending (the order the TPM concatenates them in). */
  pcrs: number[];
}

export interface ClockInfo {
  /** Milliseconds the TPM has been powered, as a decimal string (a 64-bit counter). */
  clock: string;
  resetCount: number;
  restartCount: number;
  safe: boolean;
}

/** TPMS_ATTEST (TPM 2.0 Part 2, 10.12.12) of a quote. */
export interface TpmsAttest {
  magic: number;
  type: number;
  qualifiedSigner: Uint8Array;
  extraData: Uint8Array;
  clockInfo: ClockInfo;
  /** 64-bit vendor firmware version as 16 hex digits. */
  firmwareVersion: string;
  /** TPMS_QUOTE_INFO, present when type is TPM_ST_ATTEST_QUOTE. */
  pcrSelect: PcrSelection[];
  pcrDigest: Uint8Array;
}

export type TpmtSignature =
  | { sigAlg: 'rsassa' | 'rsapss'; hash: number; signature: Uint8Array }
  | { sigAlg: 'ecdsa'; hash: number; r: Uint8Array; s: Uint8Array };

export interface ObjectAttributes {
  raw: number;
  fixedTPM: boolean;
  stClear: boolean;
  fixedParent: boolean;
  sensitiveDataOrigin: boolean;
  userWithAuth: boolean;
  adminWithPolicy: boolean;
  noDA: boolean;
  encryptedDuplication: boolean;
  restricted: boolean;
  decrypt: boolean;
  sign: boolean;
}

interface PublicCommon {
  nameAlg: number;
  objectAttributes: ObjectAttributes;
  authPolicy: Uint8Array;
  /** Signing scheme of the key (TPM_ALG_NULL = any), and its hash. */
  scheme: number;
  schemeHash: number | undefined;
  /** The exact TPMT_PUBLIC bytes (without a TPM2B size), which the name is computed over. */
  bytes: Uint8Array;
}

export type TpmtPublic =
  | (PublicCommon & { type: 'rsa'; keyBits: number; exponent: number; modulus: Uint8Array })
  | (PublicCommon & { type: 'ecc'; curveId: number; curve: string; x: Uint8Array; y: Uint8Array });

const T = 'TPM_TRUNCATED';

function tpm2b(r: ByteReader, field: string, max?: number): Uint8Array {
  const n = r.u16be(`${field}.size`);
  if (max !== undefined && n > max) throw reject('TPM_BAD_SIZE', `${field} is ${n} bytes, more than the ${max} allowed`, { field, size: n, max });
  return r.bytes(n, field);
}

function noTrailing(r: ByteReader, what: string): void {
  if (r.remaining !== 0) throw reject('TPM_TRAILING_BYTES', `${what} has ${r.remaining} bytes after its end`, { what, trailing: r.remaining });
}

function asBytes(b: Uint8Array, what: string): Uint8Array {
  if (!(b instanceof Uint8Array)) throw inputError('TPM_BAD_INPUT', `${what} must be a Uint8Array`);
  return b;
}

export function decodePcrSelection(r: ByteReader): PcrSelection[] {
  const count = r.u32be('pcrSelect.count');
  if (count > LIMITS.maxPcrSelections) throw reject('TPM_BAD_PCR_SELECTION', `TPML_PCR_SELECTION has ${count} entries, more than ${LIMITS.maxPcrSelections}`, { count });
  const out: PcrSelection[] = [];
  for (let i = 0; i < count; i++) {
    const hash = r.u16be('pcrSelections.hash');
    const sizeofSelect = r.u8('pcrSelections.sizeofSelect');
    if (sizeofSelect > LIMITS.maxSizeofSelect) throw reject('TPM_BAD_PCR_SELECTION', `PCR selection for ${tpmAlgName(hash)} has sizeofSelect ${sizeofSelect}`, { hash, sizeofSelect });
    const bits = r.bytes(sizeofSelect, 'pcrSelections.pcrSelect');
    const pcrs: number[] = [];
    for (let byte = 0; byte < bits.length; byte++) for (let bit = 0; bit < 8; bit++) if (bits[byte]! & (1 << bit)) pcrs.push(byte * 8 + bit);
    out.push({ hash, bank: TPM_HASH[hash]?.name ?? tpmAlgName(hash), pcrs });
  }
  return out;
}

/** Decodes TPMS_ATTEST (magic TPM_GENERATED_VALUE, type TPM_ST_ATTEST_QUOTE). */
export function decodeAttest(bytes: Uint8Array): TpmsAttest {
  const r = new ByteReader(asBytes(bytes, 'quote'), { truncatedCode: T, what: 'TPMS_ATTEST' });
  const magic = r.u32be('magic');
  if (magic !== TPM_GENERATED_VALUE) {
    throw reject('TPM_BAD_MAGIC', `TPMS_ATTEST magic is 0x${magic.toString(16)}, not TPM_GENERATED_VALUE 0xff544347: the TPM did not produce this structure`, { magic });
  }
  const type = r.u16be('type');
  if (type !== TPM_ST.ATTEST_QUOTE) {
    throw reject('TPM_NOT_A_QUOTE', `TPMS_ATTEST type is 0x${type.toString(16)}, not TPM_ST_ATTEST_QUOTE 0x8018`, { type });
  }
  const qualifiedSigner = tpm2b(r, 'qualifiedSigner', 2 + 64);
  const extraData = tpm2b(r, 'extraData', 64);
  const clock = r.u64be('clockInfo.clock');
  const resetCount = r.u32be('clockInfo.resetCount');
  const restartCount = r.u32be('clockInfo.restartCount');
  const safe = r.u8('clockInfo.safe');
  if (safe > 1) throw reject('TPM_BAD_ATTEST', `clockInfo.safe is ${safe}, not a TPMI_YES_NO`, { safe });
  const firmwareVersion = r.u64be('firmwareVersion').toString(16).padStart(16, '0');
  const pcrSelect = decodePcrSelection(r);
  const pcrDigest = tpm2b(r, 'pcrDigest', 64);
  if (pcrDigest.length === 0) throw reject('TPM_BAD_ATTEST', 'quote pcrDigest is empty', {});
  noTrailing(r, 'TPMS_ATTEST');
  return { magic, type, qualifiedSigner, extraData, clockInfo: { clock: clock.toString(), resetCount, restartCount, safe: safe === 1 }, firmwareVersion, pcrSelect, pcrDigest };
}

/** Decodes TPMT_SIGNATURE for RSASSA, RSAPSS and ECDSA. */
export function decodeSignature(bytes: Uint8Array): TpmtSignature {
  const r = new ByteReader(asBytes(bytes, 'signature'), { truncatedCode: T, what: 'TPMT_SIGNATURE' });
  const sigAlg = r.u16be('sigAlg');
  let out: TpmtSignature;
  if (sigAlg === TPM_ALG.RSASSA || sigAlg === TPM_ALG.RSAPSS) {
    const hash = r.u16be('hash');
    const signature = tpm2b(r, 'sig', LIMITS.maxRsaBits / 8);
    if (signature.length === 0) throw reject('TPM_BAD_SIGNATURE_FORMAT', 'RSA signature is empty', {});
    out = { sigAlg: sigAlg === TPM_ALG.RSASSA ? 'rsassa' : 'rsapss', hash, signature };
  } else if (sigAlg === TPM_ALG.ECDSA) {
    const hash = r.u16be('hash');
    const rr = tpm2b(r, 'signatureR', 66);
    const s = tpm2b(r, 'signatureS', 66);
    if (rr.length === 0 || s.length === 0) throw reject('TPM_BAD_SIGNATURE_FORMAT', 'ECDSA signature has an empty r or s', {});
    out = { sigAlg: 'ecdsa', hash, r: rr, s };
  } else {
    throw reject('TPM_UNSUPPORTED_SIGNATURE_ALG', `TPMT_SIGNATURE sigAlg ${tpmAlgName(sigAlg)} is not supported (RSASSA, RSAPSS, ECDSA are)`, { sigAlg });
  }
  if (!TPM_HASH[out.hash]) throw reject('TPM_UNSUPPORTED_HASH', `signature hash ${tpmAlgName(out.hash)} is not supported`, { hash: out.hash });
  noTrailing(r, 'TPMT_SIGNATURE');
  return out;
}

function attributes(raw: number): ObjectAttributes {
  const a = {} as ObjectAttributes;
  for (const [k, bit] of Object.entries(TPMA_OBJECT)) (a as unknown as Record<string, boolean>)[k] = (raw & bit) !== 0;
  a.raw = raw >>> 0;
  return a;
}

function symDef(r: ByteReader): void {
  const alg = r.u16be('symmetric.algorithm');
  if (alg !== TPM_ALG.NULL) {
    r.u16be('symmetric.keyBits');
    r.u16be('symmetric.mode');
  }
}

function schemeOf(r: ByteReader, field: string): { scheme: number; schemeHash: number | undefined } {
  const scheme = r.u16be(`${field}.scheme`);
  if (scheme === TPM_ALG.NULL) return { scheme, schemeHash: undefined };
  const schemeHash = r.u16be(`${field}.details.hashAlg`);
  if (scheme === TPM_ALG.ECDAA) r.u16be(`${field}.details.count`);
  return { scheme, schemeHash };
}

/**
 * Decodes TPMT_PUBLIC (or a TPM2B_PUBLIC, whose leading size is recognised and checked) for RSA and ECC keys.
 */
export function decodePublic(bytes: Uint8Array): TpmtPublic {
  let b = asBytes(bytes, 'public area');
  // A TPM2B_PUBLIC's size equals the rest of the buffer and is followed by an object type.
  const objectTypes = new Set<number>([TPM_ALG.RSA, TPM_ALG.ECC, TPM_ALG.KEYEDHASH, TPM_ALG.SYMCIPHER]);
  if (b.length > 4 && ((b[0]! << 8) | b[1]!) === b.length - 2 && objectTypes.has((b[2]! << 8) | b[3]!)) b = b.subarray(2);
  const r = new ByteReader(b, { truncatedCode: T, what: 'TPMT_PUBLIC' });
  const type = r.u16be('type');
  const nameAlg = r.u16be('nameAlg');
  if (!TPM_HASH[nameAlg]) throw reject('TPM_UNSUPPORTED_HASH', `TPMT_PUBLIC nameAlg ${tpmAlgName(nameAlg)} is not supported`, { nameAlg });
  const objectAttributes = attributes(r.u32be('objectAttributes'));
  const authPolicy = tpm2b(r, 'authPolicy', 64);
  let out: TpmtPublic;
  if (type === TPM_ALG.RSA) {
    symDef(r);
    const { scheme, schemeHash } = schemeOf(r, 'scheme');
    const keyBits = r.u16be('keyBits');
    const exponent = r.u32be('exponent');
    const modulus = tpm2b(r, 'unique.rsa', LIMITS.maxRsaBits / 8);
    if (keyBits < 1024 || keyBits > LIMITS.maxRsaBits || modulus.length !== keyBits / 8) {
      throw reject('TPM_BAD_PUBLIC', `RSA key has keyBits ${keyBits} and a ${modulus.length}-byte modulus`, { keyBits, modulusLength: modulus.length });
    }
    out = { type: 'rsa', nameAlg, objectAttributes, authPolicy, scheme, schemeHash, keyBits, exponent: exponent === 0 ? 65537 : exponent, modulus, bytes: b };
  } else if (type === TPM_ALG.ECC) {
    symDef(r);
    const { scheme, schemeHash } = schemeOf(r, 'scheme');
    const curveId = r.u16be('curveID');
    const kdf = r.u16be('kdf.scheme');
    if (kdf !== TPM_ALG.NULL) r.u16be('kdf.details.hashAlg');
    const x = tpm2b(r, 'unique.ecc.x', 66);
    const y = tpm2b(r, 'unique.ecc.y', 66);
    const curve = TPM_ECC_CURVE[curveId];
    if (!curve) throw reject('TPM_UNSUPPORTED_CURVE', `ECC curve 0x${curveId.toString(16)} is not supported (NIST P-256, P-384, P-521 are)`, { curveId });
    if (x.length !== curve.size || y.length !== curve.size) {
      throw reject('TPM_BAD_PUBLIC', `ECC point coordinates are ${x.length} and ${y.length} bytes; ${curve.name} needs ${curve.size}`, { x: x.length, y: y.length });
    }
    out = { type: 'ecc', nameAlg, objectAttributes, authPolicy, scheme, schemeHash, curveId, curve: curve.name, x, y, bytes: b };
  } else {
    throw reject('TPM_UNSUPPORTED_KEY_TYPE', `TPMT_PUBLIC type ${tpmAlgName(type)} is not a signing key type (RSA, ECC)`, { type });
  }
  if (out.schemeHash !== undefined && !TPM_HASH[out.schemeHash]) throw reject('TPM_UNSUPPORTED_HASH', `key scheme hash ${tpmAlgName(out.schemeHash)} is not supported`, { hash: out.schemeHash });
  noTrailing(r, 'TPMT_PUBLIC');
  return out;
}

