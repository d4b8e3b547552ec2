import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { JoinguardError } from '@joinguard/core';
import canonicalize from 'canonicalize';
import { assertJsonValue, canonicalJson, canonicalJsonBytes } from '../src/index.js';

function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return e instanceof JoinguardError ? e.code : `foreign:${String(e)}`;
  }
  return undefined;
}

const f64 = (hex: string): number => Buffer.from(hex, 'hex').readDoubleBE(0);

describe('canonicalJson (RFC 8785)', () => {
  it('serialises the RFC 8785 §3.2.4 example', () => {
    // Input and output as printed in RFC 8785 section 3.2.4.
    const input = JSON.parse(
      '{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],' +
        '"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}',
    );
    expect(canonicalJson(input)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  it('sorts keys by UTF-16 code units (RFC 8785 §3.2.3 example)', () => {
    const input = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    const out = canonicalJson(input);
    const keys = Object.keys(JSON.parse(out) as object);
    // JSON.parse keeps insertion order for non-index keys, except "1" which JS hoists; compare the text instead.
    expect(keys).toContain('1');
    const order = ['\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33'].map((k) => out.indexOf(JSON.stringify(k) + ':'));
    expect(order.every((p, i) => p > 0 && (i === 0 || p > order[i - 1]!))).toBe(true);
    expect(out.startsWith('{"\\r":"Carriage Return","1":"One","\u0080":"Control"')).toBe(true);
  });

  it('serialises numbers as RFC 8785 Appendix B lists', () => {
    const table: [string, string][] = [
      ['0000000000000000', '0'],
      ['8000000000000000', '0'],
      ['0000000000000001', '5e-324'],
      ['8000000000000001', '-5e-324'],
      ['7fefffffffffffff', '1.7976931348623157e+308'],
      ['ffefffffffffffff', '-1.7976931348623157e+308'],
      ['4340000000000000', '9007199254740992'],
      ['c340000000000000', '-9007199254740992'],
      ['4430000000000000', '295147905179352830000'],
      ['44b52d02c7e14af5', '9.999999999999997e+22'],
      ['44b52d02c7e14af6', '1e+23'],
      ['44b52d02c7e14af7', '1.0000000000000001e+23'],
      ['444b1ae4d6e2ef4e', '999999999999999700000'],
      ['444b1ae4d6e2ef4f', '999999999999999900000'],
      ['444b1ae4d6e2ef50', '1e+21'],
      ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
      ['3eb0c6f7a0b5ed8d', '0.000001'],
      ['41b3de4355555553', '333333333.3333332'],
      ['41b3de4355555554', '333333333.33333325'],
      ['41b3de4355555555', '333333333.3333333'],
      ['41b3de4355555556', '333333333.3333334'],
      ['41b3de4355555557', '333333333.33333343'],
      ['becbf647612f3696', '-0.0000033333333333333333'],
      ['43143ff3c1cb0959', '1424953923781206.2'],
    ];
    for (const [hex, want] of table) expect(canonicalJson(f64(hex)), hex).toBe(want);
    expect(code(() => canonicalJson(f64('7fffffffffffffff')))).toBe('PROTOCOL_JCS_INVALID_VALUE');
    expect(code(() => canonicalJson(f64('7ff0000000000000')))).toBe('PROTOCOL_JCS_INVALID_VALUE');
  });

  it('refuses values that are not plain JSON with a typed error', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    let deep: unknown = 1;
    for (let i = 0; i < 200; i++) deep = [deep];
    const bad: [string, unknown][] = [
      ['undefined', undefined],
      ['NaN', NaN],
      ['-Infinity', -Infinity],
      ['bigint', 1n],
      ['nested undefined', { a: { b: undefined } }],
      ['undefined in array', [1, undefined]],
      ['function', { f: () => 1 }],
      ['symbol', Symbol('x')],
      ['Date', new Date(0)],
      ['Map', new Map()],
      ['Uint8Array', new Uint8Array(2)],
      ['sparse array', [1, , 3]],
      ['cycle', cyclic],
      ['lone surrogate', '\ud800'],
      ['lone surrogate key', { '\udc00': 1 }],
    ];
    for (const [what, v] of bad) expect(code(() => canonicalJson(v)), what).toBe('PROTOCOL_JCS_INVALID_VALUE');
    expect(code(() => canonicalJson(deep))).toBe('PROTOCOL_JCS_TOO_DEEP');
  });

  it('writes exactly what the canonicalize library (an independent RFC 8785 implementation) writes', () => {
    const json = fc.jsonValue({ maxDepth: 6 }).map((v) => JSON.parse(JSON.stringify(v)) as unknown);
    const text = fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary' }).filter((x) => (x as unknown as { isWellFormed(): boolean }).isWellFormed()));
    fc.assert(
      fc.property(fc.oneof(json, fc.dictionary(text, json, { maxKeys: 8 }), fc.dictionary(text, fc.integer(), { minKeys: 12, maxKeys: 40 }), fc.array(fc.oneof(text, fc.double({ noNaN: true, noDefaultInfinity: true })))), (v) => {
        expect(canonicalJson(v)).toBe(canonicalize(v));
        expect(() => assertJsonValue(v)).not.toThrow();
      }),
      { numRuns: 3000 },
    );
  });

  it('names the path of the refused value', () => {
    const details = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as JoinguardError).details;
      }
      return undefined;
    };
    expect(details(() => canonicalJson({ a: [1, { b: NaN }] }))).toMatchObject({ path: '$.a[1].b', valueType: 'NaN' });
    expect(details(() => assertJsonValue({ x: { y: [0, 1, undefined] } }, '$.body'))).toMatchObject({ path: '$.body.x.y[2]', valueType: 'undefined' });
    const cyclic: Record<string, unknown> = { k: { l: [] } };
    ((cyclic.k as { l: unknown[] }).l).push(cyclic);
    expect(details(() => canonicalJson({ z: cyclic }))).toMatchObject({ path: '$.z.k.l[0]' });
    let deep: unknown = 1;
    for (let i = 0; i < 70; i++) deep = { d: deep };
    expect(details(() => canonicalJson(deep))).toMatchObject({ path: `$${'.d'.repeat(65)}`, maxDepth: 64 });
  });

  it('refuses a lone surrogate in a key or a string, and a cycle, when only checking too', () => {
    const cyclic: Record<string, unknown> = { a: [] };
    (cyclic.a as unknown[]).push(cyclic);
    for (const v of [{ ['k\uD800']: 1 }, ['\uDC00x'], cyclic]) {
      expect(() => assertJsonValue(v)).toThrow(JoinguardError);
      expect(() => canonicalJson(v)).toThrow(JoinguardError);
    }
    const shared = { x: 1 };
    expect(canonicalJson({ b: shared, a: shared })).toBe('{"a":{"x":1},"b":{"x":1}}');
  });

  it('leaves out symbol-named and non-enumerable members, as JSON.stringify does, so the text is all that is signed', () => {
    const v: Record<string | symbol, unknown> = { b: 2, a: 1 };
    v[Symbol('hidden')] = 'not JSON';
    Object.defineProperty(v, 'c', { value: 3, enumerable: false });
    expect(canonicalJson(v)).toBe('{"a":1,"b":2}');
    expect(canonicalJson(v)).toBe(canonicalize(JSON.parse(JSON.stringify(v))));
    expect(() => assertJsonValue(v)).not.toThrow();
  });

  it('is idempotent and agrees with JSON.parse for arbitrary JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const c = canonicalJson(v);
        expect(canonicalJson(JSON.parse(c))).toBe(c);
        expect(new TextDecoder().decode(canonicalJsonBytes(v))).toBe(c);
      }),
      { numRuns: 300 },
    );
  });
});
