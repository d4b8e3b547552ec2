import { afterAll, describe, expect, it } from 'vitest';
import { newKeyPair } from '@joinguard/core';
import { createPublicKey, sign } from 'node:crypto';
import { readVector, codeOf } from '@joinguard/core/testing';
import {
  decodeReport,
  p384Backend,
  p384Backends,
  p384FallbackReason,
  parseAmdCert,
  REPORT_SIZE,
  reportSignatureP1363,
  SnpErrorCode,
  useP384Backend,
  verifyReport,
  type P384Backend,
} from '../src/index.js';

// The P-384 order n, big-endian.
const N = Buffer.from('ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973', 'hex');

const backends = p384Backends();
const byName = (name: string): P384Backend => {
  const b = backends.find((x) => x.name === name);
  if (!b) throw new Error(`backend ${name} is not available here: install libhogweed6 and libgmp10`);
  return b;
};
const initial = p384Backend().name;
afterAll(() => {
  useP384Backend(initial);
});

/** A real report's signature as P1363. */
function p1363Of(report: Uint8Array): Buffer {
  const r = decodeReport(report);
  return reportSignatureP1363(r.signatureR, r.signatureS)!;
}

describe('ECDSA P-384 backends', () => {
  it('both are available on this machine (the install script brings Nettle), and auto picks Nettle', () => {
    expect(backends.map((b) => b.name)).toEqual(['openssl', 'nettle']);
    expect(useP384Backend('auto').name).toBe('nettle');
    expect(p384FallbackReason()).toBeUndefined();
    expect(byName('nettle').library).toMatch(/^nettle \d+\.\d+$/);
  });

  it('agree with node:crypto on random keys, messages and signatures, valid and altered', () => {
    const nettle = byName('nettle');
    const openssl = byName('openssl');
    let valid = 0;
    let refused = 0;
    for (let k = 0; k < 12; k++) {
      const { publicKey, privateKey } = newKeyPair({ type: 'ec', namedCurve: 'P-384' });
      for (let m = 0; m < 8; m++) {
        const data = Buffer.from(Array.from({ length: 1 + ((k * 131 + m * 977) % 1200) }, (_, i) => (i * 7 + k + m) & 0xff));
        const sig = sign('sha384', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
        const variants: Array<[Buffer, Buffer]> = [[data, sig]];
        for (const at of [0, 47, 48, 95, k * 7 + m]) {
          const s = Buffer.from(sig);
          s[at % 96]! ^= 1 << (m % 8);
          variants.push([data, s]);
        }
        const d = Buffer.from(data);
        d[(k + m) % d.length]! ^= 0x80;
        variants.push([d, sig]);
        for (const [msg, s] of variants) {
          const expected = openssl.verify(publicKey, msg, s);
          expect(nettle.verify(publicKey, msg, s)).toBe(expected);
          if (expected) valid++;
          else refused++;
        }
      }
    }
    expect(valid).toBe(12 * 8);
    expect(refused).toBe(12 * 8 * 6);
  });

  it('refuse r or s of 0, n, n+1 or 2^384-1, and a wrong length, as node:crypto does', () => {
    const { publicKey, privateKey } = newKeyPair({ type: 'ec', namedCurve: 'P-384' });
    const data = Buffer.from('edge cases');
    const sig = sign('sha384', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
    const nPlus1 = Buffer.from(N);
    nPlus1[47]! += 1;
    const edges = [Buffer.alloc(48), N, nPlus1, Buffer.alloc(48, 0xff)];
    for (const b of backends) {
      for (const e of edges) {
        expect(b.verify(publicKey, data, Buffer.concat([e, sig.subarray(48)])), `${b.name} r=${e.toString('hex').slice(0, 8)}`).toBe(false);
        expect(b.verify(publicKey, data, Buffer.concat([sig.subarray(0, 48), e])), `${b.name} s=${e.toString('hex').slice(0, 8)}`).toBe(false);
      }
      expect(b.verify(publicKey, data, sig.subarray(0, 95))).toBe(false);
      expect(b.verify(publicKey, data, Buffer.concat([sig, Buffer.alloc(1)]))).toBe(false);
      expect(b.verify(publicKey, data, sig)).toBe(true);
    }
  });

  it('refuse a signature under another curve’s key, or a P-256 key, without throwing', () => {
    const p256 = newKeyPair({ type: 'ec', namedCurve: 'P-256' });
    const p384 = newKeyPair({ type: 'ec', namedCurve: 'P-384' });
    const data = Buffer.from('other key');
    const sig = sign('sha384', data, { key: p384.privateKey, dsaEncoding: 'ieee-p1363' });
    for (const b of backends) {
      expect(b.verify(p256.publicKey, data, sig), b.name).toBe(false);
      expect(b.verify(newKeyPair({ type: 'ec', namedCurve: 'P-384' }).publicKey, data, sig), b.name).toBe(false);
    }
  });

  it('accept the real reports of the vectors and refuse their derived bit-flips, with each backend', () => {
    const cases = [
      { report: 'snp/gosevguest_milan_v2/report.bin', vcek: 'snp/gosevguest_milan_v2/vcek.der' },
      { report: 'snp/virtee_milan_v2/report.bin', vcek: 'snp/virtee_milan_v2/vcek.der' },
      { report: 'snp/trustee_e2e_genoa_v3/report.reconstructed.bin', vcek: 'snp/trustee_e2e_genoa_v3/vcek.der' },
    ];
    for (const b of backends) {
      for (const c of cases) {
        const report = readVector(c.report);
        const key = parseAmdCert(readVector(c.vcek), 'VCEK').publicKey;
        expect(b.verify(key, report.subarray(0, 0x2a0), p1363Of(report)), `${b.name} ${c.report}`).toBe(true);
      }
      const key = parseAmdCert(readVector('snp/gosevguest_milan_v2/vcek.der'), 'VCEK').publicKey;
      for (const flipped of ['snp/derived/gosevguest_milan_v2_reportdata_bitflip.bin', 'snp/derived/gosevguest_milan_v2_sig_r_bitflip.bin']) {
        const report = readVector(flipped);
        expect(b.verify(key, report.subarray(0, 0x2a0), p1363Of(report)), `${b.name} ${flipped}`).toBe(false);
      }
    }
  });

  it('verifyReport gives the same result and error code with either backend', () => {
    const vcek = readVector('snp/gosevguest_milan_v2/vcek.der');
    const now = new Date('2026-11-23T00:00:00Z');
    for (const name of ['openssl', 'nettle'] as const) {
      expect(useP384Backend(name).name).toBe(name);
      const ok = verifyReport(readVector('snp/gosevguest_milan_v2/report.bin'), { vcek }, { now, product: 'milan' });
      expect(ok.product).toBe('milan');
      const flipped = readVector('snp/derived/gosevguest_milan_v2_sig_r_bitflip.bin');
      expect(flipped.length).toBe(REPORT_SIZE);
      expect(codeOf(() => verifyReport(flipped, { vcek }, { now, product: 'milan' })), name).toBe(SnpErrorCode.BAD_SIGNATURE);
    }
  });

  it('nettle forced where it cannot load is a typed start-up error; auto falls back to node:crypto and says why', () => {
    const absent = { hogweed: 'libjoinguard-absent-hogweed.so.6', gmp: 'libgmp.so.10' };
    expect(codeOf(() => useP384Backend('nettle', absent))).toBe(SnpErrorCode.CRYPTO_UNAVAILABLE);
    expect(useP384Backend('auto', absent).name).toBe('openssl');
    expect(p384FallbackReason()).toMatch(/libjoinguard-absent-hogweed/);
    // The fallback still verifies.
    const report = readVector('snp/gosevguest_milan_v2/report.bin');
    const key = parseAmdCert(readVector('snp/gosevguest_milan_v2/vcek.der'), 'VCEK').publicKey;
    expect(p384Backend().verify(key, report.subarray(0, 0x2a0), p1363Of(report))).toBe(true);
    expect(useP384Backend('openssl').name).toBe('openssl');
    expect(p384FallbackReason()).toBeUndefined();
  });

  it('a key given as JWK or as a certificate’s key verifies alike (coordinates are read once per KeyObject)', () => {
    const { publicKey, privateKey } = newKeyPair({ type: 'ec', namedCurve: 'P-384' });
    const copy = createPublicKey({ key: publicKey.export({ format: 'jwk' }), format: 'jwk' });
    const data = Buffer.from('same key twice');
    const sig = sign('sha384', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
    const nettle = byName('nettle');
    for (let i = 0; i < 3; i++) {
      expect(nettle.verify(publicKey, data, sig)).toBe(true);
      expect(nettle.verify(copy, data, sig)).toBe(true);
    }
  });
});
