import { exportJWK, generateKeyPair, importJWK } from 'jose';
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

/** A fresh key whose kid is its RFC 7638 thumbprint (so two replicas naming the same key agree on the kid). */
export async function generateSigningKey(alg: ResultAlgorithm = 'ES256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const pub = publicOnly(await exportJWK(publicKey));
  const kid = await jwkThumbprint(pub);
  return { kid, alg, privateKey, publicJwk: { ...pub, kid, alg, use: 'sig' } };
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
