import { createPublicKey, createHash, verify as cryptoVerify, constants, type KeyObject } from 'node:crypto';
import { pemDecode, reject, wrapError, toHex } from '@joinguard/core';
import { SnpErrorCode } from './errors.js';
import { children, derUint, oidToString, readTlv, TAG, type Tlv } from './der.js';

const OID_RSASSA_PSS = '1.2.840.113549.1.1.10';
const OID_SHA384 = '2.16.840.1.101.3.4.2.2';
const OID_MGF1 = '1.2.840.113549.1.1.8';
const PSS_SALT_LENGTH = 48;

/** AMD's VCEK/VLEK extensions (AMD "Versioned Chip Endorsement Key" specification 57230). */
export const AMD_OID = {
  STRUCT_VERSION: '1.3.6.1.4.1.3704.1.1',
  PRODUCT_NAME: '1.3.6.1.4.1.3704.1.2',
  BL_SPL: '1.3.6.1.4.1.3704.1.3.1',
  TEE_SPL: '1.3.6.1.4.1.3704.1.3.2',
  SNP_SPL: '1.3.6.1.4.1.3704.1.3.3',
  SPL_4: '1.3.6.1.4.1.3704.1.3.4',
  SPL_5: '1.3.6.1.4.1.3704.1.3.5',
  SPL_6: '1.3.6.1.4.1.3704.1.3.6',
  SPL_7: '1.3.6.1.4.1.3704.1.3.7',
  UCODE_SPL: '1.3.6.1.4.1.3704.1.3.8',
  FMC_SPL: '1.3.6.1.4.1.3704.1.3.9',
  HW_ID: '1.3.6.1.4.1.3704.1.4',
  CSP_ID: '1.3.6.1.4.1.3704.1.5',
} as const;

export interface AmdExtensions {
  structVersion?: number;
  productName?: string;
  blSpl?: number;
  teeSpl?: number;
  snpSpl?: number;
  ucodeSpl?: number;
  fmcSpl?: number;
  hwId?: Uint8Array;
  cspId?: string;
}

/** A parsed certificate with what chain verification needs, computed once. */
export interface AmdCert {
  der: Uint8Array;
  sha256: string;
  subject: string;
  issuer: string;
  /** Raw DER of the subject and issuer Names, compared byte for byte. */
  subjectDer: Uint8Array;
  issuerDer: Uint8Array;
  commonName: string | undefined;
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  tbs: Uint8Array;
  signatureAlgorithm: Uint8Array;
  signature: Uint8Array;
  publicKey: KeyObject;
  extensions: AmdExtensions;
}

function certFail(what: string, why: string, extra: Record<string, unknown> = {}) {
  return reject(SnpErrorCode.CERT_MALFORMED, `${what} is not a valid X.509 certificate: ${why}`, { certificate: what, ...extra });
}

/** Splits PEM text into DER blocks of the given label; returns [] when the text holds none; refuses a block that is not base64. */
export function pemBlocks(text: string, label = 'CERTIFICATE'): Uint8Array[] {
  return pemDecode(text, label, { code: SnpErrorCode.CERT_MALFORMED, what: 'PEM text' });
}

/** Certificates given as one DER certificate or as PEM text with one or more blocks. */
export function certificatesFromBytes(data: Uint8Array, what: string): Uint8Array[] {
  if (data.length > 0 && data[0] === 0x30) return [data];
  const text = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('latin1');
  const blocks = pemBlocks(text);
  if (blocks.length === 0) throw certFail(what, 'neither DER nor PEM');
  return blocks;
}

function nameCommonName(nameDer: Uint8Array): string | undefined {
  // Name ::= SEQUENCE OF SET OF AttributeTypeAndValue; CN is 2.5.4.3.
  const code = SnpErrorCode.CERT_MALFORMED;
  const name = readTlv(nameDer, 0, code, 'Name');
  for (const rdn of children(name, code, 'Name')) {
    for (const atv of children(rdn, code, 'Name')) {
      const [type, value] = children(atv, code, 'Name');
      if (type && value && type.tag === TAG.OID && oidToString(type.value) === '2.5.4.3') return Buffer.from(value.value).toString('utf8');
    }
  }
  return undefined;
}

/**
 * The outer structure of a Certificate or CertificateList: the to-be-signed bytes, the signature
 * algorithm and the signature bits.
 */
