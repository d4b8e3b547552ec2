import { describe, expect, it } from 'vitest';
import { codeOf as code } from '@joinguard/core/testing';
import { fromB64, fromB64url } from '../src/index.js';

describe('strict base64 decoding of evidence fields', () => {
  it('decodes padded and unpadded standard base64 to the same bytes', () => {
    for (const n of [1, 2, 3, 4, 5, 31, 32, 33]) {
      const bytes = Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff));
      const padded = bytes.toString('base64');
      expect(Buffer.from(fromB64(padded, 'X', 'f'))).toEqual(bytes);
      expect(Buffer.from(fromB64(padded.replace(/=+$/, ''), 'X', 'f'))).toEqual(bytes);
      expect(Buffer.from(fromB64(padded, 'X', 'f', true))).toEqual(bytes);
    }
  });

  it('refuses a length no base64 text has (4k+1 characters before the padding), whether or not the charset was checked', () => {
    for (const s of ['A', 'AAAAA', 'AAAAA=', 'AAAAA==', 'A===']) {
      expect(code(() => fromB64(s, 'BAD_FIELD', 'f')), s).toBe('BAD_FIELD');
      expect(code(() => fromB64(s, 'BAD_FIELD', 'f', true)), s).toBe('BAD_FIELD');
    }
  });

  it('refuses characters outside the alphabet unless the caller matched them against the schema pattern already', () => {
    for (const s of ['AA-_', 'AA AA', 'AA==AA', 'AAA*']) expect(code(() => fromB64(s, 'BAD_FIELD', 'f')), s).toBe('BAD_FIELD');
    expect(code(() => fromB64(42 as unknown as string, 'BAD_FIELD', 'f', true))).toBe('BAD_FIELD');
    expect(code(() => fromB64url('AA+/', 'BAD_NONCE', 'nonce'))).toBe('BAD_NONCE');
  });
});
