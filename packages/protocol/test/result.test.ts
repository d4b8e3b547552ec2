import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SignJWT, UnsecuredJWT } from 'jose';
import Ajv from 'ajv';
import { JoinguardError } from '@joinguard/core';
import {
  activeKey,
  attestationResultClaimsSchema,
  allKeys,
  emptyKeyRing,
  generateSigningKey,
  jwkThumbprint,
  publishedJwks,
  rotateKey,
  signResult,
  signingKeyFromJwk,
  verifyResult,
} from '../src/index.js';
import type { AttestationResultClaims } from '../src/index.js';

const t0 = new Date('2026-11-23T10:00:00Z');
const iat = t0.getTime() / 1000;

function claims(over: Partial<AttestationResultClaims> = {}): AttestationResultClaims {
  return {
    sub: 'worker-0',
    jti: 'rec-1',
    iat,
    exp: iat + 600,
    verdict: 'pass',
    tee: 'snp',
    purpose: 'join',
    tcb: { status: 'ok', versions: { bootloader: 3, tee: 0, snp: 8, microcode: 115 } },
    measurements: { measurement: 'ab'.repeat(48) },
    bindings: { teeKeyThumbprint: 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs', kubeletKeySha256: 'cd'.repeat(32) },
    policy: { id: 'workers', digest: 'ef'.repeat(32) },
    ...over,
  };
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    return e instanceof JoinguardError ? e.code : `foreign:${String(e)}`;
  }
  return undefined;
}

