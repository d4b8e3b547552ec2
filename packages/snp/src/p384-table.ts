import { bigIntToBe } from '@joinguard/core';

/**
 * Fixed-base tables for P-384 public keys, in the layout GNU Nettle uses for its generator table.
 *
 * Nettle multiplies a scalar by the generator with Pippenger's method over a precomputed table (k = 32,
 * c = 6 for secp384r1), about three times as fast as its multiplication of an arbitrary point. An ECDSA
 * verification needs one of each, u1·G + u2·Q. A verifier sees the same few keys (the VCEKs of its hosts)
 * for every report, so a table for Q, built once, makes the second product as cheap as the first (see
 * p384.ts for how it is handed to Nettle).
 *
 * The table is computed here with BigInt arithmetic. It is built once per key and is checked before use:
 * the same code must reproduce Nettle's own generator table byte for byte (p384.ts does this at load), and
 * every entry of a key's table must lie on the curve.
 */

/** The field prime, group order and curve constant b of secp384r1 (SEC 2, FIPS 186-4 D.1.2.4); a = -3. */
export const P384: { readonly p: bigint; readonly n: bigint; readonly b: bigint; readonly gx: bigint; readonly gy: bigint } = {
  p: 2n ** 384n - 2n ** 128n - 2n ** 96n + 2n ** 32n - 1n,
  n: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
  b: 0xb3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aefn,
  gx: 0xaa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7n,
  gy: 0x3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5fn,
};

const { p } = P384;

/** x mod p in [0, p). */
export function modP(x: bigint): bigint {
  const r = x % p;
  return r < 0n ? r + p : r;
}

/** Inverse mod p by the extended Euclidean algorithm (used once per table, not per verification). */
function invP(a: bigint): bigint {
  let r0 = modP(a);
  let r1 = p;
  let s0 = 1n;
  let s1 = 0n;
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  if (r0 !== 1n) throw new Error('not invertible mod p');
  return modP(s0);
}

/** Jacobian coordinates (X/Z², Y/Z³); Z = 0 is the point at infinity. */
type Jacobian = readonly [bigint, bigint, bigint];
const INFINITY: Jacobian = [0n, 1n, 0n];

/** 2P for a = -3 ("dbl-2001-b" of the Explicit-Formulas Database). */
function double([x, y, z]: Jacobian): Jacobian {
  if (z === 0n || y === 0n) return INFINITY;
  const delta = modP(z * z);
  const gamma = modP(y * y);
  const beta = modP(x * gamma);
  const alpha = modP(3n * (x - delta) * (x + delta));
  const x3 = modP(alpha * alpha - 8n * beta);
  const z3 = modP((y + z) * (y + z) - gamma - delta);
  const y3 = modP(alpha * (4n * beta - x3) - 8n * gamma * gamma);
  return [x3, y3, z3];
}

/** P + Q ("add-2007-bl"), with the equal and opposite cases handled. */
function add(a: Jacobian, b: Jacobian): Jacobian {
  const [x1, y1, z1] = a;
  const [x2, y2, z2] = b;
  if (z1 === 0n) return b;
  if (z2 === 0n) return a;
  const z1z1 = modP(z1 * z1);
  const z2z2 = modP(z2 * z2);
  const u1 = modP(x1 * z2z2);
  const u2 = modP(x2 * z1z1);
  const s1 = modP(y1 * z2 * z2z2);
  const s2 = modP(y2 * z1 * z1z1);
  if (u1 === u2) return s1 === s2 ? double(a) : INFINITY;
  const h = modP(u2 - u1);
  const i = modP(4n * h * h);
  const j = modP(h * i);
  const r = modP(2n * (s2 - s1));
  const v = modP(u1 * i);
  const x3 = modP(r * r - j - 2n * v);
  const y3 = modP(r * (v - x3) - 2n * s1 * j);
  const z3 = modP(((z1 + z2) * (z1 + z2) - z1z1 - z2z2) * h);
  return [x3, y3, z3];
}

/** Affine coordinates of every point with one inversion (Montgomery's trick); infinity becomes (0, 0). */
function affine(points: readonly Jacobian[]): [bigint, bigint][] {
  const prefix: bigint[] = [];
  let acc = 1n;
  for (const [, , z] of points) {
    prefix.push(acc);
    if (z !== 0n) acc = modP(acc * z);
  }
  let inv = invP(acc);
  const out: [bigint, bigint][] = new Array(points.length);
  for (let i = points.length - 1; i >= 0; i--) {
    const [x, y, z] = points[i]!;
    if (z === 0n) {
      out[i] = [0n, 0n];
      continue;
    }
    const zi = modP(inv * prefix[i]!);
    inv = modP(inv * z);
    const zi2 = modP(zi * zi);
    out[i] = [modP(x * zi2), modP(y * zi2 * zi)];
  }
  return out;
}

export function onCurve(x: bigint, y: bigint): boolean {
  return x >= 0n && x < p && y >= 0n && y < p && modP(y * y - (x * x * x - 3n * x + P384.b)) === 0n;
}

/** Bytes of one table entry: x then y, 48 bytes each. */
export const ENTRY_BYTES = 96;

/**
 * The table Nettle's ecc_mul_g reads for the point (x, y), for Pippenger parameters k and c: blocks of 2^c
 * entries, entry i of block m being the sum, over the bits b set in i, of 2^(k·(c·m + b))·(x, y), in affine
 * coordinates (entry 0 of a block, the empty sum, is all zeros). As many blocks as c-bit groups of the
 * ceil(384 / k) rows of the scalar.
 */
export function pippengerTable(x: bigint, y: bigint, k: number, c: number): Buffer {
  if (!onCurve(x, y)) throw new Error('the point is not on P-384');
  const blocks = Math.ceil(Math.ceil(384 / k) / c);
  // bases[t] = 2^(k·t)·(x, y)
  const bases: Jacobian[] = [[x, y, 1n]];
  for (let t = 1; t < blocks * c; t++) {
    let q = bases[t - 1]!;
    for (let i = 0; i < k; i++) q = double(q);
    bases.push(q);
  }
  const entries: Jacobian[] = [];
  for (let m = 0; m < blocks; m++) {
    const block: Jacobian[] = [INFINITY];
    for (let bit = 0; bit < c; bit++) {
      const j = 1 << bit;
      const base = bases[m * c + bit]!;
      block[j] = base;
      for (let i = 1; i < j; i++) block[j + i] = add(base, block[i]!);
    }
    entries.push(...block);
  }
  const points = affine(entries);
  const out = Buffer.alloc(points.length * ENTRY_BYTES);
  points.forEach(([px, py], e) => {
    if (e % (1 << c) !== 0 && !onCurve(px, py)) throw new Error(`table entry ${e} is not on P-384`);
    // Six 64-bit limbs of a little-endian machine, lowest first: the 48 bytes least significant first.
    out.set(bigIntToBe(px, 48).reverse(), e * ENTRY_BYTES);
    out.set(bigIntToBe(py, 48).reverse(), e * ENTRY_BYTES + 48);
  });
  return out;
}
