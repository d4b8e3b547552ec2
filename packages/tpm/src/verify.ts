import { createHash, createPublicKey, constants as cryptoConstants, verify as cryptoVerify, KeyObject } from 'node:crypto';
import { BoundedMap, concatBytes, digest, equalBytes, fromHex, inputError, reject, toHex, wrapError } from '@joinguard/core';
import { TPM_ALG, TPM_ECC_CURVE, TPM_HASH, tpmAlgName } from './constants.js';
import { decodeAttest, decodePublic, decodeSignature, type ClockInfo, type ObjectAttributes, type PcrSelection, type TpmsAttest, type TpmtPublic, type TpmtSignature } from './decode.js';

/** bank → PCR index → hex value. */
export type PcrValues = { [bank: string]: { [pcr: number]: string } };

/**
 * The AK: TPMT_PUBLIC / TPM2B_PUBLIC bytes or their decoded form (attributes known), or an SPKI (DER bytes,
 * PEM text) or node KeyObject (no attributes: see `allowAkWithoutAttributes`).
 */
export type AkPublicInput = Uint8Array | string | KeyObject | TpmtPublic;

export interface VerifyQuoteInput {
  /** TPMS_ATTEST bytes, exactly as signed. */
  quote: Uint8Array;
  /** TPMT_SIGNATURE bytes, or an already decoded signature (e.g. a raw RSASSA signature from Azure's quote JSON). */
  signature: Uint8Array | TpmtSignature;
  akPublic: AkPublicInput;
  /** The nonce the verifier asked for; the quote's extraData must equal it byte for byte. */
  expectedExtraData?: Uint8Array;
  /** PCR values claimed by the attester; their digest in selection order must equal pcrDigest. */
  pcrs?: PcrValues;
  /**
   * An SPKI/PEM/KeyObject AK carries no TPMA_OBJECT, so the verifier cannot see that it is a restricted
   * signing key (which is what stops a TPM from signing a forged TPMS_ATTEST). Such an AK is refused
   * unless this is set, e.g. because a trusted source (an AK certificate, a hardware report) vouches for it.
   */
  allowAkWithoutAttributes?: boolean;
}

export interface QuoteClaims {
  qualifiedSigner: string;
  extraData: string;
  clockInfo: ClockInfo;
  firmwareVersion: string;
  pcrSelect: PcrSelection[];
  pcrDigest: string;
  /** The PCR values, present only when supplied and matched against pcrDigest. */
  pcrs?: PcrValues;
  pcrsVerified: boolean;
  extraDataVerified: boolean;
  signature: { sigAlg: TpmtSignature['sigAlg']; hash: string };
  ak: {
    keyType: 'rsa' | 'ec';
    /** SHA-256 of the AK's SubjectPublicKeyInfo DER. */
    spkiSha256: string;
    /** TPM name (nameAlg ‖ H(TPMT_PUBLIC)), when the AK was given as TPMT_PUBLIC. */
    name?: string;
    objectAttributes?: ObjectAttributes;
    attributesChecked: boolean;
  };
}

const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url');

