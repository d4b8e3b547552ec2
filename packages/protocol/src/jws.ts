import { KeyObject, constants, sign } from 'node:crypto';
import type { CryptoKey, JWK, KeyObject as JoseKeyObject } from 'jose';

/** What jose and node:crypto call a signing key. */
export type SignerKey = CryptoKey | JoseKeyObject | KeyObject;
import { digest, reject } from '@joinguard/core';

export type JwsAlgorithm = 'ES256' | 'ES384' | 'EdDSA' | 'PS256';

const keyObjects = new WeakMap<object, KeyObject>();

function keyObjectOf(key: SignerKey): KeyObject {
  if (key instanceof KeyObject) return key;
  let k = keyObjects.get(key);
  if (k === undefined) {
    k = KeyObject.from(key as Parameters<typeof KeyObject.from>[0]);
    keyObjects.set(key, k);
  }
  return k;
}

function signature(alg: JwsAlgorithm, input: Buffer, key: KeyObject): Buffer {
  switch (alg) {
    case 'ES256':
      return sign('sha256', input, { key, dsaEncoding: 'ieee-p1363' });
    case 'ES384':
      return sign('sha384', input, { key, dsaEncoding: 'ieee-p1363' });
    case 'EdDSA':
      return sign(null, input, key);
    case 'PS256':
      return sign('sha256', input, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
  }
}

/** base64url characters of the largest signature expected: RSA-8192 (PS256 keys are 2048-4096 bits). */
const SIGNATURE_ROOM = 1366;

/**
 * A compact JWS (RFC 7515) over `payload`, signed synchronously with node:crypto. The verifier signs a result
 * and a record on every appraisal; jose's WebCrypto path costs a thread-pool round trip each. Everything we
 * sign this way is verified by jose (verifyResult, openRecord), so the two implementations check each other.
 */
export function compactSign(payload: Uint8Array, header: { alg: JwsAlgorithm; kid: string; typ: string }, key: SignerKey): string {
  // Records carry whole evidence bundles: the payload is encoded once, into the buffer that is both the signing
  // input and, with the signature written after it, the JWS. One flat string comes out of it, not the
  // concatenation of three: the store posts every record to its writer thread, and V8 copies a concatenated
  // string into a flat one to serialise it, which for a record cost three times the copy of a flat one.
  const head = Buffer.from(JSON.stringify(header), 'utf8').toString('base64url');
  const body = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('base64url');
  const signed = head.length + 1 + body.length;
  const jws = Buffer.allocUnsafe(signed + 1 + SIGNATURE_ROOM);
  jws.write(head, 0, 'latin1');
  jws[head.length] = 0x2e;
  jws.write(body, head.length + 1, 'latin1');
  const sig = signature(header.alg, jws.subarray(0, signed), keyObjectOf(key)).toString('base64url');
  if (sig.length > SIGNATURE_ROOM) return `${jws.toString('latin1', 0, signed)}.${sig}`;
  jws[signed] = 0x2e;
  jws.write(sig, signed + 1, 'latin1');
  return jws.toString('latin1', 0, signed + 1 + sig.length);
}

const THUMBPRINT_MEMBERS: Record<string, readonly string[]> = { EC: ['crv', 'kty', 'x', 'y'], OKP: ['crv', 'kty', 'x'], RSA: ['e', 'kty', 'n'], oct: ['k', 'kty'] };

/** RFC 7638: SHA-256 over the JSON of the key type's required members in lexicographic order, base64url. */
export function jwkThumbprintSync(jwk: JWK): string {
  const members = typeof jwk?.kty === 'string' ? THUMBPRINT_MEMBERS[jwk.kty] : undefined;
  if (members === undefined) throw reject('PROTOCOL_BAD_JWK', `cannot compute the JWK thumbprint: unsupported kty ${JSON.stringify(jwk?.kty)}`, {});
  const parts: string[] = [];
  for (const m of members) {
    const v = (jwk as Record<string, unknown>)[m];
    if (typeof v !== 'string' || v.length === 0) throw reject('PROTOCOL_BAD_JWK', `cannot compute the JWK thumbprint: "${m}" is missing or not a string`, { member: m });
    parts.push(`${JSON.stringify(m)}:${JSON.stringify(v)}`);
  }
  return digest('sha256', `{${parts.join(',')}}`, 'base64url');
}
