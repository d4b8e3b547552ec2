import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { digest } from '../src/index.js';

describe('digest', () => {
  it('equals createHash for bytes, UTF-8 text and parts, as bytes or as text', () => {
    const bytes = new Uint8Array([0, 1, 2, 250, 255]);
    const text = 'node é ✓';
    for (const alg of ['sha1', 'sha256', 'sha384', 'sha512']) {
      expect(digest(alg, bytes)).toEqual(createHash(alg).update(bytes).digest());
      expect(digest(alg, text, 'hex')).toBe(createHash(alg).update(text, 'utf8').digest('hex'));
      expect(digest(alg, [bytes, text], 'base64url')).toBe(createHash(alg).update(bytes).update(text, 'utf8').digest('base64url'));
      expect(digest(alg, bytes.subarray(1, 4))).toEqual(createHash(alg).update(bytes.subarray(1, 4)).digest());
    }
  });

  it('refuses an algorithm node:crypto does not have', () => {
    expect(() => digest('no-such-hash', 'x')).toThrow();
  });
});
