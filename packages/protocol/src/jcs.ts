import canonicalize from 'canonicalize';
import { inputError } from '@joinguard/core';

/** A value that survives JSON unchanged: what RFC 8785 can canonicalise. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * Hostile request bodies can nest deeply; a recursion limit keeps canonicalisation from overflowing the
 * stack. Real evidence and records nest fewer than ten levels.
 */
export const MAX_JSON_DEPTH = 64;

function describe(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'bigint') return 'bigint';
  if (typeof v === 'object' && v !== null) return v.constructor?.name ?? 'object without prototype';
  return typeof v;
}

function bad(path: string, v: unknown, why: string): never {
  throw inputError('PROTOCOL_JCS_INVALID_VALUE', `canonical JSON: ${path} is ${describe(v)}, ${why}`, { path, valueType: describe(v) });
}

// Lone surrogates are not Unicode scalar values; RFC 8785 (I-JSON) requires well-formed strings.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Checks that `v` is plain JSON: null, booleans, finite numbers, well-formed strings, arrays and plain
 * objects. Anything a JSON round trip would silently change (undefined, NaN, -Infinity, bigint, Date,
 * Map, class instances, sparse arrays, cycles) is refused, so that a digest or signature over the canonical
 * form covers exactly what the receiver will parse.
 */
export function assertJsonValue(v: unknown, path = '$', depth = 0, seen: Set<object> = new Set()): asserts v is JsonValue {
  if (depth > MAX_JSON_DEPTH) {
    throw inputError('PROTOCOL_JCS_TOO_DEEP', `canonical JSON: ${path} nests deeper than ${MAX_JSON_DEPTH} levels`, { path, maxDepth: MAX_JSON_DEPTH });
  }
  if (v === null || typeof v === 'boolean') return;
  if (typeof v === 'string') {
    if (LONE_SURROGATE.test(v)) bad(path, v, 'a string with a lone UTF-16 surrogate (not valid Unicode)');
    return;
  }
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) bad(path, v, 'not a finite number');
    return;
  }
  if (typeof v !== 'object') bad(path, v, 'not a JSON value');
  if (seen.has(v)) bad(path, v, 'a cycle');
  seen.add(v);
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      if (!(i in v)) bad(`${path}[${i}]`, undefined, 'a hole in a sparse array');
      assertJsonValue(v[i], `${path}[${i}]`, depth + 1, seen);
    }
  } else {
    const proto = Object.getPrototypeOf(v) as unknown;
    if (proto !== Object.prototype && proto !== null) bad(path, v, 'not a plain object');
    if (Object.getOwnPropertySymbols(v).length > 0) bad(path, v, 'an object with symbol keys');
    for (const [k, x] of Object.entries(v)) {
      if (LONE_SURROGATE.test(k)) bad(`${path}.${k}`, k, 'a key with a lone UTF-16 surrogate');
      assertJsonValue(x, `${path}.${k}`, depth + 1, seen);
    }
  }
  seen.delete(v);
}

/** RFC 8785 JSON Canonicalization Scheme. Throws PROTOCOL_JCS_INVALID_VALUE for anything that is not plain JSON. */
export function canonicalJson(value: unknown): string {
  assertJsonValue(value);
  const out = canonicalize(value);
  if (out === undefined) bad('$', value, 'not serialisable');
  return out;
}

/** The UTF-8 bytes of the canonical form: what digests and signatures are computed over. */
export function canonicalJsonBytes(value: unknown): Uint8Array {
  return new Uint8Array(Buffer.from(canonicalJson(value), 'utf8'));
}
