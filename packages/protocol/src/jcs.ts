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

/** Where a walk is: the ancestors and the member names on the way down, indexed by depth. */
interface Walk {
  /** whether to write the canonical text; false when only checking */
  out: boolean;
  /** the canonical text so far */
  text: string;
  /** the path of the value the walk started at */
  root: string;
  open: object[];
  trail: (string | number)[];
}

function pathOf(w: Walk, depth: number): string {
  let path = w.root;
  for (let i = 1; i <= depth && i < w.trail.length; i++) {
    const k = w.trail[i]!;
    path += typeof k === 'number' ? `[${k}]` : `.${k}`;
  }
  return path;
}

function bad(w: Walk, depth: number, v: unknown, why: string): never {
  const path = pathOf(w, depth);
  throw inputError('PROTOCOL_JCS_INVALID_VALUE', `canonical JSON: ${path} is ${describe(v)}, ${why}`, { path, valueType: describe(v) });
}

// Lone surrogates are not Unicode scalar values; RFC 8785 (I-JSON) requires well-formed strings.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const wellFormed: (s: string) => boolean =
  typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === 'function'
    ? (s) => (s as unknown as { isWellFormed(): boolean }).isWellFormed()
    : (s) => !LONE_SURROGATE.test(s);

/** What JSON.stringify escapes in a well-formed string: the quote, the backslash and C0 controls. */
const NEEDS_ESCAPE = /["\\\u0000-\u001f]/;

/**
 * Sorts member names by UTF-16 code units, as Array.prototype.sort does by default. Small objects, the most
 * common kind and often in order already, take an insertion sort, which is several times faster there.
 */
function sortKeys(keys: string[]): void {
  if (keys.length > 16) {
    keys.sort();
    return;
  }
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i]!;
    let j = i - 1;
    if (keys[j]! <= k) continue;
    while (j >= 0 && keys[j]! > k) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = k;
  }
}

// Records repeat the same few dozen member names: their quoted forms are kept (short names, a bounded number,
// so hostile bodies with random names only fill it once).
const MEMBER_NAMES = new Map<string, string>();
function memberName(k: string): string {
  let t = MEMBER_NAMES.get(k);
  if (t === undefined) {
    t = `${JSON.stringify(k)}:`;
    if (k.length <= 32 && MEMBER_NAMES.size < 4096) MEMBER_NAMES.set(k, t);
  }
  return t;
}

/**
 * One walk that checks `v` is plain JSON and, when `out`, appends its RFC 8785 form to `text`: members
 * sorted by UTF-16 code units, strings and numbers as ECMAScript's JSON.stringify writes them (which is what
 * RFC 8785 specifies for both). Records carry whole evidence bundles, so the walk allocates as little as it
 * can: the ancestors (for cycles) and the member names on the way down (for error paths) live in two arrays
 * indexed by depth, and the path is only spelled out when a value is refused.
 */
function walk(v: unknown, depth: number, w: Walk): void {
  if (depth > MAX_JSON_DEPTH) {
    const path = pathOf(w, depth);
    throw inputError('PROTOCOL_JCS_TOO_DEEP', `canonical JSON: ${path} nests deeper than ${MAX_JSON_DEPTH} levels`, { path, maxDepth: MAX_JSON_DEPTH });
  }
  if (v === null) {
    if (w.out) w.text += 'null';
    return;
  }
  switch (typeof v) {
    case 'boolean':
      if (w.out) w.text += v ? 'true' : 'false';
      return;
    case 'string':
      if (!wellFormed(v)) bad(w, depth, v, 'a string with a lone UTF-16 surrogate (not valid Unicode)');
      // Most strings (names, hex, base64) need no escape: quoted as they are, they are not copied here.
      if (w.out) w.text += NEEDS_ESCAPE.test(v) ? JSON.stringify(v) : `"${v}"`;
      return;
    case 'number':
      if (!Number.isFinite(v)) bad(w, depth, v, 'not a finite number');
      // Number::toString, as JSON.stringify writes a finite number (-0 as 0).
      if (w.out) w.text += `${v}`;
      return;
    case 'object':
      break;
    default:
      bad(w, depth, v, 'not a JSON value');
  }
  const o = v as object;
  for (let i = 0; i < depth; i++) if (w.open[i] === o) bad(w, depth, o, 'a cycle');
  w.open[depth] = o;
  const out = w.out;
  if (Array.isArray(o)) {
    if (out) w.text += '[';
    for (let i = 0; i < o.length; i++) {
      w.trail[depth + 1] = i;
      if (!(i in o)) bad(w, depth + 1, undefined, 'a hole in a sparse array');
      if (out && i > 0) w.text += ',';
      walk(o[i], depth + 1, w);
    }
    if (out) w.text += ']';
    return;
  }
  const proto = Object.getPrototypeOf(o) as unknown;
  if (proto !== Object.prototype && proto !== null) bad(w, depth, o, 'not a plain object');
  // Members named by symbols, like non-enumerable ones, are not JSON data: left out, as JSON.stringify leaves
  // them (the canonical text, which is what is signed and what a receiver parses, has none). Not looked for:
  // Object.getOwnPropertySymbols on every object was a third of the time of canonicalising a record.
  const keys = Object.keys(o);
  if (out) {
    sortKeys(keys);
    w.text += '{';
  }
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    w.trail[depth + 1] = k;
    if (!wellFormed(k)) bad(w, depth + 1, k, 'a key with a lone UTF-16 surrogate');
    if (out) w.text += i === 0 ? memberName(k) : `,${memberName(k)}`;
    walk((o as Record<string, unknown>)[k], depth + 1, w);
  }
  if (out) w.text += '}';
}

/**
 * Checks that `v` is plain JSON: null, booleans, finite numbers, well-formed strings, arrays and plain
 * objects. Anything a JSON round trip would silently change (undefined, NaN, -Infinity, bigint, Date,
 * Map, class instances, sparse arrays, cycles) is refused, so that a digest or signature over the canonical
 * form covers exactly what the receiver will parse. Members JSON has no notation for (symbol-named or
 * non-enumerable) are not part of the value, as for JSON.stringify.
 */
export function assertJsonValue(v: unknown, path = '$'): asserts v is JsonValue {
  walk(v, 0, { out: false, text: '', root: path, open: [], trail: [] });
}

/** RFC 8785 JSON Canonicalization Scheme. Throws PROTOCOL_JCS_INVALID_VALUE for anything that is not plain JSON. */
export function canonicalJson(value: unknown): string {
  const w: Walk = { out: true, text: '', root: '$', open: [], trail: [] };
  walk(value, 0, w);
  return w.text;
}

/** The UTF-8 bytes of the canonical form: what digests and signatures are computed over. */
export function canonicalJsonBytes(value: unknown): Uint8Array {
  return new Uint8Array(Buffer.from(canonicalJson(value), 'utf8'));
}
