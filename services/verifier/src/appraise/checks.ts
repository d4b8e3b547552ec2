import { JoinguardError, isJoinguardError } from '@joinguard/core';
import type { Check, JsonValue } from '@joinguard/protocol';

/** Longest message a Check may carry (protocol checkSchema). */
const MAX_MESSAGE = 2048;

/** Lone UTF-16 surrogates (from hostile certificates, logs or requests) as U+FFFD: checks go into JSON records. */
function wellFormed(s: string): string {
  return (s as unknown as { toWellFormed(): string }).toWellFormed();
}

export function clampMessage(s: string): string {
  return wellFormed(s.length > MAX_MESSAGE ? `${s.slice(0, MAX_MESSAGE - 1)}…` : s);
}

/**
 * A value as JSON, as JSON.parse(JSON.stringify(v)) would give it (undefined members and functions dropped,
 * non-finite numbers as null), with bytes as hex, bigints as strings and lone surrogates in strings and
 * names as U+FFFD (what a record can hold); undefined when it cannot be one
 * (a cycle, or nesting deeper than 64). Converted directly: a policy evaluation yields dozens of these.
 */
export function asJson(v: unknown): JsonValue | undefined {
  const out = toJson(v, 0, []);
  return out === SKIP || out === FAIL ? undefined : out;
}

const SKIP = Symbol('skip');
const FAIL = Symbol('fail');

/** `open` holds the objects being converted, by depth: at most 64, so a scan finds a cycle without a Set. */
function toJson(v: unknown, depth: number, open: object[]): JsonValue | typeof SKIP | typeof FAIL {
  switch (typeof v) {
    case 'string':
      return wellFormed(v);
    case 'boolean':
      return v;
    case 'number':
      // JSON has no -0 (JSON.stringify writes 0).
      return Number.isFinite(v) ? (v === 0 ? 0 : v) : null;
    case 'bigint':
      return v.toString();
    case 'undefined':
    case 'function':
    case 'symbol':
      return SKIP;
  }
  if (v === null) return null;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex');
  if (depth >= 64) return FAIL;
  for (let i = 0; i < depth; i++) if (open[i] === v) return FAIL;
  // Set before anything below looks at open[depth]: the slot may still hold an earlier sibling.
  open[depth] = v as object;
  if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return toJson((v as { toJSON: () => unknown }).toJSON(), depth + 1, open);
  if (Array.isArray(v)) {
    const a: JsonValue[] = [];
    for (const x of v) {
      const j = toJson(x, depth + 1, open);
      if (j === FAIL) return FAIL;
      a.push(j === SKIP ? null : j);
    }
    return a;
  }
  const o: { [k: string]: JsonValue } = {};
  for (const k of Object.keys(v as object)) {
    const j = toJson((v as Record<string, unknown>)[k], depth + 1, open);
    if (j === FAIL) return FAIL;
    if (j !== SKIP) o[wellFormed(k)] = j;
  }
  return o;
}

/** A rejection that carries the expected and actual values into its Check. */
export function mismatch(code: string, message: string, expected: unknown, actual: unknown, details: Record<string, unknown> = {}): JoinguardError {
  return new JoinguardError(code, message, { ...details, expected, actual }, { kind: 'rejected' });
}

/**
 * Runs the hardware, crypto and binding checks in order. The first failure stops the chain: later checks are
 * recorded as skipped (naming the failure), since their inputs are no longer trustworthy. Internal faults
 * (kind `internal`) propagate; anything else a check throws is a failed check, never an exception.
 */
export class CheckRun {
  readonly checks: Check[] = [];
  private firstFailure: string | undefined;

  get failed(): boolean {
    return this.firstFailure !== undefined;
  }

  async step<T>(name: string, fn: () => T | Promise<T>, describe?: (r: T) => { message?: string; expected?: unknown; actual?: unknown }): Promise<T | undefined> {
    if (this.firstFailure !== undefined) {
      this.skip(name, `not checked: ${this.firstFailure} failed`);
      return undefined;
    }
    try {
      const r = await fn();
      const d = describe?.(r) ?? {};
      const c: Check = { name, outcome: 'pass' };
      const exp = asJson(d.expected);
      const act = asJson(d.actual);
      if (exp !== undefined) c.expected = exp;
      if (act !== undefined) c.actual = act;
      if (d.message) c.message = clampMessage(d.message);
      this.checks.push(c);
      return r;
    } catch (e) {
      this.fail(name, e);
      return undefined;
    }
  }

  skip(name: string, message: string): void {
    this.checks.push({ name, outcome: 'skip', message: clampMessage(message) });
  }

  fail(name: string, e: unknown): void {
    if (isJoinguardError(e) && e.kind === 'internal') throw e;
    const c: Check = { name, outcome: 'fail' };
    if (isJoinguardError(e)) {
      c.code = /^[A-Z][A-Z0-9_]{0,63}$/.test(e.code) ? e.code : 'APPRAISE_CHECK_FAILED';
      c.message = clampMessage(e.message);
      const exp = asJson(e.details.expected);
      const act = asJson(e.details.actual);
      if (exp !== undefined) c.expected = exp;
      if (act !== undefined) c.actual = act;
    } else {
      // A library threw on hostile input in a way no package anticipated: fail closed, do not crash the verifier.
      c.code = 'APPRAISE_UNEXPECTED_ERROR';
      c.message = clampMessage(`${name}: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.checks.push(c);
    this.firstFailure ??= name;
  }
}