export function splitSigned(der: Uint8Array, code: string, what: string): { tbs: Tlv; sigAlg: Tlv; signature: Uint8Array } {
  const outer = readTlv(der, 0, code, what);
  if (outer.tag !== TAG.SEQUENCE || outer.raw.length !== der.length) throw reject(code, `${what}: not a single DER SEQUENCE`, {});
  const parts = children(outer, code, what);
  if (parts.length !== 3 || parts[0]!.tag !== TAG.SEQUENCE || parts[1]!.tag !== TAG.SEQUENCE || parts[2]!.tag !== TAG.BIT_STRING) {
    throw reject(code, `${what}: expected SEQUENCE { tbs, signatureAlgorithm, signatureValue }`, {});
  }
  const bits = parts[2]!.value;
  if (bits.length < 1 || bits[0] !== 0) throw reject(code, `${what}: signature BIT STRING has unused bits`, {});
  return { tbs: parts[0]!, sigAlg: parts[1]!, signature: bits.subarray(1) };
}

/**
 * AMD signs its ARK, ASK, ASVK, VCEK, VLEK and CRLs with RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48.
 * Anything else is refused rather than verified under some other algorithm.
 */
export function checkPssSha384(sigAlg: Tlv, what: string): void {
  const code = SnpErrorCode.CERT_BAD_SIGNATURE_ALGO;
  const bad = (why: string) => reject(code, `${what} is not signed with RSASSA-PSS/SHA-384 (salt 48): ${why}`, { what });
  const [oid, params] = children(sigAlg, code, what);
  if (!oid || oid.tag !== TAG.OID || oidToString(oid.value) !== OID_RSASSA_PSS) throw bad(`algorithm ${oid && oid.tag === TAG.OID ? oidToString(oid.value) : '?'}`);
  if (!params || params.tag !== TAG.SEQUENCE) throw bad('no RSASSA-PSS parameters');
  let hash: string | undefined;
  let mgfHash: string | undefined;
  let salt: number | undefined;
  let trailer = 1;
  for (const p of children(params, code, what)) {
    const inner = readTlv(p.value, 0, code, what);
    if (p.tag === 0xa0) {
      const [h] = children(inner, code, what);
      hash = h && h.tag === TAG.OID ? oidToString(h.value) : undefined;
    } else if (p.tag === 0xa1) {
      const [m, mp] = children(inner, code, what);
      if (m && m.tag === TAG.OID && oidToString(m.value) === OID_MGF1 && mp && mp.tag === TAG.SEQUENCE) {
        const [h] = children(mp, code, what);
        mgfHash = h && h.tag === TAG.OID ? oidToString(h.value) : undefined;
      }
    } else if (p.tag === 0xa2) {
      salt = inner.tag === TAG.INTEGER ? derUint(inner.value, code, what) : undefined;
    } else if (p.tag === 0xa3) {
      trailer = inner.tag === TAG.INTEGER ? derUint(inner.value, code, what) : -1;
    }
  }
  if (hash !== OID_SHA384) throw bad(`hash ${hash ?? 'SHA-1 (default)'}`);
  if (mgfHash !== OID_SHA384) throw bad(`MGF1 hash ${mgfHash ?? 'SHA-1 (default)'}`);
  if (salt !== PSS_SALT_LENGTH) throw bad(`salt length ${salt ?? 20}`);
  if (trailer !== 1) throw bad(`trailer field ${trailer}`);
}

/** Verifies an RSASSA-PSS/SHA-384 signature by `issuerKey` over `tbs`. */
export function verifyPss(issuerKey: KeyObject, tbs: Uint8Array, signature: Uint8Array): boolean {
  try {
    return cryptoVerify('sha384', tbs, { key: issuerKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: PSS_SALT_LENGTH }, signature);
  } catch {
    return false;
  }
}

interface RawExtension {
  type: string;
  value: Uint8Array;
}

