import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';

/** The key kinds joinguard makes: EC on a named curve, RSA, Ed25519, X25519. */
export type NewKeySpec = { type: 'ec'; namedCurve: string } | { type: 'rsa'; modulusLength: number } | { type: 'ed25519' } | { type: 'x25519' };

/**
 * A fresh key pair as KeyObjects imported from the generated DER, never the generator's own objects.
 *
 * Node 20's key generation job keeps the new key's mutex, and its destructor takes that mutex when the garbage
 * collector finalises the job; exporting the key as JWK holds the same mutex while it allocates, so a
 * collection at that moment deadlocks the thread (seen once as a hung test in CI: `export({ format: 'jwk' })`
 * of a key from generateKeyPairSync, under ~KeyGenJob). Keys imported from bytes belong to no job.
 */
export function newKeyPair(spec: NewKeySpec): { publicKey: KeyObject; privateKey: KeyObject } {
  const { type, ...options } = spec;
  const der = generateKeyPairSync(type as 'ec', {
    ...(options as { namedCurve: string }),
    publicKeyEncoding: { type: 'spki', format: 'der' },
    privateKeyEncoding: { type: 'pkcs8', format: 'der' },
  });
  return {
    publicKey: createPublicKey({ key: der.publicKey, format: 'der', type: 'spki' }),
    privateKey: createPrivateKey({ key: der.privateKey, format: 'der', type: 'pkcs8' }),
  };
}
