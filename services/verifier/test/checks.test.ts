import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { asJson } from '../src/appraise/checks.js';

describe('asJson', () => {
  it('gives what JSON.parse(JSON.stringify(v)) gives for JSON-like values', () => {
    const value = fc.letrec((tie) => ({
      leaf: fc.oneof(fc.string(), fc.boolean(), fc.constant(null), fc.constant(undefined), fc.double(), fc.integer()),
      node: fc.oneof({ depthSize: 'small' }, tie('leaf'), fc.array(tie('node'), { maxLength: 4 }), fc.dictionary(fc.string({ maxLength: 6 }), tie('node'), { maxKeys: 4 })),
    })).node;
    fc.assert(
      fc.property(value, (v) => {
        const text = JSON.stringify(v);
        expect(asJson(v)).toEqual(text === undefined ? undefined : JSON.parse(text));
      }),
      { numRuns: 2000 },
    );
  });

  it('writes bytes as hex and bigints as strings, keeps toJSON, and refuses cycles and deep nesting', () => {
    expect(asJson({ b: Uint8Array.of(0, 255), n: 12n, d: new Date('2026-12-01T00:00:00Z'), f: () => 1 })).toEqual({ b: '00ff', n: '12', d: '2026-12-01T00:00:00.000Z' });
    expect(asJson(Buffer.from('ab', 'hex'))).toBe('ab');
    expect(asJson([undefined, Number.NaN, Infinity])).toEqual([null, null, null]);
    expect(Object.is(asJson(-0), 0)).toBe(true);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(asJson(cyclic)).toBeUndefined();
    let deep: unknown = 'x';
    for (let i = 0; i < 70; i++) deep = [deep];
    expect(asJson(deep)).toBeUndefined();
    const shared = { a: 1 };
    expect(asJson([shared, shared])).toEqual([{ a: 1 }, { a: 1 }]);
    // An object met again beside (not inside) itself is no cycle, also through toJSON and at other depths.
    expect(asJson({ a: shared, b: { toJSON: () => shared }, c: [[shared]], d: { e: shared } })).toEqual({ a: { a: 1 }, b: { a: 1 }, c: [[{ a: 1 }]], d: { e: { a: 1 } } });
    const loop: Record<string, unknown> = { toJSON: () => loop };
    expect(asJson({ x: loop })).toBeUndefined();
    const inner: unknown[] = [];
    const outer = [1, [2, [3, inner]]];
    inner.push(outer);
    expect(asJson(outer)).toBeUndefined();
  });
});