function readAmdExtensions(exts: RawExtension[], what: string): AmdExtensions {
  const code = SnpErrorCode.EXTENSION_MALFORMED;
  const out: AmdExtensions = {};
  const intOf = (v: Uint8Array, name: string): number => {
    const t = readTlv(v, 0, code, `${what} ${name}`);
    if (t.tag !== TAG.INTEGER || t.raw.length !== v.length) throw reject(code, `${what}: extension ${name} is not an INTEGER`, { extension: name });
    return derUint(t.value, code, `${what} ${name}`);
  };
  const strOf = (v: Uint8Array, name: string): string => {
    const t = readTlv(v, 0, code, `${what} ${name}`);
    if (t.tag !== TAG.IA5_STRING && t.tag !== TAG.UTF8_STRING) throw reject(code, `${what}: extension ${name} is not a string`, { extension: name });
    return Buffer.from(t.value).toString('latin1');
  };
  for (const ext of exts) {
    const v = ext.value;
    switch (ext.type) {
      case AMD_OID.STRUCT_VERSION: out.structVersion = intOf(v, 'structVersion'); break;
      case AMD_OID.PRODUCT_NAME: out.productName = strOf(v, 'productName'); break;
      case AMD_OID.BL_SPL: out.blSpl = intOf(v, 'blSPL'); break;
      case AMD_OID.TEE_SPL: out.teeSpl = intOf(v, 'teeSPL'); break;
      case AMD_OID.SNP_SPL: out.snpSpl = intOf(v, 'snpSPL'); break;
      case AMD_OID.UCODE_SPL: out.ucodeSpl = intOf(v, 'ucodeSPL'); break;
      case AMD_OID.FMC_SPL: out.fmcSpl = intOf(v, 'fmcSPL'); break;
      case AMD_OID.HW_ID: {
        // AMD puts the raw 64-byte (Turin: 8-byte) id in extnValue; accept an OCTET STRING wrapper too.
        if (v.length === 64 || v.length === 8) out.hwId = v;
        else if (v.length === 66 && v[0] === TAG.OCTET_STRING && v[1] === 64) out.hwId = v.subarray(2);
        else if (v.length === 10 && v[0] === TAG.OCTET_STRING && v[1] === 8) out.hwId = v.subarray(2);
        else throw reject(code, `${what}: hwID extension of ${v.length} bytes (expected 64 or 8)`, { extension: 'hwID', length: v.length });
        break;
      }
      case AMD_OID.CSP_ID: out.cspId = strOf(v, 'cspId'); break;
      default: break;
    }
  }
  return out;
}

const NAME_ATTR: Record<string, string> = { '2.5.4.3': 'CN', '2.5.4.6': 'C', '2.5.4.7': 'L', '2.5.4.8': 'ST', '2.5.4.10': 'O', '2.5.4.11': 'OU' };

/** A Name as "OU=…, C=…, CN=…" for messages (comparisons use the DER bytes). */
function nameToString(nameDer: Uint8Array, code: string, what: string): string {
  const parts: string[] = [];
  for (const rdn of children(readTlv(nameDer, 0, code, what), code, what)) {
    for (const atv of children(rdn, code, what)) {
      const [type, value] = children(atv, code, what);
      if (!type || !value || type.tag !== TAG.OID) continue;
      const oid = oidToString(type.value);
      parts.push(`${NAME_ATTR[oid] ?? oid}=${Buffer.from(value.value).toString('utf8')}`);
    }
  }
  return parts.join(', ');
}

/** UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ), the only forms RFC 5280 allows. */
export function derTime(t: Tlv, code: string, what: string): Date {
  const s = Buffer.from(t.value).toString('latin1');
  let m: RegExpExecArray | null;
  let year: number;
  if (t.tag === 0x17 && (m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s))) {
    const yy = Number(m[1]);
    year = yy < 50 ? 2000 + yy : 1900 + yy;
  } else if (t.tag === 0x18 && (m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s))) {
    year = Number(m[1]);
  } else {
    throw reject(code, `${what}: time ${JSON.stringify(s)} is neither UTCTime nor GeneralizedTime in Z form`, {});
  }
  const d = new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
  if (Number.isNaN(d.getTime())) throw reject(code, `${what}: invalid time ${s}`, {});
  return d;
}

function serialHex(t: Tlv | undefined, code: string, what: string): string {
  if (!t || t.tag !== TAG.INTEGER || t.value.length === 0 || t.value.length > 32) throw reject(code, `${what}: bad serial number`, {});
  return toHex(t.value).replace(/^0+(?=.)/, '');
}

