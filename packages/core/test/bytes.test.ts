import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ByteReader, JoinguardError, bigIntToBe, decodeBinaryOrHex, equalBytes, fromHex, leToBigInt, toHex } from '../src/index.js';

describe('ByteReader', () => {
  it('reads little- and big-endian integers in order', () => {
    const r = new ByteReader(fromHex('0102030405060708090a0b0c0d0e0f10')!, { truncatedCode: 'T', what: 'blob' });
    expect(r.u8('a')).toBe(1);
    expect(r.u16le('b')).toBe(0x0302);
    expect(r.u32be('c')).toBe(0x04050607);
    expect(r.u64le('d')).toBe(0x0f0e0d0c0b0a0908n);
    expect(r.remaining).toBe(1);
  });

  it('throws a typed truncation error instead of reading past the end', () => {
    const r = new ByteReader(new Uint8Array(3), { truncatedCode: 'X_TRUNCATED', what: 'thing' });
    r.u16le('first');
    const err = (() => {
      try {
        r.u32le('second');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(JoinguardError);
    expect((err as JoinguardError).code).toBe('X_TRUNCATED');
    expect((err as JoinguardError).details).toMatchObject({ field: 'second', offset: 2, needed: 4, remaining: 1 });
  });

  it('refuses negative and absurd lengths', () => {
    const r = new ByteReader(new Uint8Array(8), { truncatedCode: 'T', what: 'x' });
    expect(() => r.bytes(-1, 'neg')).toThrow(JoinguardError);
    expect(() => r.bytes(2 ** 40, 'huge')).toThrow(JoinguardError);
    expect(() => r.bytes(Number.NaN, 'nan')).toThrow(JoinguardError);
  });
});

describe('encodings', () => {
  it('round-trips little-endian integers through bigint', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 72 }), (b) => {
        const v = leToBigInt(b);
        const be = bigIntToBe(v, b.length);
        expect(equalBytes(be, Uint8Array.from(b).reverse())).toBe(true);
      }),
    );
  });

  it('decodes hex text evidence and leaves binary alone', () => {
    expect(toHex(decodeBinaryOrHex(new TextEncoder().encode('0a0B\n ff\n')))).toBe('0a0bff');
    const bin = new Uint8Array([0x00, 0xff, 0x30]);
    expect(decodeBinaryOrHex(bin)).toBe(bin);
    expect(fromHex('abc')).toBeUndefined();
    expect(fromHex('zz')).toBeUndefined();
  });
});
