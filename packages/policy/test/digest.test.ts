import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { stringify as toYaml } from 'yaml';
import { canonicalJson } from '@joinguard/protocol';
import { checkPolicy, defaultPolicy, loadPolicy, parsePolicy, policyDigest, type Policy } from '../src/index.js';
import { basePolicy, readExample, thrown } from './fixtures.js';

/** Reorders every object's keys (reversed), leaving arrays and values alone. */
function reorder(x: unknown, pick: (keys: string[]) => string[]): unknown {
  if (Array.isArray(x)) return x.map((v) => reorder(v, pick));
  if (x !== null && typeof x === 'object') {
    const o = x as Record<string, unknown>;
    return Object.fromEntries(pick(Object.keys(o)).map((k) => [k, reorder(o[k], pick)]));
  }
  return x;
}

/**
 * An independent canonical form for policies, which hold only strings, integers, booleans, arrays and
 * objects: for such data RFC 8785 is JSON.stringify with keys sorted by UTF-16 code units.
 */
function sortedJson(x: unknown): string {
  if (Array.isArray(x)) return `[${x.map(sortedJson).join(',')}]`;
  if (x !== null && typeof x === 'object') {
    const o = x as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${sortedJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(x);
}

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

describe('policy digest', () => {
  const example = parsePolicy(readExample('worker-pool.yaml'));

  it('is SHA-256 of the canonical JSON', () => {
    expect(policyDigest(example)).toBe(sha256(sortedJson(example)));
    expect(policyDigest(defaultPolicy())).toBe(sha256(sortedJson(defaultPolicy())));
  });

  it('does not depend on key order, YAML versus JSON, or layout', () => {
    const d = policyDigest(example);
    const reversed = reorder(example, (k) => [...k].reverse()) as Policy;
    expect(JSON.stringify(reversed)).not.toBe(JSON.stringify(example));
    expect(policyDigest(reversed)).toBe(d);
    expect(policyDigest(parsePolicy(JSON.stringify(reversed, null, 4)))).toBe(d);
    expect(policyDigest(parsePolicy(toYaml(reversed)))).toBe(d);
  });

  it('is stable under any key permutation (property)', () => {
    const d = policyDigest(example);
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        let s = seed;
        const shuffle = (keys: string[]) => {
          const a = [...keys];
          for (let i = a.length - 1; i > 0; i--) {
            s = (Math.imul(s, 1103515245) + 12345) | 0;
            const j = Math.abs(s) % (i + 1);
            [a[i], a[j]] = [a[j]!, a[i]!];
          }
          return a;
        };
        return policyDigest(reorder(example, shuffle) as Policy) === d;
      }),
      { numRuns: 200 },
    );
  });

  it('changes when any value changes', () => {
    const d = policyDigest(example);
    const changed = structuredClone(example);
    changed.referenceValues![2]!.expires = '2027-01-01T00:00:00Z';
    expect(policyDigest(changed)).not.toBe(d);
    const order = structuredClone(example);
    order.tee.allowed.reverse();
    // Array order is meaning (and JCS keeps it): a different digest.
    expect(policyDigest(order)).not.toBe(d);
  });

  it('is over protocol\'s canonical JSON, the form records are written in', () => {
    expect(policyDigest(example)).toBe(sha256(canonicalJson(example)));
    const emoji = parsePolicy(JSON.stringify(basePolicy({ description: 'pool \ud83d\ude00' })));
    expect(policyDigest(emoji)).toBe(sha256(sortedJson(emoji)));
  });
});

describe('a policy RFC 8785 cannot canonicalize', () => {
  const now = new Date('2026-11-23T10:00:00Z');
  // YAML and JSON escapes can spell a lone UTF-16 surrogate; protocol's JCS (records) refuses one.
  const yamlText = ['apiVersion: joinguard.io/v1alpha1', 'kind: AppraisalPolicy', 'name: x', 'description: "\\ud800"', 'tee: {allowed: [snp]}'].join('\n');
  const jsonText = JSON.stringify(basePolicy({ referenceValues: [{ id: 'os', version: '1', boot: { kernelCmdline: ['ro \udc00'] } }] }));

  it('is refused when loaded, with POLICY_JCS_INVALID at the string\'s path', () => {
    for (const [text, path] of [
      [yamlText, '$.description'],
      [jsonText, '$.referenceValues[0].boot.kernelCmdline[0]'],
    ] as const) {
      const p = parsePolicy(text);
      expect(checkPolicy(p, now).errors).toEqual([expect.objectContaining({ path, code: 'POLICY_JCS_INVALID' })]);
      const e = thrown(() => loadPolicy(text, now));
      expect(e.code).toBe('POLICY_SEMANTIC');
      expect(e.kind).toBe('input');
      expect(e.message).toContain(path);
      expect(e.message).toContain('surrogate');
    }
  });

  it('has no digest: policyDigest throws POLICY_INVALID naming the path', () => {
    const e = thrown(() => policyDigest(parsePolicy(yamlText)));
    expect(e).toMatchObject({ code: 'POLICY_INVALID', kind: 'input', details: { path: '$.description', cause: 'PROTOCOL_JCS_INVALID_VALUE' } });
  });
});
