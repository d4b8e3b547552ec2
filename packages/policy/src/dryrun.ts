import { reject, type JoinguardError } from '@joinguard/core';
import type { AppraisalClaims } from './claims.js';
import { preparedAppraiser } from './evaluate.js';
import { policyDigest } from './digest.js';
import type { Appraisal, Policy, RuleResult, Verdict } from './types.js';

/** A stored appraisal input: its claims, and the verdict it was given when it was appraised (if kept). */
export interface DryRunItem {
  id?: string;
  claims: AppraisalClaims;
  verdict?: Verdict;
}

export interface DryRunEntry {
  id: string;
  /** The stored verdict, or the current policy's verdict when one is given; undefined when neither is known. */
  oldVerdict?: Verdict;
  newVerdict: Verdict;
  changed: boolean;
  /** Failures under the draft that the old appraisal did not have (rule and place). */
  newFailures: RuleResult[];
  /** Failures of the old appraisal that the draft no longer has (only when the current policy is given). */
  resolvedFailures: RuleResult[];
  draft: Appraisal;
}

export interface DryRunReport {
  policy: { name: string; digest: string };
  evaluatedAt: string;
  total: number;
  passing: number;
  failing: number;
  /** Items whose verdict would change from pass to fail, and from fail to pass. */
  newlyFailing: string[];
  newlyPassing: string[];
  items: DryRunEntry[];
}

function identity(r: RuleResult): string {
  return `${r.rule}|${r.path ?? ''}|${r.eventIndex ?? ''}`;
}

function isItem(x: AppraisalClaims | DryRunItem): x is DryRunItem {
  return typeof x === 'object' && x !== null && 'claims' in x;
}

/**
 * Evaluates a draft policy over stored evidence and compares it with the old verdicts, changing nothing:
 * this is what an operator runs before rolling a policy out to see which nodes it would lock out.
 * The old verdict is the item's stored verdict, else the `current` policy's verdict at the same `now`.
 */
export function dryRun(draft: Policy, items: ReadonlyArray<AppraisalClaims | DryRunItem>, now: Date, current?: Policy): DryRunReport {
  const next = preparedAppraiser(draft, now);
  const old = current ? preparedAppraiser(current, now) : undefined;
  const entries: DryRunEntry[] = items.map((raw, i) => {
    const item: DryRunItem = isItem(raw) ? raw : { claims: raw };
    const id = item.id ?? `#${i}`;
    const after = next(item.claims);
    const before = old?.(item.claims);
    const oldVerdict = item.verdict ?? before?.verdict;
    const oldFailed = new Set((before?.failures ?? []).map(identity));
    const newFailed = new Set(after.failures.map(identity));
    return {
      id,
      ...(oldVerdict === undefined ? {} : { oldVerdict }),
      newVerdict: after.verdict,
      changed: oldVerdict !== undefined && oldVerdict !== after.verdict,
      newFailures: before ? after.failures.filter((f) => !oldFailed.has(identity(f))) : after.failures,
      resolvedFailures: before ? before.failures.filter((f) => !newFailed.has(identity(f))) : [],
      draft: after,
    };
  });
  const first = entries[0]?.draft;
  return {
    policy: first?.policy ?? { name: draft.name, digest: policyDigest(draft) },
    evaluatedAt: now.toISOString(),
    total: entries.length,
    passing: entries.filter((e) => e.newVerdict === 'pass').length,
    failing: entries.filter((e) => e.newVerdict === 'fail').length,
    newlyFailing: entries.filter((e) => e.oldVerdict === 'pass' && e.newVerdict === 'fail').map((e) => e.id),
    newlyPassing: entries.filter((e) => e.oldVerdict === 'fail' && e.newVerdict === 'pass').map((e) => e.id),
    items: entries,
  };
}

/** The rejection of a failed appraisal, naming every failed rule (for the verifier and the CLI). */
export function appraisalError(a: Appraisal): JoinguardError | undefined {
  if (a.verdict === 'pass') return undefined;
  const first = a.failures[0]!;
  const more = a.failures.length > 1 ? ` (and ${a.failures.length - 1} more failed rule(s))` : '';
  return reject('POLICY_REJECTED', `policy ${a.policy.name} rejected the evidence: ${first.rule}: ${first.message}${more}`, {
    policy: a.policy,
    failures: a.failures,
  });
}
