import { createHash, sign, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isJoinguardError, newKeyPair } from '@joinguard/core';
import { readVectorText, codeOf as code } from '@joinguard/core/testing';
import { decodeAttest, decodePublic, decodeSignature, tpmName, verifyQuote } from '@joinguard/tpm';

const u16 = (v: number): Buffer => Buffer.from([v >> 8, v & 0xff]);
const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
};
const tpm2b = (b: Uint8Array): Buffer => Buffer.concat([u16(b.length), Buffer.from(b)]);

/** A P-384 restricted signing key (ECDSA/SHA-384) as TPMT_PUBLIC, marshalled by hand from TPM 2.0 Part 2. */
function eccAk(attrs = (1 << 1) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 16) | (1 << 18)) {
  const { publicKey, privateKey } = newKeyPair({ type: 'ec', namedCurve: 'P-384' });
  const jwk = publicKey.export({ format: 'jwk' });
  const pub = Buffer.concat([
    u16(0x0023), u16(0x000c), u32(attrs), tpm2b(new Uint8Array()),
    u16(0x0010), u16(0x0018), u16(0x000c), u16(0x0004), u16(0x0010),
    tpm2b(Buffer.from(jwk.x!, 'base64url')), tpm2b(Buffer.from(jwk.y!, 'base64url')),
  ]);
  return { pub, privateKey };
}

function attest(extraData: Uint8Array, selection: { hash: number; bits: number[] }[], pcrDigest: Uint8Array): Buffer {
  return Buffer.concat([
    u32(0xff544347), u16(0x8018), tpm2b(Buffer.alloc(50, 1)), tpm2b(extraData),
    Buffer.from('00000000000003e8', 'hex'), u32(7), u32(2), Buffer.from([1]), Buffer.from('0001000200030004', 'hex'),
    u32(selection.length), ...selection.map((s) => Buffer.concat([u16(s.hash), Buffer.from([3]), Buffer.from(s.bits)])),
    tpm2b(pcrDigest),
  ]);
}