describe('attestation result JWTs', () => {
  it('round-trips and the ES256 signature verifies with node:crypto too', async () => {
    const k = await generateSigningKey();
    const jwks = { keys: [k.publicJwk] };
    const jwt = await signResult(claims(), k.privateKey, k.kid);
    const got = await verifyResult(jwt, jwks, { now: new Date(t0.getTime() + 1000) });
    expect(got).toEqual(claims());

    const [h, p, s] = jwt.split('.') as [string, string, string];
    expect(JSON.parse(Buffer.from(h, 'base64url').toString())).toEqual({ alg: 'ES256', kid: k.kid, typ: 'joinguard-result+jwt' });
    const pub = createPublicKey({ key: k.publicJwk as import('node:crypto').JsonWebKey, format: 'jwk' });
    const ok = nodeVerify('sha256', Buffer.from(`${h}.${p}`), { key: pub, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'));
    expect(ok).toBe(true);
  });

  it('refuses a tampered payload, a wrong key, an unknown kid and an expired result', async () => {
    const k = await generateSigningKey();
    const other = await generateSigningKey();
    const jwks = { keys: [k.publicJwk] };
    const now = new Date(t0.getTime() + 1000);
    const jwt = await signResult(claims(), k.privateKey, k.kid);
    const [h, , s] = jwt.split('.');
    const forged = Buffer.from(JSON.stringify({ ...claims(), verdict: 'pass', sub: 'attacker' })).toString('base64url');
    expect(await codeOf(verifyResult(`${h}.${forged}.${s}`, jwks, { now }))).toBe('PROTOCOL_RESULT_BAD_SIGNATURE');
    // signed by another key but claiming our kid
    const wrong = await signResult(claims(), other.privateKey, k.kid);
    expect(await codeOf(verifyResult(wrong, jwks, { now }))).toBe('PROTOCOL_RESULT_BAD_SIGNATURE');
    const unknown = await signResult(claims(), other.privateKey, other.kid);
    expect(await codeOf(verifyResult(unknown, jwks, { now }))).toBe('PROTOCOL_RESULT_UNKNOWN_KEY');
    expect(await codeOf(verifyResult(jwt, jwks, { now: new Date((iat + 600) * 1000) }))).toBe('PROTOCOL_RESULT_EXPIRED');
    expect(await codeOf(verifyResult(jwt, jwks, { now: new Date((iat + 600) * 1000), clockToleranceSec: 5 }))).toBeUndefined();
  });

  it('checks audience, typ, alg and claim shape', async () => {
    const k = await generateSigningKey();
    const jwks = { keys: [k.publicJwk] };
    const now = new Date(t0.getTime() + 1000);
    const jwt = await signResult(claims({ aud: 'approver' }), k.privateKey, k.kid);
    expect((await verifyResult(jwt, jwks, { now, audience: 'approver' })).aud).toBe('approver');
    expect(await codeOf(verifyResult(jwt, jwks, { now, audience: 'key-broker' }))).toBe('PROTOCOL_RESULT_BAD_CLAIM');
    // same key, other token type: must not pass as a result
    const other = await new SignJWT({ ...claims() }).setProtectedHeader({ alg: 'ES256', kid: k.kid, typ: 'JWT' }).sign(k.privateKey);
    expect(await codeOf(verifyResult(other, jwks, { now }))).toBe('PROTOCOL_RESULT_BAD_CLAIM');
    const bad = await new SignJWT({ ...claims(), verdict: 'maybe' }).setProtectedHeader({ alg: 'ES256', kid: k.kid, typ: 'joinguard-result+jwt' }).sign(k.privateKey);
    expect(await codeOf(verifyResult(bad, jwks, { now }))).toBe('PROTOCOL_RESULT_BAD_CLAIMS');
    const none = new UnsecuredJWT({ ...claims() }).encode();
    const withKid = `${Buffer.from(JSON.stringify({ alg: 'none', kid: k.kid })).toString('base64url')}.${none.split('.')[1]}.`;
    expect(['PROTOCOL_RESULT_ALG_NOT_ALLOWED', 'PROTOCOL_RESULT_MALFORMED']).toContain(await codeOf(verifyResult(withKid, jwks, { now })));
    expect(await codeOf(verifyResult('not.a.jwt', jwks, { now }))).toBe('PROTOCOL_RESULT_MALFORMED');
    expect(await codeOf(verifyResult('x'.repeat(20000), jwks, { now }))).toBe('PROTOCOL_RESULT_MALFORMED');
    expect(await codeOf(signResult(claims({ exp: iat }), k.privateKey, k.kid))).toBe('PROTOCOL_RESULT_BAD_CLAIMS');
  });

  it('a passing result must name its teeKey; a failed one may name none, but never an empty one', async () => {
    const k = await generateSigningKey();
    const jwks = { keys: [k.publicJwk] };
    const now = new Date(t0.getTime() + 1000);
    expect(await codeOf(signResult(claims({ bindings: {} }), k.privateKey, k.kid))).toBe('PROTOCOL_RESULT_BAD_CLAIMS');
    expect(await codeOf(signResult(claims({ verdict: 'fail', bindings: { teeKeyThumbprint: '' } }), k.privateKey, k.kid))).toBe('PROTOCOL_RESULT_BAD_CLAIMS');
    const failed = await signResult(claims({ verdict: 'fail', bindings: {} }), k.privateKey, k.kid);
    expect((await verifyResult(failed, jwks, { now })).bindings).toEqual({});
    // The JSON Schema of the claims (the OpenAPI document's) says the same.
    const valid = new Ajv({ strict: false }).compile(attestationResultClaimsSchema);
    expect(valid({ ...claims({ verdict: 'fail', bindings: {} }), iss: 'joinguard:c' })).toBe(true);
    expect(valid({ ...claims({ bindings: {} }), iss: 'joinguard:c' })).toBe(false);
    expect(valid({ ...claims(), iss: 'joinguard:c' })).toBe(true);
  });

  it('supports ES384 and loads keys from a private JWK', async () => {
    const k = await generateSigningKey('ES384');
    const jwt = await signResult(claims(), k.privateKey, k.kid, { alg: 'ES384' });
    expect((await verifyResult(jwt, { keys: [k.publicJwk] }, { now: t0 })).sub).toBe('worker-0');
    expect(await codeOf(verifyResult(jwt, { keys: [k.publicJwk] }, { now: t0, algorithms: ['ES256'] }))).toBe('PROTOCOL_RESULT_ALG_NOT_ALLOWED');
    const { exportJWK } = await import('jose');
    const priv = await exportJWK(k.privateKey);
    const loaded = await signingKeyFromJwk(priv, 'ES384');
    expect(loaded.kid).toBe(k.kid);
    expect(await codeOf(signingKeyFromJwk(k.publicJwk))).toBe('PROTOCOL_BAD_JWK');
  });

  it('computes RFC 7638 thumbprints (the RFC 7638 §3.1 example)', async () => {
    const jwk = {
      kty: 'RSA',
      e: 'AQAB',
      n:
        '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
    };
    expect(await jwkThumbprint(jwk)).toBe('NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');
  });
});

describe('key ring rotation', () => {
  it('keeps a retired key published until its results have expired', async () => {
    const k1 = await generateSigningKey();
    const k2 = await generateSigningKey();
    let ring = rotateKey(emptyKeyRing(), k1.publicJwk, t0, 600);
    const jwt1 = await signResult(claims(), k1.privateKey, k1.kid);
    const tRot = new Date(t0.getTime() + 60_000);
    ring = rotateKey(ring, k2.publicJwk, tRot, 600);
    expect(activeKey(ring)?.jwk.kid).toBe(k2.kid);
    const before = publishedJwks(ring, new Date(tRot.getTime() + 599_000));
    expect(before.keys.map((k) => k.kid).sort()).toEqual([k1.kid, k2.kid].sort());
    expect((await verifyResult(jwt1, before, { now: new Date(t0.getTime() + 500_000) })).jti).toBe('rec-1');
    const after = publishedJwks(ring, new Date(tRot.getTime() + 600_000));
    expect(after.keys.map((k) => k.kid)).toEqual([k2.kid]);
    expect(await codeOf(verifyResult(jwt1, after, { now: new Date(t0.getTime() + 500_000) }))).toBe('PROTOCOL_RESULT_UNKNOWN_KEY');
    expect(allKeys(ring).keys).toHaveLength(2);
    expect(after.keys.every((k) => !('d' in k))).toBe(true);
    expect(() => rotateKey(ring, k2.publicJwk, tRot, 600)).toThrow(JoinguardError);
  });
});