/** Parses one DER certificate with the bounded DER walker; anything malformed is SNP_CERT_MALFORMED. */
export function parseAmdCert(der: Uint8Array, what: string): AmdCert {
  const code = SnpErrorCode.CERT_MALFORMED;
  const { tbs, sigAlg, signature } = splitSigned(der, code, what);
  // TBSCertificate: [0] version, serial, signature, issuer, validity, subject, spki, [1], [2], [3] extensions
  const tbsParts = children(tbs, code, what);
  const off = tbsParts[0]?.tag === 0xa0 ? 1 : 0;
  const serial = tbsParts[off];
  const innerAlg = tbsParts[off + 1];
  const issuer = tbsParts[off + 2];
  const validity = tbsParts[off + 3];
  const subject = tbsParts[off + 4];
  const spki = tbsParts[off + 5];
  if (!issuer || !validity || !subject || !spki || issuer.tag !== TAG.SEQUENCE || subject.tag !== TAG.SEQUENCE || validity.tag !== TAG.SEQUENCE || spki.tag !== TAG.SEQUENCE) {
    throw certFail(what, 'TBSCertificate is incomplete');
  }
  if (!innerAlg || !equalBytesLocal(innerAlg.raw, sigAlg.raw)) throw certFail(what, 'the signature algorithm inside and outside the TBSCertificate differ');
  const [nb, na] = children(validity, code, what);
  if (!nb || !na) throw certFail(what, 'validity is incomplete');
  const exts: RawExtension[] = [];
  for (const p of tbsParts.slice(off + 6)) {
    if (p.tag !== 0xa3) continue;
    const seq = readTlv(p.value, 0, code, what);
    for (const e of children(seq, code, what)) {
      const f = children(e, code, what);
      const id = f[0];
      const val = f[f.length - 1];
      if (!id || id.tag !== TAG.OID || !val || val.tag !== TAG.OCTET_STRING) throw certFail(what, 'malformed extension');
      exts.push({ type: oidToString(id.value), value: val.value });
    }
  }
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: Buffer.from(spki.raw), format: 'der', type: 'spki' });
  } catch (e) {
    throw wrapError(code, `${what} has an unusable public key`, e, { certificate: what });
  }
  return {
    der,
    sha256: createHash('sha256').update(der).digest('hex'),
    subject: nameToString(subject.raw, code, what),
    issuer: nameToString(issuer.raw, code, what),
    subjectDer: subject.raw,
    issuerDer: issuer.raw,
    commonName: nameCommonName(subject.raw),
    serialNumber: serialHex(serial, code, what),
    notBefore: derTime(nb, code, what),
    notAfter: derTime(na, code, what),
    tbs: tbs.raw,
    signatureAlgorithm: sigAlg.raw,
    signature,
    publicKey,
    extensions: readAmdExtensions(exts, what),
  };
}

function equalBytesLocal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

export interface ParsedCrl {
  der: Uint8Array;
  sha256: string;
  issuerDer: Uint8Array;
  thisUpdate: Date;
  nextUpdate: Date | undefined;
  tbs: Uint8Array;
  signatureAlgorithm: Tlv;
  signature: Uint8Array;
  /** Serial numbers in lower-case hex without leading zeros. */
  revokedSerials: Set<string>;
}

export function parseCrl(der: Uint8Array): ParsedCrl {
  const code = SnpErrorCode.CRL_MALFORMED;
  const { tbs, sigAlg, signature } = splitSigned(der, code, 'CRL');
  // TBSCertList: version?, signature, issuer, thisUpdate, nextUpdate?, revokedCertificates?, [0] extensions?
  const parts = children(tbs, code, 'CRL');
  const off = parts[0]?.tag === TAG.INTEGER ? 1 : 0;
  const issuer = parts[off + 1];
  const thisUpdate = parts[off + 2];
  if (!issuer || issuer.tag !== TAG.SEQUENCE || !thisUpdate) throw reject(code, 'CRL: TBSCertList has no issuer or thisUpdate', {});
  let i = off + 3;
  let nextUpdate: Date | undefined;
  const maybeNext = parts[i];
  if (maybeNext && (maybeNext.tag === 0x17 || maybeNext.tag === 0x18)) {
    nextUpdate = derTime(maybeNext, code, 'CRL nextUpdate');
    i++;
  }
  const revokedSerials = new Set<string>();
  const revoked = parts[i];
  if (revoked && revoked.tag === TAG.SEQUENCE) {
    // A CRL may list many entries; walk them without the 64-element cap used for fixed structures.
    let o = 0;
    while (o < revoked.value.length) {
      const entry = readTlv(revoked.value, o, code, 'CRL entry');
      o += entry.raw.length;
      const serial = readTlv(entry.value, 0, code, 'CRL entry');
      revokedSerials.add(serialHex(serial, code, 'CRL entry'));
    }
  }
  return {
    der,
    sha256: createHash('sha256').update(der).digest('hex'),
    issuerDer: issuer.raw,
    thisUpdate: derTime(thisUpdate, code, 'CRL thisUpdate'),
    nextUpdate,
    tbs: tbs.raw,
    signatureAlgorithm: sigAlg,
    signature,
    revokedSerials,
  };
}

export function fingerprint256(der: Uint8Array): string {
  return toHex(createHash('sha256').update(der).digest());
}