function ecdsaSig(privateKey: KeyObject, msg: Uint8Array): Buffer {
  const raw = sign('sha384', msg, { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return Buffer.concat([u16(0x0018), u16(0x000c), tpm2b(raw.subarray(0, 48)), tpm2b(raw.subarray(48))]);
}

describe('synthetic ECDSA P-384 quote over two banks', () => {
  const { pub, privateKey } = eccAk();
  const pcrs = { sha1: { 0: '11'.repeat(20), 7: '22'.repeat(20) }, sha256: { 1: '33'.repeat(32) } };
  // Selection order: the sha1 bank first (PCR 0, 7), then sha256 (PCR 1); the digest uses the signing hash.
  const digest = createHash('sha384').update(Buffer.from(pcrs.sha1[0] + pcrs.sha1[7] + pcrs.sha256[1], 'hex')).digest();
  const quote = attest(Buffer.from('nonce'), [{ hash: 0x0004, bits: [0x81, 0, 0] }, { hash: 0x000b, bits: [0x02, 0, 0] }], digest);
  const sig = ecdsaSig(privateKey, quote);

  it('decodes and verifies, exposing clockInfo and firmwareVersion', () => {
    const c = verifyQuote({ quote, signature: sig, akPublic: pub, expectedExtraData: Buffer.from('nonce'), pcrs });
    expect(c.clockInfo).toEqual({ clock: '1000', resetCount: 7, restartCount: 2, safe: true });
    expect(c.firmwareVersion).toBe('0001000200030004');
    expect(c.pcrSelect.map((s) => [s.bank, s.pcrs])).toEqual([['sha1', [0, 7]], ['sha256', [1]]]);
    expect(c.signature).toEqual({ sigAlg: 'ecdsa', hash: 'sha384' });
    expect(c.ak.name).toBe('000c' + createHash('sha384').update(pub).digest('hex'));
    expect(decodePublic(pub)).toMatchObject({ type: 'ecc', curve: 'nist_p384', schemeHash: 0x000c });
    expect(Buffer.from(tpmName(pub)).toString('hex')).toBe(c.ak.name);
  });
  it('the same values in another order do not match', () => {
    const swapped = { sha1: { 0: pcrs.sha1[7], 7: pcrs.sha1[0] }, sha256: pcrs.sha256 };
    expect(code(() => verifyQuote({ quote, signature: sig, akPublic: pub, pcrs: swapped }))).toBe('TPM_QUOTE_PCR_DIGEST_MISMATCH');
  });
  it('a signature with a hash other than the key scheme is refused', () => {
    const s = Buffer.from(sig);
    s.writeUInt16BE(0x000b, 2);
    expect(code(() => verifyQuote({ quote, signature: s, akPublic: pub }))).toBe('TPM_AK_SCHEME_MISMATCH');
  });
  it('a decrypting or unrestricted key is not an AK', () => {
    const withDecrypt = Buffer.from(pub);
    withDecrypt.writeUInt32BE(withDecrypt.readUInt32BE(4) | (1 << 17), 4);
    expect(code(() => verifyQuote({ quote, signature: sig, akPublic: withDecrypt }))).toBe('TPM_AK_NOT_RESTRICTED_SIGNING');
  });
  it('trailing bytes, wrong magic and a non-quote type are refused', () => {
    expect(code(() => decodeAttest(Buffer.concat([quote, Buffer.from([0])])))).toBe('TPM_TRAILING_BYTES');
    const m = Buffer.from(quote);
    m[0] = 0;
    expect(code(() => decodeAttest(m))).toBe('TPM_BAD_MAGIC');
    const t = Buffer.from(quote);
    t.writeUInt16BE(0x8017, 4);
    expect(code(() => decodeAttest(t))).toBe('TPM_NOT_A_QUOTE');
  });
});

describe('hostile structures give typed errors', () => {
  const { quote: trusteeQuote } = JSON.parse(readVectorText('tpm/trustee_tpm_evidence/tpm_evidence.json')).tpm_quote ? { quote: Buffer.from(JSON.parse(readVectorText('tpm/trustee_tpm_evidence/tpm_evidence.json')).tpm_quote.message, 'base64') } : { quote: Buffer.alloc(0) };
  it('every truncation of a real TPMS_ATTEST', () => {
    for (let n = 0; n < trusteeQuote.length; n++) expect(code(() => decodeAttest(trusteeQuote.subarray(0, n)))).toMatch(/^TPM_/);
  });
  it('huge declared sizes, zero-length digests, unknown algorithms', () => {
    const big = Buffer.from(trusteeQuote);
    big.writeUInt16BE(0xffff, 6); // qualifiedSigner.size
    expect(code(() => decodeAttest(big))).toBe('TPM_BAD_SIZE');
    const sel = Buffer.from(trusteeQuote);
    const selAt = 6 + 2 + 34 + 2 + 64 + 17 + 8;
    sel.writeUInt32BE(0xffffffff, selAt);
    expect(code(() => decodeAttest(sel))).toBe('TPM_BAD_PCR_SELECTION');
    const noDigest = Buffer.concat([trusteeQuote.subarray(0, trusteeQuote.length - 34), u16(0)]);
    expect(code(() => decodeAttest(noDigest))).toBe('TPM_BAD_ATTEST');
    expect(code(() => decodeSignature(Buffer.concat([u16(0x0014), u16(0x0099), tpm2b(Buffer.alloc(256))])))).toBe('TPM_UNSUPPORTED_HASH');
    expect(code(() => decodeSignature(Buffer.concat([u16(0x001c), u16(0x000b), tpm2b(Buffer.alloc(32))])))).toBe('TPM_UNSUPPORTED_SIGNATURE_ALG');
    expect(code(() => decodeSignature(Buffer.concat([u16(0x0014), u16(0x000b), u16(0)])))).toBe('TPM_BAD_SIGNATURE_FORMAT');
    expect(code(() => decodePublic(Buffer.concat([u16(0x0008), u16(0x000b), u32(0), u16(0)])))).toBe('TPM_UNSUPPORTED_KEY_TYPE');
    expect(code(() => decodePublic(Buffer.concat([u16(0x0023), u16(0x000b), u32(0), u16(0), u16(0x10), u16(0x10), u16(0x0099), u16(0x10), u16(0), u16(0)])))).toBe('TPM_UNSUPPORTED_CURVE');
    // An unknown nameAlg, an empty ECDSA r, a signature larger than any RSA key, a selection byte map longer
    // than a PC Client TPM has.
    expect(code(() => decodePublic(Buffer.concat([u16(0x0023), u16(0x0099), u32(0), u16(0)])))).toBe('TPM_UNSUPPORTED_HASH');
    expect(code(() => decodeSignature(Buffer.concat([u16(0x0018), u16(0x000b), u16(0), tpm2b(Buffer.alloc(32))])))).toBe('TPM_BAD_SIGNATURE_FORMAT');
    expect(code(() => decodeSignature(Buffer.concat([u16(0x0014), u16(0x000b), u16(0xffff), Buffer.alloc(64)])))).toBe('TPM_BAD_SIZE');
    const wideSel = Buffer.from(trusteeQuote);
    wideSel[selAt + 4 + 2] = 200; // sizeofSelect of the first selection
    expect(code(() => decodeAttest(wideSel))).toBe('TPM_BAD_PCR_SELECTION');
  });

  it('a quote over a bank no verifier can hash is decoded, and refused once its PCRs are checked', () => {
    const { pub, privateKey } = eccAk();
    const q = attest(Buffer.from('n'), [{ hash: 0x7777, bits: [1, 0, 0] }], createHash('sha384').update(Buffer.alloc(32)).digest());
    const s = ecdsaSig(privateKey, q);
    expect(decodeAttest(q).pcrSelect).toEqual([{ hash: 0x7777, bank: 'alg_0x7777', pcrs: [0] }]);
    expect(verifyQuote({ quote: q, signature: s, akPublic: pub }).pcrsVerified).toBe(false);
    expect(code(() => verifyQuote({ quote: q, signature: s, akPublic: pub, pcrs: { alg_0x7777: { 0: '00'.repeat(32) } } }))).toBe('TPM_UNSUPPORTED_HASH');
  });
});

describe('property-based (bounded)', () => {
  const { pub, privateKey } = eccAk();
  const quote = attest(Buffer.from('n'), [{ hash: 0x000b, bits: [1, 0, 0] }], createHash('sha384').update(Buffer.alloc(32)).digest());
  const sig = ecdsaSig(privateKey, quote);

  it('random bytes never escape as anything but a JoinguardError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 200 }), (q, s, p) => {
        for (const f of [() => decodeAttest(q), () => decodeSignature(s), () => decodePublic(p), () => verifyQuote({ quote: q, signature: s, akPublic: p })]) {
          try {
            f();
          } catch (e) {
            if (!isJoinguardError(e)) throw e;
          }
        }
      }),
      { numRuns: 400 },
    );
  });

  it('no change to a signed quote or its signature verifies; a changed AK fails or has another name', () => {
    expect(verifyQuote({ quote, signature: sig, akPublic: pub, pcrs: { sha256: { 0: '00'.repeat(32) } } }).pcrsVerified).toBe(true);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (which, pos, x) => {
        const parts = [Buffer.from(quote), Buffer.from(sig), Buffer.from(pub)];
        const t = parts[which]!;
        t[pos % t.length]! ^= x;
        let claims;
        try {
          claims = verifyQuote({ quote: parts[0]!, signature: parts[1]!, akPublic: parts[2]!, pcrs: { sha256: { 0: '00'.repeat(32) } } });
        } catch (e) {
          if (!isJoinguardError(e)) throw e;
        }
        // Attribute bits that do not make a key unfit (e.g. fixedTPM) change only the AK's name, which is
        // what binds the AK elsewhere; the same key material with another name is a different AK.
        if (claims) {
          expect(which).toBe(2);
          expect(claims.ak.name).not.toBe(Buffer.from(tpmName(pub)).toString('hex'));
        }
        try {
          verifyQuote({ quote: parts[0]!, signature: parts[1]!, akPublic: parts[2]! });
        } catch (e) {
          if (!isJoinguardError(e)) throw e;
        }
      }),
      { numRuns: 120 },
    );
  });
});
