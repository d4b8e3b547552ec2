import { afterAll, describe, expect, it } from 'vitest';
import { leToBigInt, newKeyPair } from '@joinguard/core';
import { createECDH, createHash, createPublicKey, sign } from 'node:crypto';
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
  NETTLE_LIBRARIES,
  type P384Backend,
} from '../src/index.js';
import { curveLayout } from '../src/p384.js';
import { ENTRY_BYTES, P384, pippengerTable } from '../src/p384-table.js';

// The P-384 order n, big-endian.
const N = Buffer.from('ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973', 'hex');

const backends = p384Backends();
const byName = (label: string): P384Backend => {
  const b = backends.find((x) => x.label === label);
  if (!b) throw new Error(`backend ${label} is not available here: install libhogweed6 and libgmp10`);
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
    expect(backends.map((b) => b.label)).toEqual(['openssl', 'nettle', 'nettle+tables']);
    expect(useP384Backend('auto').name).toBe('nettle');
    expect(p384FallbackReason()).toBeUndefined();
    expect(byName('nettle').library).toMatch(/^nettle \d+\.\d+$/);
  });

  it('agree with node:crypto on random keys, messages and signatures, valid and altered', () => {
    const openssl = byName('openssl');
    const tabled = byName('nettle+tables');
    const hits = tabled.keyTables!().hits;
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
          expect(byName('nettle').verify(publicKey, msg, s)).toBe(expected);
          expect(tabled.verify(publicKey, msg, s)).toBe(expected);
          if (expected) valid++;
          else refused++;
        }
      }
    }
    expect(valid).toBe(12 * 8);
    expect(refused).toBe(12 * 8 * 6);
    // Every one of them was answered with a key table (none out of range, none degenerate).
    expect(tabled.keyTables!().hits - hits).toBe(12 * 8 * 7);
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
        expect(b.verify(publicKey, data, Buffer.concat([e, sig.subarray(48)])), `${b.label} r=${e.toString('hex').slice(0, 8)}`).toBe(false);
        expect(b.verify(publicKey, data, Buffer.concat([sig.subarray(0, 48), e])), `${b.label} s=${e.toString('hex').slice(0, 8)}`).toBe(false);
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
      expect(b.verify(p256.publicKey, data, sig), b.label).toBe(false);
      expect(b.verify(newKeyPair({ type: 'ec', namedCurve: 'P-384' }).publicKey, data, sig), b.label).toBe(false);
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
        expect(b.verify(key, report.subarray(0, 0x2a0), p1363Of(report)), `${b.label} ${c.report}`).toBe(true);
      }
      const key = parseAmdCert(readVector('snp/gosevguest_milan_v2/vcek.der'), 'VCEK').publicKey;
      for (const flipped of ['snp/derived/gosevguest_milan_v2_reportdata_bitflip.bin', 'snp/derived/gosevguest_milan_v2_sig_r_bitflip.bin']) {
        const report = readVector(flipped);
        expect(b.verify(key, report.subarray(0, 0x2a0), p1363Of(report)), `${b.label} ${flipped}`).toBe(false);
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

describe('P-384 key tables (Nettle)', () => {
  const K = 32;
  const C = 6;
  const big = (b: Uint8Array): bigint => BigInt(`0x${Buffer.from(b).toString('hex') || '0'}`);
  const bytes48 = (v: bigint): Buffer => Buffer.from(v.toString(16).padStart(96, '0'), 'hex');
  /** The scalar entry e of a table stands for: the sum of 2^(k·(c·block + bit)) over the bits of e. */
  const scalarOf = (e: number): bigint => {
    const block = Math.floor(e / (1 << C));
    let s = 0n;
    for (let bit = 0; bit < C; bit++) if ((e >> bit) & 1) s += 2n ** BigInt(K * (C * block + bit));
    return s % P384.n;
  };

  it('every entry of the generator table is the multiple OpenSSL computes (node:crypto ECDH as the oracle)', () => {
    const table = pippengerTable(P384.gx, P384.gy, K, C);
    expect(table.length).toBe(128 * ENTRY_BYTES);
    for (let e = 0; e < 128; e++) {
      const x = table.subarray(e * ENTRY_BYTES, e * ENTRY_BYTES + 48);
      const y = table.subarray(e * ENTRY_BYTES + 48, (e + 1) * ENTRY_BYTES);
      if (e % 64 === 0) {
        expect(x.every((b) => b === 0) && y.every((b) => b === 0), `entry ${e} is the empty sum`).toBe(true);
        continue;
      }
      const ecdh = createECDH('secp384r1');
      ecdh.setPrivateKey(bytes48(scalarOf(e)));
      const pub = ecdh.getPublicKey();
      expect(leToBigInt(x), `x of entry ${e}`).toBe(big(pub.subarray(1, 49)));
      expect(leToBigInt(y), `y of entry ${e}`).toBe(big(pub.subarray(49, 97)));
    }
  });

  it('a table for another key holds that key’s multiples (the x of ECDH with the entry’s scalar)', () => {
    const { publicKey } = newKeyPair({ type: 'ec', namedCurve: 'P-384' });
    const jwk = publicKey.export({ format: 'jwk' });
    const qx = Buffer.from(jwk.x!, 'base64url');
    const qy = Buffer.from(jwk.y!, 'base64url');
    const table = pippengerTable(big(qx), big(qy), K, C);
    for (const e of [1, 2, 3, 33, 63, 65, 100, 127]) {
      const ecdh = createECDH('secp384r1');
      ecdh.setPrivateKey(bytes48(scalarOf(e)));
      const shared = ecdh.computeSecret(Buffer.concat([Buffer.from([4]), qx, qy]));
      expect(leToBigInt(table.subarray(e * ENTRY_BYTES, e * ENTRY_BYTES + 48)), `entry ${e}`).toBe(big(shared));
    }
    expect(() => pippengerTable(big(qx), big(qy) + 1n, K, C)).toThrow(/not on P-384/);
  });

  it('the default binding uses them: a key gets its table at its second verification, and later ones use it', () => {
    const nettle = useP384Backend('nettle');
    expect(nettle.label).toBe('nettle+tables');
    const { publicKey, privateKey } = newKeyPair({ type: 'ec', namedCurve: 'P-384' });
    const data = Buffer.from('a VCEK signs every report of its host');
    const sig = sign('sha384', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
    const before = nettle.keyTables!();
    expect(before.enabled).toBe(true);
    expect(nettle.verify(publicKey, data, sig)).toBe(true);
    expect(nettle.keyTables!().builds).toBe(before.builds);
    expect(nettle.verify(publicKey, data, sig)).toBe(true);
    expect(nettle.keyTables!().builds).toBe(before.builds + 1);
    for (let i = 0; i < 5; i++) expect(nettle.verify(publicKey, data, sig)).toBe(true);
    const bad = Buffer.from(sig);
    bad[90]! ^= 4;
    expect(nettle.verify(publicKey, data, bad)).toBe(false);
    const after = nettle.keyTables!();
    expect(after.hits - before.hits).toBe(7);
    expect(after.builds).toBe(before.builds + 1);
  });

  it('keep at most `max` tables, and build no more often than `buildEvery` verifications allow', () => {
    const [hogweed, gmp] = ['libhogweed.so.6', 'libgmp.so.10'];
    const keys = Array.from({ length: 3 }, () => newKeyPair({ type: 'ec', namedCurve: 'P-384' }));
    const data = Buffer.from('three hosts');
    const sigs = keys.map((k) => sign('sha384', data, { key: k.privateKey, dsaEncoding: 'ieee-p1363' }));
    const small = useP384Backend('nettle', { hogweed, gmp }, { after: 1, max: 2, buildEvery: 0 });
    for (let round = 0; round < 2; round++) keys.forEach((k, i) => expect(small.verify(k.publicKey, data, sigs[i]!)).toBe(true));
    // Three keys in turn through two tables: every verification rebuilt one.
    expect(small.keyTables!()).toMatchObject({ enabled: true, tables: 2, builds: 6, hits: 6 });

    const budget = useP384Backend('nettle', { hogweed, gmp }, { after: 1, buildEvery: 4 });
    // 40 keys, each seen once: a credit of 8 builds to start with, one more per 4 verifications after that.
    const data40 = Buffer.from('forty hosts');
    for (let i = 0; i < 40; i++) {
      const k = newKeyPair({ type: 'ec', namedCurve: 'P-384' });
      expect(budget.verify(k.publicKey, data40, sign('sha384', data40, { key: k.privateKey, dsaEncoding: 'ieee-p1363' }))).toBe(true);
      expect(budget.keyTables!().builds * 4, `after ${i + 1} verifications`).toBeLessThanOrEqual(32 + i + 1);
    }
    expect(budget.keyTables!().builds).toBe(17);
    useP384Backend('nettle');
  });

  it('can be turned off, and then every verification is Nettle’s own', () => {
    const off = useP384Backend('nettle', NETTLE_LIBRARIES, { enabled: false });
    expect(off.label).toBe('nettle');
    expect(off.keyTables!()).toEqual({ enabled: false, reason: 'disabled by configuration', tables: 0, builds: 0, hits: 0 });
    const { publicKey, privateKey } = newKeyPair({ type: 'ec', namedCurve: 'P-384' });
    const sig = sign('sha384', Buffer.from('x'), { key: privateKey, dsaEncoding: 'ieee-p1363' });
    for (let i = 0; i < 3; i++) expect(off.verify(publicKey, Buffer.from('x'), sig)).toBe(true);
    expect(off.keyTables!().hits).toBe(0);
    useP384Backend('nettle');
  });

  it('signatures that make u1·G and u2·Q equal or opposite are refused, as Nettle and OpenSSL refuse them', () => {
    const tabled = byName('nettle+tables');
    const { publicKey, privateKey } = newKeyPair({ type: 'ec', namedCurve: 'P-384' });
    const d = big(Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url'));
    const data = Buffer.from('degenerate');
    const e = big(createHash('sha384').update(data).digest()) % P384.n;
    const inv = (a: bigint): bigint => {
      let [r0, r1, s0, s1] = [a % P384.n, P384.n, 1n, 0n];
      while (r1 !== 0n) {
        const q = r0 / r1;
        [r0, r1, s0, s1] = [r1, r0 - q * r1, s1, s0 - q * s1];
      }
      return ((s0 % P384.n) + P384.n) % P384.n;
    };
    // u1·G = e·w·G and u2·Q = r·w·d·G: r = e/d makes them equal, r = -e/d opposite, whatever s is.
    const rEqual = (e * inv(d)) % P384.n;
    const rOpposite = (P384.n - rEqual) % P384.n;
    for (const r of [rEqual, rOpposite]) {
      for (const s of [1n, 2n, 12345n]) {
        const sig = Buffer.concat([bytes48(r), bytes48(s)]);
        expect(tabled.verify(publicKey, data, sig)).toBe(false);
        expect(byName('nettle').verify(publicKey, data, sig)).toBe(false);
        expect(byName('openssl').verify(publicKey, data, sig)).toBe(false);
      }
    }
  });

  it('recognise the layout of Nettle’s curve description, and refuse one they do not know', () => {
    const head = Buffer.alloc(304);
    expect(curveLayout(head)).toMatch(/no layout known/);
    // Nettle 3.8's: two 96-byte moduli of 384 bits in 6 limbs, then use_redc 0, k 32, c 6, then pointers.
    head.writeUInt16LE(384, 0);
    head.writeUInt16LE(6, 2);
    head.writeUInt16LE(384, 96);
    head.writeUInt16LE(6, 98);
    head.writeUInt16LE(32, 194);
    head.writeUInt16LE(6, 196);
    for (let o = 216; o <= 280; o += 8) head.writeBigUInt64LE(0x1000n + BigInt(o), o);
    expect(curveLayout(head)).toEqual({ modulo: 96, k: 32, c: 6, tableOffset: 280, size: 288 });
    head.writeUInt16LE(1, 192);
    expect(curveLayout(head)).toMatch(/no layout known/);
  });
});
