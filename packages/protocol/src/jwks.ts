import { generateKeyPairSync } from 'node:crypto';
import { importJWK } from 'jose';
import type { CryptoKey, JSONWebKeySet, JWK } from 'jose';
import { inputError, wrapError } from '@joinguard/core';
import { jwkThumbprint } from './result.js';
import type { ResultAlgorithm } from './result.js';

/** A verifier signing key: the private half signs results and records, the public JWK is published. */
export interface SigningKey {
  kid: string;
  alg: ResultAlgorithm;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

function publicOnly(jwk: JWK): JWK {
  const { kty, crv, x, y, n, e } = jwk;
  const out: JWK = { kty };
  if (crv !== undefined) out.crv = crv;
  if (x !== undefined) out.x = x;
  if (y !== undefined) out.y = y;
  if (n !== undefined) out.n = n;
  if (e !== undefined) out.e = e;
  return out;
}

const KEY_SPECS = {
  ES256: ['ec', { namedCurve: 'P-256' }],
  ES384: ['ec', { namedCurve: 'P-384' }],
  EdDSA: ['ed25519', {}],
  PS256: ['rsa', { modulusLength: 2048 }],
} as const;

/**
 * A fresh key whose kid is its RFC 7638 thumbprint (so two replicas naming the same key agree on the kid),
 * with its private JWK. The key is generated straight into that JWK and imported from it, as a loaded key
 * is: exporting a
 * key object that came out of Node 20's key generation can deadlock (see newKeyPair in @joinguard/core).
 */
export async function generateSigningKey(alg: ResultAlgorithm = 'ES256'): Promise<SigningKey & { privateJwk: JWK }> {
  const [type, options] = KEY_SPECS[alg];
  const generate = generateKeyPairSync as unknown as (type: string, options: object) => { privateKey: JWK };
  const { privateKey: jwk } = generate(type, { ...options, publicKeyEncoding: { format: 'jwk' }, privateKeyEncoding: { format: 'jwk' } });
  const privateKey = (await importJWK(jwk, alg, { extractable: true })) as CryptoKey;
  const pub = publicOnly(jwk);
  const kid = await jwkThumbprint(pub);
  // The private JWK, for whoever keeps the key in a file: it need not be exported again.
  return { kid, alg, privateKey, publicJwk: { ...pub, kid, alg, use: 'sig' }, privateJwk: { ...jwk, kid, alg } };
}

/** Loads a signing key from a private JWK (as kept in the verifier's key file). */
export async function signingKeyFromJwk(privateJwk: JWK, alg: ResultAlgorithm = 'ES256'): Promise<SigningKey> {
  if (typeof privateJwk?.d !== 'string') {
    throw inputError('PROTOCOL_BAD_JWK', 'the signing key JWK has no private part (d)', { kty: privateJwk?.kty });
  }
  let key: CryptoKey | Uint8Array;
  try {
    key = await importJWK(privateJwk, alg);
  } catch (e) {
    throw wrapError('PROTOCOL_BAD_JWK', `cannot import the signing key as ${alg}`, e);
  }
  if (key instanceof Uint8Array) throw inputError('PROTOCOL_BAD_JWK', 'the signing key is a symmetric key', {});
  const pub = publicOnly(privateJwk);
  const kid = privateJwk.kid ?? (await jwkThumbprint(pub));
  return { kid, alg, privateKey: key, publicJwk: { ...pub, kid, alg, use: 'sig' } };
}

/**
 * The verifier's published keys across rotations, as plain JSON that can be persisted. The newest key signs;
 * a retired key stays published until every result it signed has expired (`publishUntil` = retirement +
 * the longest result lifetime it signed with; a holder of the ring may push `publishUntil` later, never
 * earlier), so relying parties never see a valid result whose key vanished. Records are signed by the same
 * keys and must stay verifiable for years: `allKeys` keeps every key.
 */
export interface PublishedKey {
  jwk: JWK;
  activatedAt: string;
  retiredAt?: string;
  publishUntil?: string;
  /**
   * The longest result lifetime (seconds) this key has signed with: retirement publishes it at least this
   * long, even if the configured lifetime was shortened in the meantime. Absent in rings written before.
   */
  resultTtlSec?: number;
}

export interface KeyRing {
  keys: PublishedKey[];
}

export function emptyKeyRing(): KeyRing {
  return { keys: [] };
}

/**
 * Adds `publicJwk` as the active key, retiring the previous one: it stays published for the longer of
 * `maxResultLifetimeSec` and the lifetime it recorded (`resultTtlSec`).
 */
export function rotateKey(ring: KeyRing, publicJwk: JWK, now: Date, maxResultLifetimeSec: number): KeyRing {
  if (typeof publicJwk.kid !== 'string' || publicJwk.kid.length === 0) {
    throw inputError('PROTOCOL_BAD_JWK', 'a published key needs a kid', {});
  }
  if ('d' in publicJwk) throw inputError('PROTOCOL_BAD_JWK', `key ${publicJwk.kid} has a private part; publish only public keys`, { kid: publicJwk.kid });
  if (ring.keys.some((k) => k.jwk.kid === publicJwk.kid)) {
    throw inputError('PROTOCOL_DUPLICATE_KID', `key ${publicJwk.kid} is already in the key ring`, { kid: publicJwk.kid });
  }
  if (!Number.isSafeInteger(maxResultLifetimeSec) || maxResultLifetimeSec < 0) {
    throw inputError('PROTOCOL_BAD_LIFETIME', `maxResultLifetimeSec must be a non-negative integer, got ${maxResultLifetimeSec}`, {});
  }
  const at = now.toISOString();
  const keys = ring.keys.map((k) => {
    if (k.retiredAt !== undefined) return k;
    const lifetime = Math.max(maxResultLifetimeSec, k.resultTtlSec ?? 0);
    return { ...k, retiredAt: at, publishUntil: new Date(now.getTime() + lifetime * 1000).toISOString() };
  });
  keys.push({ jwk: { ...publicJwk }, activatedAt: at, resultTtlSec: maxResultLifetimeSec });
  return { keys };
}

export function activeKey(ring: KeyRing): PublishedKey | undefined {
  return ring.keys.find((k) => k.retiredAt === undefined);
}

/** What `/.well-known/jwks.json` serves at `now`: the active key and retired keys whose results may still be valid. */
export function publishedJwks(ring: KeyRing, now: Date): JSONWebKeySet {
  const t = now.getTime();
  return {
    keys: ring.keys.filter((k) => k.publishUntil === undefined || Date.parse(k.publishUntil) > t).map((k) => ({ ...k.jwk })),
  };
}

/** Every key ever used: what an auditor needs to verify records signed before a rotation. */
export function allKeys(ring: KeyRing): JSONWebKeySet {
  return { keys: ring.keys.map((k) => ({ ...k.jwk })) };
}

/*
 * Key-ring algebra (the verifier's SigningKeys merges several processes' views with it). Every function returns a new ring in the canonical field order of
 * `canonicalRing`, so two processes' views compare by their JSON text.
 */

const laterIso = (a: string | undefined, b: string | undefined): string | undefined =>
  a === undefined ? b : b === undefined ? a : Date.parse(a) >= Date.parse(b) ? a : b;
const earlierIso = (a: string | undefined, b: string | undefined): string | undefined =>
  a === undefined ? b : b === undefined ? a : Date.parse(a) <= Date.parse(b) ? a : b;

/** How long a retired key stays published after its retirement (or its last result): the longer of the configured and its recorded result lifetime. */
export function publicationLifetimeSec(k: PublishedKey, resultTtlSec: number): number {
  return Math.max(resultTtlSec, k.resultTtlSec ?? 0);
}

function canonicalKey(k: PublishedKey): PublishedKey {
  const out: PublishedKey = { jwk: { ...k.jwk }, activatedAt: k.activatedAt };
  if (k.retiredAt !== undefined) out.retiredAt = k.retiredAt;
  if (k.publishUntil !== undefined) out.publishUntil = k.publishUntil;
  if (k.resultTtlSec !== undefined) out.resultTtlSec = k.resultTtlSec;
  return out;
}

/** Keys oldest first (activation time, then kid), each with its fields in one order. */
export function canonicalRing(ring: KeyRing): KeyRing {
  return {
    keys: ring.keys.map(canonicalKey).sort((x, y) => Date.parse(x.activatedAt) - Date.parse(y.activatedAt) || (x.jwk.kid! < y.jwk.kid! ? -1 : x.jwk.kid! > y.jwk.kid! ? 1 : 0)),
  };
}

/**
 * The union of two views of one ring (the file as another process left it, and this process's copy): no key
 * of either is lost, a key retired in either is retired (earliest retirement, latest end of publication,
 * longest recorded result lifetime). Should the union hold several active keys (two processes rotated
 * without seeing each other), the newest stays active and the others are retired at its activation but
 * published for `resultTtlSec` from `now`, since their holders may have signed with them until now.
 */
export function mergeKeyRings(a: KeyRing, b: KeyRing, now: Date, resultTtlSec: number): KeyRing {
  const byKid = new Map<string, PublishedKey>();
  for (const k of [...a.keys, ...b.keys]) {
    const kid = k.jwk.kid!;
    const seen = byKid.get(kid);
    if (!seen) {
      byKid.set(kid, canonicalKey(k));
      continue;
    }
    const merged: PublishedKey = { jwk: seen.jwk, activatedAt: earlierIso(seen.activatedAt, k.activatedAt)! };
    const retiredAt = earlierIso(seen.retiredAt, k.retiredAt);
    const publishUntil = laterIso(seen.publishUntil, k.publishUntil);
    if (retiredAt !== undefined) merged.retiredAt = retiredAt;
    if (publishUntil !== undefined) merged.publishUntil = publishUntil;
    if (seen.resultTtlSec !== undefined || k.resultTtlSec !== undefined) merged.resultTtlSec = Math.max(seen.resultTtlSec ?? 0, k.resultTtlSec ?? 0);
    byKid.set(kid, merged);
  }
  const ring = canonicalRing({ keys: [...byKid.values()] });
  const active = ring.keys.filter((k) => k.retiredAt === undefined);
  if (active.length <= 1) return ring;
  const winner = active[active.length - 1]!;
  const from = Math.max(now.getTime(), Date.parse(winner.activatedAt));
  return {
    keys: ring.keys.map((k) => {
      if (k.retiredAt !== undefined || k === winner) return k;
      return canonicalKey({ ...k, retiredAt: winner.activatedAt, publishUntil: new Date(from + publicationLifetimeSec(k, resultTtlSec) * 1000).toISOString() });
    }),
  };
}

/** Keeps the retired key `kid` published at least until `until` (never shortens a publication). */
export function extendPublication(ring: KeyRing, kid: string, until: Date): KeyRing {
  return {
    keys: ring.keys.map((k) => (k.jwk.kid === kid && k.retiredAt !== undefined ? canonicalKey({ ...k, publishUntil: laterIso(k.publishUntil, until.toISOString())! }) : k)),
  };
}

/** Raises the recorded result lifetime of `kid` to `sec` (so that its retirement covers the longest result). */
export function noteResultLifetime(ring: KeyRing, kid: string, sec: number): KeyRing {
  return { keys: ring.keys.map((k) => (k.jwk.kid === kid && (k.resultTtlSec ?? 0) < sec ? canonicalKey({ ...k, resultTtlSec: sec }) : k)) };
}
