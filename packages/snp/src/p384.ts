import { createHash, createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';
import { JoinguardError } from '@joinguard/core';
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
  /** `signature` is r ‖ s, 48 bytes each, big-endian (IEEE P1363). */
  verify(key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean;
}

const openssl: P384Backend = {
  name: 'openssl',
  library: `OpenSSL ${process.versions.openssl}`,
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

/** sizeof(mpz_t) and sizeof(struct ecc_point) on LP64 are 16 bytes; slots are 32 bytes apart for margin. */
const SLOT = 32;

/** Affine coordinates of each key met, so that a key is exported once, not at every report. */
const coordinates = new WeakMap<KeyObject, { x: Buffer; y: Buffer }>();

function coordinatesOf(key: KeyObject): { x: Buffer; y: Buffer } | undefined {
  let c = coordinates.get(key);
  if (c) return c;
  if (key.type !== 'public' || key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'secp384r1') return undefined;
  const jwk = key.export({ format: 'jwk' });
  if (typeof jwk.x !== 'string' || typeof jwk.y !== 'string') return undefined;
  c = { x: Buffer.from(jwk.x, 'base64url'), y: Buffer.from(jwk.y, 'base64url') };
  if (c.x.length !== 48 || c.y.length !== 48) return undefined;
  coordinates.set(key, c);
  return c;
}

/** Sonames of the runtime packages (libhogweed6, libgmp10 on Debian; both come with GnuTLS). */
export const NETTLE_LIBRARIES = { hogweed: 'libhogweed.so.6', gmp: 'libgmp.so.10' } as const;

/**
 * Binds Nettle's ECDSA verification. Scratch structures (one ecc_point, two mpz for the point's
 * coordinates, one dsa_signature) live in one Buffer for the life of the module and are reused by every
 * call: a verification is one synchronous run of native calls, so no two can interleave in a thread, and
 * each worker thread loads its own copy of this module.
 */
function loadNettle(libraries: { hogweed: string; gmp: string }): P384Backend {
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
  const fn = (lib: Koffi.LibraryHandle, proto: string): Fn => lib.func(proto) as Fn;
  const curve = fn(hogweed, 'const void *nettle_get_secp_384r1(void)')() as unknown;
  const pointInit = fn(hogweed, 'void nettle_ecc_point_init(void *p, const void *ecc)');
  const pointSet = fn(hogweed, 'int nettle_ecc_point_set(void *p, const void *x, const void *y)');
  const signatureInit = fn(hogweed, 'void nettle_dsa_signature_init(void *s)');
  const mpzFromBytes = fn(hogweed, 'void nettle_mpz_set_str_256_u(void *x, size_t length, const uint8_t *s)');
  const mpzInit = fn(gmp, 'void __gmpz_init(void *x)');
  const ecdsaVerify = fn(hogweed, 'int nettle_ecdsa_verify(const void *pub, size_t length, const uint8_t *digest, const void *signature)');
  const version = `${fn(hogweed, 'int nettle_version_major(void)')() as number}.${fn(hogweed, 'int nettle_version_minor(void)')() as number}`;

  // 128 bytes: more than 64, so V8 keeps the bytes off its heap at a fixed address.
  const scratch = Buffer.alloc(SLOT * 4);
  const point = scratch.subarray(0, SLOT);
  const x = scratch.subarray(SLOT, 2 * SLOT);
  const y = scratch.subarray(2 * SLOT, 3 * SLOT);
  // struct dsa_signature { mpz_t r; mpz_t s; }: two consecutive 16-byte mpz.
  const signature = scratch.subarray(3 * SLOT, 4 * SLOT);
  const sigR = signature.subarray(0, 16);
  const sigS = signature.subarray(16, 32);
  pointInit(point, curve);
  mpzInit(x);
  mpzInit(y);
  signatureInit(signature);

  const backend: P384Backend = {
    name: 'nettle',
    library: `nettle ${version}`,
    verify(key, data, sig) {
      if (sig.length !== 96) return false;
      const c = coordinatesOf(key);
      // Not a P-384 public key: node:crypto gives the answer (false, or its error) for such a key.
      if (!c) return openssl.verify(key, data, sig);
      mpzFromBytes(x, 48, c.x);
      mpzFromBytes(y, 48, c.y);
      // A KeyObject's point is on the curve; were it not, Nettle refuses it here and so do we.
      if (pointSet(point, x, y) !== 1) return false;
      mpzFromBytes(sigR, 48, sig.subarray(0, 48));
      mpzFromBytes(sigS, 48, sig.subarray(48, 96));
      const digest = createHash('sha384').update(data).digest();
      // nettle_ecdsa_verify refuses r or s outside [1, n-1] itself.
      return ecdsaVerify(point, 48, digest, signature) === 1;
    },
  };
  // A self-test on a fixed signature: a library that loads but answers wrongly is not used.
  if (!selfTest(backend)) throw new Error('its ECDSA P-384 self-test failed');
  return backend;
}

/** A key, message and signature made once with node:crypto; the backend must accept it and refuse a flipped bit. */
function selfTest(backend: P384Backend): boolean {
  const key = SELF_TEST.key();
  const sig = Buffer.from(SELF_TEST.signature, 'hex');
  if (!backend.verify(key, SELF_TEST.message, sig)) return false;
  sig[40]! ^= 0x01;
  return !backend.verify(key, SELF_TEST.message, sig);
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

/** One binding per pair of libraries, made at first use. */
function nettleFrom(libraries: { hogweed: string; gmp: string }): P384Backend {
  const id = `${libraries.hogweed}\n${libraries.gmp}`;
  let b = loaded.get(id);
  if (!b) {
    b = loadNettle(libraries);
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
export function useP384Backend(choice: P384BackendChoice, libraries: { hogweed: string; gmp: string } = NETTLE_LIBRARIES): P384Backend {
  if (choice === 'openssl') {
    active = openssl;
    nettleFailure = undefined;
    return active;
  }
  try {
    active = nettleFrom(libraries);
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

/** Both implementations, for tests and benchmarks that compare them. */
export function p384Backends(libraries: { hogweed: string; gmp: string } = NETTLE_LIBRARIES): P384Backend[] {
  const list: P384Backend[] = [openssl];
  try {
    list.push(nettleFrom(libraries));
  } catch {
    // absent: only node:crypto
  }
  return list;
}
