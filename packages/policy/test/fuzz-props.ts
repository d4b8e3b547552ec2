import fc from 'fast-check';
import { isJoinguardError } from '@joinguard/core';
import { checkPolicy, evaluate, learn, loadPolicy, parseClaims, parsePolicy, type AppraisalClaims, type Policy } from '../src/index.js';
import { bootClaims, pcrsFromVector, readExample, snpClaimsFromVector, tdxClaimsFromVector } from './fixtures.js';

// Shared by test/fuzz.test.ts (bounded runs in CI) and scripts/fuzz-policy.ts (the long run).

export interface FuzzFixtures {
  now: Date;
  exampleText: string;
  /** Policy texts whose character-level mutations are fuzzed. */
  texts: string[];
  example: Policy;
  claims: AppraisalClaims[];
}

export function fuzzFixtures(): FuzzFixtures {
  const now = new Date('2026-11-23T10:00:00Z');
  const exampleText = readExample('worker-pool.yaml');
  const pcrs = pcrsFromVector('Rhel8GCE');
  return {
    now,
    exampleText,
    texts: [exampleText, readExample('default-strict.yaml')],
    example: loadPolicy(exampleText, now).policy,
    claims: [
      snpClaimsFromVector(),
      tdxClaimsFromVector(),
      { ...snpClaimsFromVector(), tee: 'azure-snp-vtpm', boot: bootClaims(), tpm: { banks: Object.keys(pcrs), pcrs } },
    ],
  };
}

export type FuzzInput =
  | { kind: 'policy-text'; text: string }
  | { kind: 'policy-doc'; doc: unknown; claims: number }
  | { kind: 'claims'; doc: unknown };

const KEYS = ['tee', 'snp', 'tdx', 'tpm', 'boot', 'policy', 'reportedTcb', 'bootApps', 'pcrs', 'sha256', 'kernelCmdline', 'referenceValues', 'minimumTcb', 'expires', 'notBefore', 'allowed', 'forbidden', 'required', '0', '1', '7', 'value', 'digestSha256', 'measurement', 'boot'];

/** Sets values at random paths of a copy of `base`: most edits keep the shape, some break it. */
function mutateJson(base: unknown): fc.Arbitrary<unknown> {
  return fc
    .array(fc.tuple(fc.array(fc.constantFrom(...KEYS), { minLength: 1, maxLength: 5 }), fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom('', '00', 'ff'.repeat(32), '2026-12-31T00:00:00Z', 'snp', 'UpToDate', '(', '.*'), fc.integer({ min: -1, max: 300 }))), { maxLength: 4 })
    .map((edits) => {
      const c = structuredClone(base) as Record<string, unknown>;
      for (const [path, value] of edits) {
        let node: Record<string, unknown> = c;
        for (const k of path.slice(0, -1)) {
          const next = node[k];
          if (next === null || typeof next !== 'object') break;
          node = next as Record<string, unknown>;
        }
        node[path[path.length - 1]!] = value;
      }
      return c;
    });
}

/** Character-level edits of the example YAML. */
function mutateText(text: string): fc.Arbitrary<string> {
  return fc.array(fc.tuple(fc.nat(text.length), fc.nat(8), fc.string({ maxLength: 6 })), { minLength: 1, maxLength: 6 }).map((edits) => {
    let t = text;
    for (const [at, del, ins] of edits) {
      const i = at % (t.length + 1);
      t = t.slice(0, i) + ins + t.slice(i + del);
    }
    return t;
  });
}

export function fuzzInput(fx: FuzzFixtures): fc.Arbitrary<FuzzInput> {
  return fc.oneof(
    fc.constantFrom(...fx.texts).chain(mutateText).map((text) => ({ kind: 'policy-text' as const, text })),
    fc.tuple(mutateJson(fx.example), fc.nat(fx.claims.length - 1)).map(([doc, claims]) => ({ kind: 'policy-doc' as const, doc, claims })),
    fc.constantFrom(...fx.claims).chain((c) => mutateJson(c)).map((doc) => ({ kind: 'claims' as const, doc })),
  );
}

function onlyInputErrors(f: () => void): boolean {
  try {
    f();
    return true;
  } catch (e) {
    return isJoinguardError(e) && e.kind === 'input';
  }
}

/**
 * The properties: reading policies and claims throws only input JoinguardErrors; a policy that loads
 * and claims that validate are always evaluated (never a throw) with a verdict that agrees with the
 * outcomes; learning from valid claims proposes a policy that passes the schema.
 */
export function fuzzProperty(fx: FuzzFixtures, input: FuzzInput): boolean {
  switch (input.kind) {
    case 'policy-text':
      return onlyInputErrors(() => {
        const p = parsePolicy(input.text);
        checkPolicy(p, fx.now);
      });
    case 'policy-doc': {
      let policy: Policy | undefined;
      const ok = onlyInputErrors(() => {
        policy = loadPolicy(input.doc, fx.now).policy;
      });
      if (!ok) return false;
      if (!policy) return true;
      const a = evaluate(policy, fx.claims[input.claims]!, fx.now);
      return a.verdict === (a.results.some((r) => r.outcome === 'fail') ? 'fail' : 'pass');
    }
    case 'claims': {
      let claims: AppraisalClaims | undefined;
      if (!onlyInputErrors(() => (claims = parseClaims(input.doc)))) return false;
      if (!claims) return true;
      const a = evaluate(fx.example, claims, fx.now);
      if (a.verdict !== (a.failures.length === 0 ? 'pass' : 'fail')) return false;
      const l = learn([claims]);
      parsePolicy(l.policy);
      return true;
    }
  }
}
