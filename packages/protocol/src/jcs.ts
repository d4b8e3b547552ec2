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
const wellFormed: (s: string) => boolean =
  typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === 'function'
    ? (s) => (s as unknown as { isWellFormed(): boolean }).isWellFormed()
    : (s) => !LONE_SURROGATE.test(s);

/**
 * One walk that checks `v` is plain JSON and, when `emit`, writes its RFC 8785 form: members sorted by UTF-16
 * code units, strings and numbers as ECMAScript's JSON.stringify writes them (which is what RFC 8785 specifies
 * for both). Checking and serialising in one pass matters: records carry whole evidence bundles.
 */
function walk(v: unknown, emit: boolean, path: string, depth: number, open: Set<object>): string {
  if (depth > MAX_JSON_DEPTH) {
    throw inputError('PROTOCOL_JCS_TOO_DEEP', `canonical JSON: ${path} nests deeper than ${MAX_JSON_DEPTH} levels`, { path, maxDepth: MAX_JSON_DEPTH });
  }
  if (v === null) return 'null';
  switch (typeof v) {
    case 'boolean':
      return v ? 'true' : 'false';
    case 'string':
      if (!wellFormed(v)) bad(path, v, 'a string with a lone UTF-16 surrogate (not valid Unicode)');
      return emit ? JSON.stringify(v) : '';
    case 'number':
      if (!Number.isFinite(v)) bad(path, v, 'not a finite number');
      return emit ? JSON.stringify(v) : '';
    case 'object':
      break;
    default:
      bad(path, v, 'not a JSON value');
  }
  const o = v as object;
  if (open.has(o)) bad(path, o, 'a cycle');
  open.add(o);
  let out = '';
  if (Array.isArray(o)) {
    out = '[';
    for (let i = 0; i < o.length; i++) {
      if (!(i in o)) bad(`${path}[${i}]`, undefined, 'a hole in a sparse array');
      const item = walk(o[i], emit, `${path}[${i}]`, depth + 1, open);
      if (emit) out += i === 0 ? item : `,${item}`;
    }
    out += ']';
  } else {
    const proto = Object.getPrototypeOf(o) as unknown;
    if (proto !== Object.prototype && proto !== null) bad(path, o, 'not a plain object');
    if (Object.getOwnPropertySymbols(o).length > 0) bad(path, o, 'an object with symbol keys');
    const keys = Object.keys(o);
    if (emit) keys.sort();
    out = '{';
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      if (!wellFormed(k)) bad(`${path}.${k}`, k, 'a key with a lone UTF-16 surrogate');
      const member = walk((o as Record<string, unknown>)[k], emit, `${path}.${k}`, depth + 1, open);
      if (emit) out += `${i === 0 ? '' : ','}${JSON.stringify(k)}:${member}`;
    }
    out += '}';
  }
  open.delete(o);
  return emit ? out : '';
}

/**
 * Checks that `v` is plain JSON: null, booleans, finite numbers, well-formed strings, arrays and plain
 * objects. Anything a JSON round trip would silently change (undefined, NaN, -Infinity, bigint, Date,
 * Map, class instances, sparse arrays, cycles) is refused, so that a digest or signature over the canonical
 * form covers exactly what the receiver will parse.
 */
export function assertJsonValue(v: unknown, path = '$'): asserts v is JsonValue {
  walk(v, false, path, 0, new Set());
}

/** RFC 8785 JSON Canonicalization Scheme. Throws PROTOCOL_JCS_INVALID_VALUE for anything that is not plain JSON. */
export function canonicalJson(value: unknown): string {
  return walk(value, true, '$', 0, new Set());
}

/** The UTF-8 bytes of the canonical form: what digests and signatures are computed over. */
export function canonicalJsonBytes(value: unknown): Uint8Array {
  return new Uint8Array(Buffer.from(canonicalJson(value), 'utf8'));
}
