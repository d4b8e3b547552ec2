import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { inputError, reject } from '@joinguard/core';
import { fromB64url, toB64url } from './base64.js';
import type { ChallengeResponse } from './types.js';

/**
 * Stateless challenges, so that any verifier replica can check a nonce another one issued:
 *
 *   nonce = random (32) ‖ expiry (uint64 big-endian, ms since the epoch) ‖ HMAC-SHA256(macKey, label ‖ random ‖ expiry)
 *
 * The MAC proves we issued it and when it expires; single use is enforced separately by the store's
 * replay set (`consumeNonce`), keyed by the nonce until its expiry.
 */
const RANDOM_BYTES = 32;
const EXPIRY_BYTES = 8;
const MAC_BYTES = 32;
export const CHALLENGE_NONCE_BYTES = RANDOM_BYTES + EXPIRY_BYTES + MAC_BYTES;
export const DEFAULT_CHALLENGE_TTL_MS = 5 * 60 * 1000;
const LABEL = Buffer.from('joinguard/challenge/v1\0', 'utf8');
const MIN_KEY_BYTES = 32;

export interface IssuedChallenge extends ChallengeResponse {
  nonceBytes: Uint8Array;
}

export interface CheckedChallenge {
  nonceBytes: Uint8Array;
  expiresAt: Date;
}

function checkKey(k: Uint8Array): void {
  if (!(k instanceof Uint8Array) || k.length < MIN_KEY_BYTES) {
    throw inputError('PROTOCOL_CHALLENGE_KEY_TOO_SHORT', `challenge MAC key must be at least ${MIN_KEY_BYTES} bytes, got ${k?.length}`, {
      length: k?.length,
      minLength: MIN_KEY_BYTES,
    });
  }
}

function mac(key: Uint8Array, randomAndExpiry: Uint8Array): Buffer {
  return createHmac('sha256', key).update(LABEL).update(randomAndExpiry).digest();
}

/**
 * `macKeys` may be a list during MAC-key rotation: the first issues, all are accepted by checkChallenge.
 * `random` is injectable for reproducible tests.
 */
export function issueChallenge(
  macKeys: Uint8Array | readonly Uint8Array[],
  now: Date,
  ttlMs: number = DEFAULT_CHALLENGE_TTL_MS,
  random: (n: number) => Uint8Array = (n) => new Uint8Array(randomBytes(n)),
): IssuedChallenge {
  const key = macKeys instanceof Uint8Array ? macKeys : macKeys[0];
  if (key === undefined) throw inputError('PROTOCOL_CHALLENGE_KEY_TOO_SHORT', 'no challenge MAC key configured', {});
  checkKey(key);
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
    throw inputError('PROTOCOL_CHALLENGE_BAD_TTL', `challenge ttl must be a positive integer of milliseconds, got ${ttlMs}`, { ttlMs });
  }
  const expiryMs = now.getTime() + ttlMs;
  const body = new Uint8Array(RANDOM_BYTES + EXPIRY_BYTES);
  const rnd = random(RANDOM_BYTES);
  if (rnd.length !== RANDOM_BYTES) throw inputError('PROTOCOL_CHALLENGE_BAD_RANDOM', 'random source returned the wrong length', { length: rnd.length });
  body.set(rnd, 0);
  new DataView(body.buffer).setBigUint64(RANDOM_BYTES, BigInt(expiryMs), false);
  const nonceBytes = new Uint8Array(CHALLENGE_NONCE_BYTES);
  nonceBytes.set(body, 0);
  nonceBytes.set(mac(key, body), body.length);
  return { nonce: toB64url(nonceBytes), expiresAt: new Date(expiryMs).toISOString(), nonceBytes };
}

/**
 * Checks the MAC first (so nothing is learned from a forged nonce) and then the expiry. Throws
 * PROTOCOL_NONCE_MALFORMED, PROTOCOL_NONCE_FORGED or PROTOCOL_NONCE_EXPIRED.
 */
export function checkChallenge(macKeys: Uint8Array | readonly Uint8Array[], nonce: string, now: Date): CheckedChallenge {
  const keys = macKeys instanceof Uint8Array ? [macKeys] : [...macKeys];
  if (keys.length === 0) throw inputError('PROTOCOL_CHALLENGE_KEY_TOO_SHORT', 'no challenge MAC key configured', {});
  keys.forEach(checkKey);
  if (typeof nonce !== 'string' || nonce.length !== Math.ceil((CHALLENGE_NONCE_BYTES * 4) / 3)) {
    throw reject('PROTOCOL_NONCE_MALFORMED', `nonce must be ${CHALLENGE_NONCE_BYTES} bytes of base64url`, {
      length: typeof nonce === 'string' ? nonce.length : undefined,
    });
  }
  let bytes: Uint8Array;
  try {
    bytes = fromB64url(nonce, 'PROTOCOL_NONCE_MALFORMED', 'nonce');
  } catch (e) {
    throw reject('PROTOCOL_NONCE_MALFORMED', 'nonce is not base64url', { cause: (e as Error).message });
  }
  if (bytes.length !== CHALLENGE_NONCE_BYTES) {
    throw reject('PROTOCOL_NONCE_MALFORMED', `nonce must be ${CHALLENGE_NONCE_BYTES} bytes, got ${bytes.length}`, { length: bytes.length });
  }
  const body = bytes.subarray(0, RANDOM_BYTES + EXPIRY_BYTES);
  const tag = bytes.subarray(RANDOM_BYTES + EXPIRY_BYTES);
  if (!keys.some((k) => timingSafeEqual(mac(k, body), tag))) {
    throw reject('PROTOCOL_NONCE_FORGED', 'nonce was not issued by this verifier (MAC mismatch)', {});
  }
  const expiryMs = Number(new DataView(body.buffer, body.byteOffset, body.byteLength).getBigUint64(RANDOM_BYTES, false));
  const expiresAt = new Date(expiryMs);
  if (now.getTime() >= expiryMs) {
    throw reject('PROTOCOL_NONCE_EXPIRED', `nonce expired at ${expiresAt.toISOString()} (now ${now.toISOString()})`, {
      expiresAt: expiresAt.toISOString(),
      now: now.toISOString(),
    });
  }
  return { nonceBytes: bytes, expiresAt };
}
