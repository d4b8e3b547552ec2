import { createHash, createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';
import { BoundedMap, JoinguardError, isAllZero, leToBigInt } from '@joinguard/core';
import { ENTRY_BYTES, P384, modP, onCurve, pippengerTable } from './p384-table.js';
import { SnpErrorCode } from './errors.js';
import type * as Koffi from 'koffi';

/**
 * ECDSA P-384/SHA-384 verification of report signatures, the single most expensive step of an appraisal.
 *
 * Two implementations give the same answers: node:crypto (OpenSSL 3.0 in Node 20, whose P-384 is its
 * generic prime-field code) and GNU Nettle's hogweed (the GnuTLS crypto library, with dedicated P-384
 * reduction code), called through koffi. On the machines we measured, Nettle verifies 1.6-2x as many
 * signatures per second as Node's OpenSSL. `auto` (the default) uses Nettle when libhogweed.so.6 loads and
 * node:crypto otherwise; `openssl` and `nettle` force one (`nettle` fails at start when it cannot load).
 * Both only verify: there is no secret here, so neither needs to be constant-time.
 */
export type P384BackendName = 'nettle' | 'openssl';
export type P384BackendChoice = P384BackendName | 'auto';
export const P384_BACKEND_CHOICES: readonly P384BackendChoice[] = ['auto', 'nettle', 'openssl'];

export interface P384Backend {
  readonly name: P384BackendName;
  /** The library and version, for logs and metrics, e.g. "nettle 3.8" or "OpenSSL 3.0.15+quic". */
  readonly library: string;
  /** The name, and "+tables" where per-key tables are used: "openssl", "nettle" or "nettle+tables". */
  readonly label: string;
  /** `signature` is r ‖ s, 48 bytes each, big-endian (IEEE P1363). */
  verify(key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean;
  /** Nettle only: its per-key tables (see P384KeyTables). */
  keyTables?(): P384KeyTableStats;
}

/**
 * Per-key tables of the Nettle backend. Nettle computes u1·G from a precomputed table of the generator, and
 * u2·Q (Q the public key) by its general method, which costs three times as much. A verifier checks every
 * report of a host with the same VCEK, so the backend builds a table for Q in the same layout (p384-table.ts)
 * and lets Nettle's own fixed-base code use it: a verification then costs two fixed-base products and half
 * of what Nettle's ecdsa_verify does.
 *
 * Nettle has no public interface for a table of another point, so the backend hands it a copy of its
 * secp384r1 curve description with the table pointer changed. That description is internal to Nettle: the
 * backend recognises its layout (Nettle 3.8, and 3.9 and later, differ), and uses tables only when its own
 * table of the generator is byte for byte the one Nettle carries. Otherwise, or when `enabled` is false,
 * every verification is Nettle's ecdsa_verify, as before.
 */
export interface P384KeyTables {
  enabled?: boolean;
  /** A key's table is built at its `after`-th verification (default 2: keys seen once cost no table). */
  after?: number;
  /** Tables kept, 12 KiB each, the least recently used dropped first (default 512). */
  max?: number;
  /**
   * Verifications per table build, on average (default 128): a build (3-6 ms) costs 10-25 plain ones, so more
   * keys in turn than `max` cost at most a fifth more than without tables, never a build per report.
   * 0: no limit.
   */
  buildEvery?: number;
}

export interface P384KeyTableStats {
  enabled: boolean;
  /** why tables are not used, when they are not */
  reason?: string;
  tables: number;
  builds: number;
  /** verifications that used a key's table */
  hits: number;
}

const openssl: P384Backend = {
  name: 'openssl',
  library: `OpenSSL ${process.versions.openssl}`,
  label: 'openssl',
  verify(key, data, signature) {
    try {
      return cryptoVerify('sha384', data, { key, dsaEncoding: 'ieee-p1363' }, signature);
    } catch {
      return false;
    }
  },
};

/* eslint-disable @typescript-eslint/no-explicit-any */
type Fn = (...args: any[]) => any;

const fn = (lib: Koffi.LibraryHandle, proto: string): Fn => lib.func(proto) as Fn;

/** sizeof(mpz_t) and sizeof(struct ecc_point) on LP64 are 16 bytes; slots are 32 bytes apart for margin. */
const SLOT = 32;

/** Affine coordinates of each key met, so that a key is exported once, not at every report. */
const coordinates = new WeakMap<KeyObject, Coordinates>();

interface Coordinates {
  x: Buffer;
  y: Buffer;
  /** x ‖ y as latin1 text: the key's name in the table cache */
  id: string;
}

function coordinatesOf(key: KeyObject): Coordinates | undefined {
  let c = coordinates.get(key);
  if (c) return c;
  if (key.type !== 'public' || key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'secp384r1') return undefined;
  const jwk = key.export({ format: 'jwk' });
  if (typeof jwk.x !== 'string' || typeof jwk.y !== 'string') return undefined;
  const x = Buffer.from(jwk.x, 'base64url');
  const y = Buffer.from(jwk.y, 'base64url');
  if (x.length !== 48 || y.length !== 48) return undefined;
  c = { x, y, id: Buffer.concat([x, y]).toString('latin1') };
  coordinates.set(key, c);
  return c;
}

/** Sonames of the runtime packages (libhogweed6, libgmp10 on Debian; both come with GnuTLS). */
export const NETTLE_LIBRARIES = { hogweed: 'libhogweed.so.6', gmp: 'libgmp.so.10' } as const;

/**
 * Where Nettle keeps what the tables need in its `struct ecc_curve` (ecc-internal.h), on LP64: two
 * `struct ecc_modulo` (p, then q) of `modulo` bytes each (96 in Nettle 3.8; 104 from 3.9, which added a
 * pointer), then use_redc, pippenger_k and pippenger_c as unsigned shorts, six more shorts, six function
 * pointers, b, unit and the table pointer.
 */
interface CurveLayout {
  modulo: number;
  k: number;
  c: number;
  /** offset of pippenger_table */
  tableOffset: number;
  /** bytes of the struct up to and including the table pointer */
  size: number;
}

/** The layout whose fields read as secp384r1's do, or why none does (exported for its tests). */
export function curveLayout(head: Buffer): CurveLayout | string {
  const found: CurveLayout[] = [];
  for (const modulo of [96, 104]) {
    const base = 2 * modulo;
    const tableOffset = base + 88;
    if (head.length < tableOffset + 8) continue;
    const u16 = (o: number) => head.readUInt16LE(o);
    const k = u16(base + 2);
    const c = u16(base + 4);
    const plausible =
      u16(0) === 384 && u16(2) === 6 && u16(modulo) === 384 && u16(modulo + 2) === 6 && u16(base) === 0 && k >= 1 && k <= 384 && c >= 1 && c <= 10;
    let pointers = true;
    for (let o = base + 24; o <= tableOffset; o += 8) if (head.readBigUInt64LE(o) === 0n) pointers = false;
    if (plausible && pointers) found.push({ modulo, k, c, tableOffset, size: tableOffset + 8 });
  }
  if (found.length !== 1) return `Nettle's secp384r1 description has ${found.length === 0 ? 'no' : 'more than one'} layout known to this build`;
  return found[0]!;
}

/** Bytes in a table for parameters k and c (see pippengerTable). */
const tableBytes = (k: number, c: number): number => (Math.ceil(Math.ceil(384 / k) / c) << c) * ENTRY_BYTES;

/**
 * Binds Nettle's ECDSA verification. Scratch structures (ecc_points, ecc_scalars, mpz integers, limbs) live
 * in one Buffer for the life of the binding and are reused by every call: a verification is one synchronous
 * run of native calls, so no two can interleave in a thread, and each worker thread loads its own copy of
 * this module. A Buffer's bytes do not move, so the structures may hold their addresses.
 */
function loadNettle(libraries: { hogweed: string; gmp: string }, tableOptions: P384KeyTables = {}): P384Backend {
  const req = createRequire(import.meta.url);
  const koffi = req('koffi') as typeof Koffi;
  const load = (name: string): Koffi.LibraryHandle => {
    try {
      return koffi.load(name);
    } catch (e) {
      throw new Error(`${name}: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  const hogweed = load(libraries.hogweed);
  const gmp = load(libraries.gmp);
  const curve = fn(hogweed, 'const void *nettle_get_secp_384r1(void)')() as unknown;
  const pointInit = fn(hogweed, 'void nettle_ecc_point_init(void *p, const void *ecc)');
  const pointSet = fn(hogweed, 'int nettle_ecc_point_set(void *p, const void *x, const void *y)');
  const signatureInit = fn(hogweed, 'void nettle_dsa_signature_init(void *s)');
  const mpzFromBytes = fn(hogweed, 'void nettle_mpz_set_str_256_u(void *x, size_t length, const uint8_t *s)');
  const mpzInit = fn(gmp, 'void __gmpz_init(void *x)');
  const ecdsaVerify = fn(hogweed, 'int nettle_ecdsa_verify(const void *pub, size_t length, const uint8_t *digest, const void *signature)');
  const version = `${fn(hogweed, 'int nettle_version_major(void)')() as number}.${fn(hogweed, 'int nettle_version_minor(void)')() as number}`;

  let scratchUsed = 0;
  const scratch = Buffer.alloc(1024);
  const take = (n: number): Buffer => {
    const b = scratch.subarray(scratchUsed, scratchUsed + n);
    scratchUsed += SLOT * Math.ceil(n / SLOT);
    return b;
  };
  const point = take(SLOT);
  const x = take(SLOT);
  const y = take(SLOT);
  // struct dsa_signature { mpz_t r; mpz_t s; }: two consecutive 16-byte mpz.
  const signature = take(SLOT);
  const sigR = signature.subarray(0, 16);
  const sigS = signature.subarray(16, 32);
  pointInit(point, curve);
  mpzInit(x);
  mpzInit(y);
  signatureInit(signature);

  /** Nettle's ecdsa_verify, on a point set from the key's coordinates. */
  const plain = (c: Coordinates, digest: Buffer, sig: Uint8Array): boolean => {
    mpzFromBytes(x, 48, c.x);
    mpzFromBytes(y, 48, c.y);
    // A KeyObject's point is on the curve; were it not, Nettle refuses it here and so do we.
    if (pointSet(point, x, y) !== 1) return false;
    mpzFromBytes(sigR, 48, sig.subarray(0, 48));
    mpzFromBytes(sigS, 48, sig.subarray(48, 96));
    // nettle_ecdsa_verify refuses r or s outside [1, n-1] itself.
    return ecdsaVerify(point, 48, digest, signature) === 1;
  };

  const tables = bindTables({ koffi, hogweed, gmp, curve, take, mpzFromBytes, mpzInit }, tableOptions);

  const backend: P384Backend = {
    name: 'nettle',
    library: `nettle ${version}`,
    label: tables.stats().enabled ? 'nettle+tables' : 'nettle',
    verify(key, data, sig) {
      if (sig.length !== 96) return false;
      const c = coordinatesOf(key);
      // Not a P-384 public key: node:crypto gives the answer (false, or its error) for such a key.
      if (!c) return openssl.verify(key, data, sig);
      const digest = createHash('sha384').update(data).digest();
      const fast = tables.verify(c, digest, sig);
      return fast ?? plain(c, digest, sig);
    },
    keyTables: () => tables.stats(),
  };
  // A self-test on a fixed signature: a library that loads but answers wrongly is not used. With tables, its
  // later verifications take the table's path (a table is built at the key's second use by default).
  if (!selfTest(backend)) throw new Error('its ECDSA P-384 self-test failed');
  tables.reset();
  return backend;
}

interface TableBinding {
  /** The answer with the key's table, or undefined where Nettle's ecdsa_verify is to answer. */
  verify(c: Coordinates, digest: Buffer, sig: Uint8Array): boolean | undefined;
  stats(): P384KeyTableStats;
  /** Forgets every table and count (after the self-test). */
  reset(): void;
}

interface KeyTable {
  table: Buffer;
  /** the copy of Nettle's curve description that names `table` */
  curve: Buffer;
  /** its address, which the scalar and point structures name */
  curveAddress: bigint;
}

/** What bindTables shares with the binding of ecdsa_verify: the libraries, Nettle's curve, scratch, two calls. */
interface NettleBinding {
  koffi: typeof Koffi;
  hogweed: Koffi.LibraryHandle;
  gmp: Koffi.LibraryHandle;
  curve: unknown;
  take: (n: number) => Buffer;
  mpzFromBytes: Fn;
  mpzInit: Fn;
}

function bindTables({ koffi, hogweed, gmp, curve, take, mpzFromBytes, mpzInit }: NettleBinding, options: P384KeyTables): TableBinding {
  const counts = { builds: 0, hits: 0 };
  const off = (reason: string): TableBinding => ({ verify: () => undefined, stats: () => ({ enabled: false, reason, tables: 0, ...counts }), reset: () => undefined });
  if (options.enabled === false) return off('disabled by configuration');
  if (process.arch !== 'x64' && process.arch !== 'arm64') return off(`not on ${process.arch} (the layout read is that of LP64 little-endian machines)`);
  const head = Buffer.from(koffi.decode(curve, koffi.array('uint8_t', 304)) as ArrayLike<number>);
  const layout = curveLayout(head);
  if (typeof layout === 'string') return off(layout);
  const nettleTablePtr = koffi.decode(curve, koffi.struct({ head: koffi.array('uint8_t', layout.tableOffset), table: 'void *' })) as { table: unknown };
  const nettleTable = Buffer.from(koffi.decode(nettleTablePtr.table, koffi.array('uint8_t', tableBytes(layout.k, layout.c))) as ArrayLike<number>);
  // The one check that the layout and the table format are understood: Nettle's own generator table, rebuilt.
  if (!pippengerTable(P384.gx, P384.gy, layout.k, layout.c).equals(nettleTable)) return off("Nettle's generator table is not the one this build computes");
  const nettleCurve = head.subarray(0, layout.size);

  const mulG = fn(hogweed, 'void nettle_ecc_point_mul_g(void *r, const void *n)');
  const mpzInvert = fn(gmp, 'int __gmpz_invert(void *r, const void *a, const void *m)');
  const mpzMul = fn(gmp, 'void __gmpz_mul(void *r, const void *a, const void *b)');
  const mpzMod = fn(gmp, 'void __gmpz_mod(void *r, const void *a, const void *m)');
  const mpzExport = fn(gmp, 'void *__gmpz_export(void *rop, void *countp, int order, size_t size, int endian, size_t nails, const void *op)');
  const address = (b: Buffer): bigint => koffi.address(b) as bigint;
  const curveAddress = koffi.address(curve) as bigint;

  const [mpzS, mpzR, mpzE, mpzW, mpzT, mpzU, mpzN] = Array.from({ length: 7 }, () => take(16));
  for (const m of [mpzS, mpzR, mpzE, mpzW, mpzT, mpzU, mpzN]) mpzInit(m!);
  mpzFromBytes(mpzN, 48, Buffer.from(P384.n.toString(16), 'hex'));
  // struct ecc_scalar and struct ecc_point (ecc.h) are { const struct ecc_curve *ecc; mp_limb_t *p; }: ours
  // point at limbs in the scratch buffer, so that scalars are written and products read in place.
  const u1 = take(48);
  const u2 = take(48);
  const p1 = take(96);
  const p2 = take(96);
  const scalar1 = take(16);
  const point1 = take(16);
  const scalar2 = take(16);
  const point2 = take(16);
  scalar1.writeBigUInt64LE(curveAddress, 0);
  scalar1.writeBigUInt64LE(address(u1), 8);
  point1.writeBigUInt64LE(curveAddress, 0);
  point1.writeBigUInt64LE(address(p1), 8);
  scalar2.writeBigUInt64LE(address(u2), 8);
  point2.writeBigUInt64LE(address(p2), 8);

  const after = Math.max(1, options.after ?? 2);
  const buildEvery = Math.max(0, options.buildEvery ?? 128);
  const uses = new BoundedMap<string, number>(4 * (options.max ?? 512));
  const kept = new BoundedMap<string, KeyTable>(Math.max(1, options.max ?? 512));
  // Builds are paid for by verifications: each adds one credit, a build takes buildEvery. The first few
  // keys are built at once.
  const creditCap = 8 * buildEvery;
  let credit = creditCap;

  const tableFor = (c: Coordinates): KeyTable | undefined => {
    const t = kept.get(c.id);
    if (t) {
      // Least recently used first out: a hit moves the table to the end.
      kept.set(c.id, t);
      return t;
    }
    const n = (uses.get(c.id) ?? 0) + 1;
    uses.set(c.id, n);
    if (n < after || credit < buildEvery) return undefined;
    const qx = BigInt(`0x${c.x.toString('hex')}`);
    const qy = BigInt(`0x${c.y.toString('hex')}`);
    if (!onCurve(qx, qy)) return undefined;
    credit -= buildEvery;
    const table = pippengerTable(qx, qy, layout.k, layout.c);
    const copy = Buffer.from(nettleCurve);
    copy.writeBigUInt64LE(address(table), layout.tableOffset);
    const entry = { table, curve: copy, curveAddress: address(copy) };
    kept.set(c.id, entry);
    uses.delete(c.id);
    counts.builds++;
    return entry;
  };

  return {
    verify(c, digest, sig) {
      if (credit < creditCap) credit++;
      const t = tableFor(c);
      if (!t) return undefined;
      const r = sig.subarray(0, 48);
      const s = sig.subarray(48, 96);
      const rv = BigInt(`0x${Buffer.from(r.buffer, r.byteOffset, 48).toString('hex')}`);
      const sv = BigInt(`0x${Buffer.from(s.buffer, s.byteOffset, 48).toString('hex')}`);
      if (rv === 0n || rv >= P384.n || sv === 0n || sv >= P384.n) return false;
      // w = s⁻¹, u1 = e·w, u2 = r·w (mod n); e is the whole SHA-384 digest, as long as n.
      mpzFromBytes(mpzS, 48, s);
      mpzFromBytes(mpzR, 48, r);
      mpzFromBytes(mpzE, 48, digest);
      if (mpzInvert(mpzW, mpzS, mpzN) === 0) return false;
      mpzMul(mpzT, mpzE, mpzW);
      mpzMod(mpzU, mpzT, mpzN);
      u1.fill(0);
      mpzExport(u1, null, -1, 8, 0, 0, mpzU);
      mpzMul(mpzT, mpzR, mpzW);
      mpzMod(mpzU, mpzT, mpzN);
      u2.fill(0);
      mpzExport(u2, null, -1, 8, 0, 0, mpzU);
      // u1 = 0 (a digest that is a multiple of n) is left to Nettle's general path.
      if (isAllZero(u1)) return undefined;
      mulG(point1, scalar1);
      scalar2.writeBigUInt64LE(t.curveAddress, 0);
      point2.writeBigUInt64LE(t.curveAddress, 0);
      mulG(point2, scalar2);
      counts.hits++;
      const x1 = leToBigInt(p1.subarray(0, 48));
      const y1 = leToBigInt(p1.subarray(48, 96));
      const x2 = leToBigInt(p2.subarray(0, 48));
      const y2 = leToBigInt(p2.subarray(48, 96));
      const dx = modP(x2 - x1);
      // The same x: the two products are equal or opposite, which Nettle's general path handles.
      if (dx === 0n) return undefined;
      // R = P1 + P2 has x = λ² - x1 - x2 with λ = dy/dx; R's x is r or r + n (it is below p < 2n) exactly
      // when dy² = (x + x1 + x2)·dx² (mod p), which needs no inversion.
      const dy = modP(y2 - y1);
      const dy2 = modP(dy * dy);
      const dx2 = modP(dx * dx);
      const is = (xr: bigint): boolean => modP(dy2 - (xr + x1 + x2) * dx2) === 0n;
      return is(rv) || (rv + P384.n < P384.p && is(rv + P384.n));
    },
    stats: () => ({ enabled: true, tables: kept.size, ...counts }),
    reset() {
      kept.clear();
      uses.clear();
      counts.builds = 0;
      counts.hits = 0;
      credit = creditCap;
    },
  };
}

/**
 * A key, message and signature made once with node:crypto; the backend must accept it and refuse a flipped
 * bit, twice each (with key tables, the second round is answered with the key's table).
 */
function selfTest(backend: P384Backend): boolean {
  const key = SELF_TEST.key();
  const good = Buffer.from(SELF_TEST.signature, 'hex');
  const flipped = Buffer.from(good);
  flipped[40]! ^= 0x01;
  for (let round = 0; round < 2; round++) {
    if (!backend.verify(key, SELF_TEST.message, good)) return false;
    if (backend.verify(key, SELF_TEST.message, flipped)) return false;
  }
  return true;
}

const SELF_TEST = {
  key: () =>
    createPublicKey({
      format: 'jwk',
      key: {
        kty: 'EC',
        crv: 'P-384',
        x: 'l2bP1xagxOEjolsueVlYLY-Dgr649h36tSUe1Z--Ux9XBYnpP3yqPYzu2aSgkZiB',
        y: 'YQwXme0zqHoLNTeGqhuHG6mwJEqvOwFm52jzl9cYJcupWKkBmk_df_PtaTZFWvNK',
      },
    }),
  message: Buffer.from('joinguard P-384 self-test'),
  signature:
    '1081feb291da25de91f77b5d7f310f9ad5d6b31168d5a64d80bf044da3d9e691200da49744803b17dd028c384ed144e2' +
    'a25751d79d69523ca2705ebda14c655258c35174b4b9f9be154a9063f2b5f5c6fbf6e1383c5c68b447f83c396f9616c3',
};

const loaded = new Map<string, P384Backend>();

/** One binding per pair of libraries and table options, made at first use. */
function nettleFrom(libraries: { hogweed: string; gmp: string }, keyTables: P384KeyTables = {}): P384Backend {
  const id = `${libraries.hogweed}\n${libraries.gmp}\n${JSON.stringify(keyTables)}`;
  let b = loaded.get(id);
  if (!b) {
    b = loadNettle(libraries, keyTables);
    loaded.set(id, b);
  }
  return b;
}

let active: P384Backend | undefined;
let nettleFailure: string | undefined;

/**
 * Chooses the implementation for this process (or worker thread). `nettle` throws SNP_CRYPTO_UNAVAILABLE
 * when Nettle cannot be loaded; `auto` falls back to node:crypto and says why in `fallbackReason`.
 */
export function useP384Backend(choice: P384BackendChoice, libraries: { hogweed: string; gmp: string } = NETTLE_LIBRARIES, keyTables: P384KeyTables = {}): P384Backend {
  if (choice === 'openssl') {
    active = openssl;
    nettleFailure = undefined;
    return active;
  }
  try {
    active = nettleFrom(libraries, keyTables);
    nettleFailure = undefined;
  } catch (e) {
    nettleFailure = e instanceof Error ? e.message : String(e);
    if (choice === 'nettle') {
      throw new JoinguardError(
        SnpErrorCode.CRYPTO_UNAVAILABLE,
        `the Nettle ECDSA backend cannot be used (${nettleFailure}); install libhogweed6 and libgmp10 (Debian/Ubuntu), or choose the openssl backend`,
        { backend: 'nettle', libraries: { ...libraries }, reason: nettleFailure },
        { kind: 'internal', cause: e },
      );
    }
    active = openssl;
  }
  return active;
}

/** The implementation in use; the first call picks `auto` unless useP384Backend chose before. */
export function p384Backend(): P384Backend {
  return active ?? useP384Backend('auto');
}

/** Why `auto` is using node:crypto, when it is. */
export function p384FallbackReason(): string | undefined {
  return active === openssl ? nettleFailure : undefined;
}

/** Verifies with the backend in use. */
export function verifyP384Sha384(key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  return p384Backend().verify(key, data, signature);
}

/**
 * Every implementation, for tests and benchmarks that compare them: node:crypto, Nettle's ecdsa_verify alone,
 * and Nettle with a table for every key from its first verification (where tables can be used here).
 */
export function p384Backends(libraries: { hogweed: string; gmp: string } = NETTLE_LIBRARIES): P384Backend[] {
  const list: P384Backend[] = [openssl];
  try {
    list.push(nettleFrom(libraries, { enabled: false }));
    const tabled = nettleFrom(libraries, { after: 1, buildEvery: 0 });
    if (tabled.keyTables?.().enabled) list.push(tabled);
  } catch {
    // absent: only node:crypto
  }
  return list;
}
