import { describe, expect, it } from 'vitest';
import { sign, verify } from 'node:crypto';
import { newKeyPair } from '../src/index.js';

describe('newKeyPair', () => {
  it('makes working EC, RSA and Ed25519 pairs whose keys export as JWK', () => {
    const data = Buffer.from('joinguard');
    for (const [spec, alg] of [
      [{ type: 'ec', namedCurve: 'P-256' }, 'sha256'],
      [{ type: 'ec', namedCurve: 'P-384' }, 'sha384'],
      [{ type: 'rsa', modulusLength: 2048 }, 'sha256'],
      [{ type: 'ed25519' }, null],
    ] as const) {
      const { publicKey, privateKey } = newKeyPair(spec);
      expect(publicKey.type, spec.type).toBe('public');
      expect(privateKey.type, spec.type).toBe('private');
      const sig = sign(alg, data, privateKey);
      expect(verify(alg, data, publicKey, sig), spec.type).toBe(true);
      expect(verify(alg, Buffer.from('other'), publicKey, sig), spec.type).toBe(false);
      const jwk = publicKey.export({ format: 'jwk' });
      expect(jwk.kty, spec.type).toBe(spec.type === 'ec' ? 'EC' : spec.type === 'rsa' ? 'RSA' : 'OKP');
      expect(privateKey.export({ format: 'jwk' }).d, spec.type).toBeTypeOf('string');
    }
  });

  it('gives a new key each time', () => {
    const a = newKeyPair({ type: 'ec', namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
    const b = newKeyPair({ type: 'ec', namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
    expect(a.x).not.toBe(b.x);
  });
});
