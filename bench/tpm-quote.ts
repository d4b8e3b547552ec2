// TPM quote verifications per second on one core: decode TPMS_ATTEST + TPMT_SIGNATURE, AK import, signature,
// extraData and pcrDigest (24 SHA-256 PCRs), for the real RSA quotes and synthetic ECDSA ones.
// Usage: npx tsx bench/tpm-quote.ts [seconds-per-round]
import { createHash, createPublicKey, sign, verify as cryptoVerify, type JsonWebKey } from 'node:crypto';
import { newKeyPair } from '@joinguard/core';
import { readVector, readVectorText } from '@joinguard/core/testing';
import { decodeAttest, resolveAk, verifyQuote, type VerifyQuoteInput } from '@joinguard/tpm';

const seconds = Number(process.argv[2] ?? 1.5);

function rate(fn: () => void): number {
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  let n = 0;
  while (performance.now() < end) {
    fn();
    n++;
  }
  return n / ((performance.now() - t0) / 1000);
}
const line = (label: string, r: number): void => console.log(`${label.padEnd(64)} ${r.toFixed(0).padStart(8)} /s`);

// trustee: RSA-2048 RSASSA SHA-256, AK as SPKI DER.
const t = JSON.parse(readVectorText('tpm/trustee_tpm_evidence/tpm_evidence.json')) as { ak_public: string; tpm_quote: { message: string; signature: string; pcrs: string[] } };
const trustee: VerifyQuoteInput = {
  quote: Buffer.from(t.tpm_quote.message, 'base64'),
  signature: Buffer.from(t.tpm_quote.signature, 'base64'),
  akPublic: Buffer.from(t.ak_public, 'base64'),
  pcrs: { sha256: Object.fromEntries(t.tpm_quote.pcrs.map((v, i) => [i, v])) },
  expectedExtraData: decodeAttest(Buffer.from(t.tpm_quote.message, 'base64')).extraData,
  allowAkWithoutAttributes: true,
};

// Azure: raw RSASSA signature, AK = HCLAkPub JWK.
const hcl = Buffer.from(readVector('azure/az_snp_vtpm_milan_v2/hcl-report.bin'));
const at = 0x20 + 1184;
const jwk = (JSON.parse(hcl.subarray(at + 20, at + 20 + hcl.readUInt32LE(at + 16)).toString('utf8')) as { keys: (JsonWebKey & { kid: string })[] }).keys.find((k) => k.kid === 'HCLAkPub')!;
const az = JSON.parse(readVectorText('azure/az_snp_vtpm_milan_v2/tpm-quote-v1.json')) as { message: string; signature: string; pcrs: string[] };
const azure: VerifyQuoteInput = {
  quote: Buffer.from(az.message, 'hex'),
  signature: { sigAlg: 'rsassa', hash: 0x000b, signature: Buffer.from(az.signature, 'hex') },
  akPublic: createPublicKey({ key: jwk, format: 'jwk' }),
  pcrs: { sha256: Object.fromEntries(az.pcrs.map((v, i) => [i, v])) },
  expectedExtraData: Buffer.from('challenge'),
  allowAkWithoutAttributes: true,
};

// Synthetic ECDSA quotes with the AK as TPMT_PUBLIC (restricted signing, scheme ECDSA).
const u16 = (v: number) => Buffer.from([v >> 8, v & 0xff]);
const u32 = (v: number) => Buffer.from([v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]);
const b2 = (b: Uint8Array) => Buffer.concat([u16(b.length), Buffer.from(b)]);
function ecdsa(curve: 'P-256' | 'P-384'): VerifyQuoteInput {
  const [hashId, hashName, curveId, size] = curve === 'P-256' ? [0x0b, 'sha256', 0x03, 32] : [0x0c, 'sha384', 0x04, 48];
  const { publicKey, privateKey } = newKeyPair({ type: 'ec', namedCurve: curve });
  const k = publicKey.export({ format: 'jwk' });
  const attrs = (1 << 1) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 16) | (1 << 18);
  const pub = Buffer.concat([u16(0x23), u16(hashId), u32(attrs), b2(new Uint8Array()), u16(0x10), u16(0x18), u16(hashId), u16(curveId), u16(0x10), b2(Buffer.from(k.x!, 'base64url')), b2(Buffer.from(k.y!, 'base64url'))]);
  const pcrs = Object.fromEntries(Array.from({ length: 24 }, (_, i) => [i, '00'.repeat(32)]));
  const digest = createHash(hashName).update(Buffer.alloc(24 * 32)).digest();
  const quote = Buffer.concat([u32(0xff544347), u16(0x8018), b2(Buffer.alloc(34)), b2(Buffer.alloc(32, 7)), Buffer.alloc(8), u32(1), u32(0), Buffer.from([1]), Buffer.alloc(8), u32(1), u16(0x0b), Buffer.from([3, 0xff, 0xff, 0xff]), b2(digest)]);
  const raw = sign(hashName, quote, { key: privateKey, dsaEncoding: 'ieee-p1363' });
  const signature = Buffer.concat([u16(0x18), u16(hashId), b2(raw.subarray(0, size)), b2(raw.subarray(size))]);
  return { quote, signature, akPublic: pub, pcrs: { sha256: pcrs }, expectedExtraData: Buffer.alloc(32, 7) };
}
const p256 = ecdsa('P-256');
const p384 = ecdsa('P-384');

console.log(`node ${process.version}; ${seconds}s per round; every verification checks signature, extraData and a 24-PCR pcrDigest`);
line('verifyQuote trustee RSA-2048 RSASSA/SHA-256 (AK SPKI DER)', rate(() => verifyQuote(trustee)));
line('verifyQuote Azure RSA-2048 RSASSA/SHA-256 (AK KeyObject from JWK)', rate(() => verifyQuote(azure)));
line('verifyQuote ECDSA P-256/SHA-256 (AK TPMT_PUBLIC)', rate(() => verifyQuote(p256)));
line('verifyQuote ECDSA P-384/SHA-384 (AK TPMT_PUBLIC)', rate(() => verifyQuote(p384)));
line('decodeAttest alone', rate(() => decodeAttest(trustee.quote)));
// Baseline: the bare RSA signature check with a pre-imported key (what verifyQuote cannot beat).
const key = resolveAk(trustee.akPublic).key;
const sig = (trustee.signature as Uint8Array).subarray(6);
line('baseline: node crypto.verify RSA-2048 alone', rate(() => cryptoVerify('sha256', trustee.quote, key, sig)));