function stripLeadingZeros(b: Uint8Array): Uint8Array {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

/** The TPM name of an object: nameAlg (big-endian) ‖ H_nameAlg(TPMT_PUBLIC). */
export function tpmName(pub: TpmtPublic | Uint8Array): Uint8Array {
  const p = pub instanceof Uint8Array ? decodePublic(pub) : pub;
  const h = TPM_HASH[p.nameAlg]!;
  const alg = new Uint8Array([p.nameAlg >> 8, p.nameAlg & 0xff]);
  return concatBytes(alg, digest(h.node, p.bytes));
}

/** A node KeyObject for a TPMT_PUBLIC key. */
export function publicKeyObject(pub: TpmtPublic): KeyObject {
  try {
    if (pub.type === 'rsa') {
      const e = Buffer.alloc(4);
      e.writeUInt32BE(pub.exponent);
      return createPublicKey({ key: { kty: 'RSA', n: b64u(stripLeadingZeros(pub.modulus)), e: b64u(stripLeadingZeros(e)) }, format: 'jwk' });
    }
    const crv = TPM_ECC_CURVE[pub.curveId]!.node;
    return createPublicKey({ key: { kty: 'EC', crv, x: b64u(pub.x), y: b64u(pub.y) }, format: 'jwk' });
  } catch (e) {
    throw wrapError('TPM_BAD_AK', 'the AK public area is not a valid public key', e);
  }
}

interface ResolvedAk {
  key: KeyObject;
  pub?: TpmtPublic;
}

function looksLikeText(b: Uint8Array): boolean {
  return b.length > 10 && Buffer.from(b.subarray(0, 10)).toString('latin1') === '-----BEGIN';
}

/**
 * Importing a public key costs more than verifying with it, and a verifier sees the same AKs again at every
 * re-attestation; keep the last few imports, keyed by the exact bytes (a bounded map, oldest evicted).
 */
const akCache = new BoundedMap<string, ResolvedAk>(256);

export function resolveAk(ak: AkPublicInput): ResolvedAk {
  if (ak instanceof Uint8Array) {
    const k = Buffer.from(ak.buffer, ak.byteOffset, ak.byteLength).toString('base64');
    const hit = akCache.get(k);
    if (hit) return hit;
    const r = resolveAkUncached(ak);
    // The cached TPMT_PUBLIC must not alias the caller's buffer, which the caller may reuse.
    const stable = r.pub ? decodePublic(new Uint8Array(ak)) : undefined;
    const entry = stable ? { key: r.key, pub: stable } : r;
    akCache.set(k, entry);
    return entry;
  }
  return resolveAkUncached(ak);
}

function resolveAkUncached(ak: AkPublicInput): ResolvedAk {
  if (ak instanceof KeyObject) {
    if (ak.type !== 'public') throw inputError('TPM_BAD_AK', `the AK must be a public key, not a ${ak.type} key`);
    return { key: ak };
  }
  if (typeof ak === 'string' || (ak instanceof Uint8Array && looksLikeText(ak))) {
    const pem = typeof ak === 'string' ? ak : Buffer.from(ak).toString('latin1');
    try {
      return { key: createPublicKey({ key: pem, format: 'pem' }) };
    } catch (e) {
      throw wrapError('TPM_BAD_AK', 'the AK PEM is not a public key', e);
    }
  }
  if (ak instanceof Uint8Array) {
    // SPKI DER starts with a SEQUENCE tag; TPMT_PUBLIC with a type (0x0001/0x0023), TPM2B_PUBLIC with a size.
    if (ak.length > 0 && ak[0] === 0x30) {
      try {
        return { key: createPublicKey({ key: Buffer.from(ak), format: 'der', type: 'spki' }) };
      } catch (e) {
        throw wrapError('TPM_BAD_AK', 'the AK is neither a TPMT_PUBLIC nor an SPKI DER public key', e);
      }
    }
    const pub = decodePublic(ak);
    return { key: publicKeyObject(pub), pub };
  }
  if (ak && typeof ak === 'object' && 'bytes' in ak && (ak.type === 'rsa' || ak.type === 'ecc')) return { key: publicKeyObject(ak), pub: ak };
  throw inputError('TPM_BAD_AK', 'akPublic must be TPMT_PUBLIC bytes, SPKI DER/PEM or a KeyObject');
}

function checkAkAttributes(pub: TpmtPublic): void {
  const a = pub.objectAttributes;
  // Only a restricted signing key refuses to sign data that begins with TPM_GENERATED_VALUE, so only its
  // signature proves the TPM produced the TPMS_ATTEST.
  if (!a.restricted || !a.sign || a.decrypt) {
    throw reject('TPM_AK_NOT_RESTRICTED_SIGNING', `the AK is not a restricted signing key (restricted=${a.restricted}, sign=${a.sign}, decrypt=${a.decrypt})`, { objectAttributes: a.raw });
  }
}

/** Verifies a signature by the AK over `data` under the signature's scheme and hash. */
export function verifyTpmSignature(key: KeyObject, data: Uint8Array, sig: TpmtSignature): boolean {
  const h = TPM_HASH[sig.hash];
  if (!h) throw reject('TPM_UNSUPPORTED_HASH', `signature hash ${tpmAlgName(sig.hash)} is not supported`, { hash: sig.hash });
  const keyType = key.asymmetricKeyType;
  try {
    if (sig.sigAlg === 'ecdsa') {
      if (keyType !== 'ec') throw reject('TPM_SIGNATURE_KEY_MISMATCH', `an ECDSA signature cannot come from a ${keyType} AK`, { keyType });
      const crv = key.asymmetricKeyDetails?.namedCurve;
      const size = crv === 'prime256v1' ? 32 : crv === 'secp384r1' ? 48 : crv === 'secp521r1' ? 66 : 0;
      if (size === 0) throw reject('TPM_UNSUPPORTED_CURVE', `AK curve ${crv} is not supported`, { curve: crv });
      const r = stripLeadingZeros(sig.r);
      const s = stripLeadingZeros(sig.s);
      if (r.length > size || s.length > size) return false;
      const p1363 = new Uint8Array(2 * size);
      p1363.set(r, size - r.length);
      p1363.set(s, 2 * size - s.length);
      return cryptoVerify(h.node, data, { key, dsaEncoding: 'ieee-p1363' }, p1363);
    }
    if (keyType !== 'rsa') throw reject('TPM_SIGNATURE_KEY_MISMATCH', `an RSA signature cannot come from a ${keyType} AK`, { keyType });
    const padding = sig.sigAlg === 'rsapss' ? cryptoConstants.RSA_PKCS1_PSS_PADDING : cryptoConstants.RSA_PKCS1_PADDING;
    return cryptoVerify(h.node, data, { key, padding, saltLength: cryptoConstants.RSA_PSS_SALTLEN_AUTO }, sig.signature);
  } catch (e) {
    // node:crypto throws on malformed signatures (wrong length, bad padding); that is a failed signature.
    if (e instanceof Error && e.name === 'JoinguardError') throw e;
    return false;
  }
}

function normaliseBank(name: string): string {
  return name.toLowerCase().replace(/-/g, '');
}

// A PCR value as the quote's callers and claims write it: lower-case hex, no prefix.
const LOWER_HEX = /^[0-9a-f]*$/;

/** The digest of the supplied PCR values, concatenated in the quote's selection order, under `hashAlg`. */
export function pcrCompositeDigest(select: PcrSelection[], pcrs: PcrValues, hashAlg: number): { digest: Uint8Array; used: PcrValues } {
  const h = TPM_HASH[hashAlg];
  if (!h) throw reject('TPM_UNSUPPORTED_HASH', `hash ${tpmAlgName(hashAlg)} is not supported`, { hash: hashAlg });
  const byBank = new Map<string, { [pcr: number]: string }>();
  for (const [bank, values] of Object.entries(pcrs)) byBank.set(normaliseBank(bank), values);
  const used: PcrValues = {};
  const selected = new Map<string, Set<number>>();
  // The values in selection order, as hex: one decoding and one hash for the whole composite.
  let composite = '';
  for (const sel of select) {
    const bankHash = TPM_HASH[sel.hash];
    if (!bankHash) throw reject('TPM_UNSUPPORTED_HASH', `PCR bank ${sel.bank} is not supported`, { hash: sel.hash });
    const values = byBank.get(sel.bank) ?? {};
    const out: { [pcr: number]: string } = (used[sel.bank] ??= {});
    let chosen = selected.get(sel.bank);
    if (chosen === undefined) selected.set(sel.bank, (chosen = new Set()));
    for (const pcr of sel.pcrs) {
      chosen.add(pcr);
      const hex = values[pcr];
      if (hex === undefined) throw reject('TPM_QUOTE_PCR_MISSING', `the quote selects ${sel.bank} PCR ${pcr} but no value was supplied for it`, { bank: sel.bank, pcr });
      let norm = hex;
      if (typeof hex !== 'string' || hex.length !== bankHash.size * 2 || !LOWER_HEX.test(hex)) {
        const v = typeof hex === 'string' ? fromHex(hex) : undefined;
        if (!v || v.length !== bankHash.size) throw reject('TPM_BAD_PCR_VALUE', `${sel.bank} PCR ${pcr} = ${JSON.stringify(hex).slice(0, 80)} is not ${bankHash.size} bytes of hex`, { bank: sel.bank, pcr });
        norm = toHex(v);
      }
      composite += norm;
      out[pcr] = norm;
    }
  }
  for (const [bank, values] of byBank) {
    const chosen = selected.get(bank);
    for (const k of Object.keys(values)) {
      if (chosen === undefined || !chosen.has(Number(k))) {
        throw reject('TPM_QUOTE_PCR_NOT_SELECTED', `${bank} PCR ${k} was supplied but the quote does not cover it`, { bank, pcr: k });
      }
    }
  }
  return { digest: digest(h.node, Buffer.from(composite, 'hex')), used };
}

const spkiHashes = new WeakMap<KeyObject, string>();
function spkiSha256(key: KeyObject): string {
  let h = spkiHashes.get(key);
  if (h === undefined) {
    h = createHash('sha256').update(key.export({ type: 'spki', format: 'der' })).digest('hex');
    spkiHashes.set(key, h);
  }
  return h;
}

/**
 * Verifies a TPM2_Quote: the AK is a restricted signing key (when its attributes are known), the signature
 * over TPMS_ATTEST verifies under its scheme and hash, extraData equals the expected nonce, and pcrDigest
 * equals the digest of the supplied PCR values. Throws TPM_* rejections; returns the quote's claims.
 */
export function verifyQuote(input: VerifyQuoteInput): QuoteClaims {
  const attest: TpmsAttest = decodeAttest(input.quote);
  const sig = input.signature instanceof Uint8Array ? decodeSignature(input.signature) : input.signature;
  const ak = resolveAk(input.akPublic);

  if (ak.pub) {
    checkAkAttributes(ak.pub);
    const sigAlgId = sig.sigAlg === 'rsassa' ? TPM_ALG.RSASSA : sig.sigAlg === 'rsapss' ? TPM_ALG.RSAPSS : TPM_ALG.ECDSA;
    if (ak.pub.scheme !== TPM_ALG.NULL && (ak.pub.scheme !== sigAlgId || ak.pub.schemeHash !== sig.hash)) {
      throw reject('TPM_AK_SCHEME_MISMATCH', `the signature uses ${sig.sigAlg}/${tpmAlgName(sig.hash)} but the AK's scheme is ${tpmAlgName(ak.pub.scheme)}/${tpmAlgName(ak.pub.schemeHash ?? 0)}`, { sigAlg: sig.sigAlg, hash: sig.hash, scheme: ak.pub.scheme, schemeHash: ak.pub.schemeHash });
    }
  } else if (!input.allowAkWithoutAttributes) {
    throw reject('TPM_AK_ATTRIBUTES_UNKNOWN', 'the AK was given as a bare public key, so it cannot be checked to be a restricted signing key; pass it as TPMT_PUBLIC or set allowAkWithoutAttributes when another source vouches for it', {});
  }

  if (!verifyTpmSignature(ak.key, input.quote, sig)) {
    throw reject('TPM_BAD_SIGNATURE', `the quote signature (${sig.sigAlg}, ${TPM_HASH[sig.hash]!.name}) does not verify with the AK (SPKI sha256 ${spkiSha256(ak.key)})`, { sigAlg: sig.sigAlg, hash: TPM_HASH[sig.hash]!.name, akSpkiSha256: spkiSha256(ak.key) });
  }

  if (input.expectedExtraData !== undefined && !equalBytes(attest.extraData, input.expectedExtraData)) {
    throw reject('TPM_QUOTE_EXTRA_DATA_MISMATCH', `quote extraData ${toHex(attest.extraData)} is not the expected ${toHex(input.expectedExtraData)}`, { extraData: toHex(attest.extraData), expected: toHex(input.expectedExtraData) });
  }

  let used: PcrValues | undefined;
  if (input.pcrs !== undefined) {
    const composite = pcrCompositeDigest(attest.pcrSelect, input.pcrs, sig.hash);
    if (!equalBytes(composite.digest, attest.pcrDigest)) {
      throw reject('TPM_QUOTE_PCR_DIGEST_MISMATCH', `quote pcrDigest ${toHex(attest.pcrDigest)} is not the ${TPM_HASH[sig.hash]!.name} of the supplied PCR values (${toHex(composite.digest)})`, { pcrDigest: toHex(attest.pcrDigest), computed: toHex(composite.digest) });
    }
    used = composite.used;
  }

  const keyType = ak.key.asymmetricKeyType === 'ec' ? 'ec' : 'rsa';
  return {
    qualifiedSigner: toHex(attest.qualifiedSigner),
    extraData: toHex(attest.extraData),
    clockInfo: attest.clockInfo,
    firmwareVersion: attest.firmwareVersion,
    pcrSelect: attest.pcrSelect,
    pcrDigest: toHex(attest.pcrDigest),
    ...(used ? { pcrs: used } : {}),
    pcrsVerified: used !== undefined,
    extraDataVerified: input.expectedExtraData !== undefined,
    signature: { sigAlg: sig.sigAlg, hash: TPM_HASH[sig.hash]!.name },
    ak: {
      keyType,
      spkiSha256: spkiSha256(ak.key),
      ...(ak.pub ? { name: toHex(tpmName(ak.pub)), objectAttributes: ak.pub.objectAttributes } : {}),
      attributesChecked: ak.pub !== undefined,
    },
  };
}
