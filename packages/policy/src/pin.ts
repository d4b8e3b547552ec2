import { POLICY_ERROR_CODES } from './codes.js';
import type { Policy, RuleResult } from './types.js';

/** The rule of `tpm.pinAk`. It is not one of evaluate()'s rules: it judges the evidence against the node's state. */
export const AK_PIN_RULE = 'tpm.akPinned';

/** What rule `tpm.akPinned` compares: the AK the evidence proved, and the one the node is pinned to. */
export interface AkPinInput {
  /**
   * hex SHA-256 of the TPMT_PUBLIC of the AK that signed the verified quote; absent when the evidence did not
   * verify that far
   */
  akPublicSha256?: string;
  /** the node's pinned AK (hex SHA-256); null when none is pinned yet; absent when the caller does not know (offline) */
  pinned?: string | null;
}

/**
 * Rule `tpm.akPinned` of a policy with `tpm.pinAk: true`: the vTPM AK must be the one the node is pinned to,
 * and a node pinned to none passes (the verifier then pins this AK). Undefined when the policy does not pin
 * AKs, so a policy without the setting appraises exactly as before. The pin is state the verifier keeps per
 * node, which claims do not carry: the caller says what it is (or that it does not know it, which skips the
 * rule, as offline verification must).
 */
export function evaluateAkPin(policy: Policy, input: AkPinInput): RuleResult | undefined {
  if (policy.tpm?.pinAk !== true) return undefined;
  const rule = AK_PIN_RULE;
  const actual = input.akPublicSha256?.toLowerCase();
  const skip = (message: string): RuleResult => ({ rule, outcome: 'skip', expected: null, actual: null, message });
  if (actual === undefined) return skip('the vTPM AK was not verified (no verified quote), so it is not compared with the pin');
  if (input.pinned === undefined) return { ...skip('the AK the node is pinned to is not known here (only the verifier keeps node state)'), actual };
  if (input.pinned === null) return { rule, outcome: 'pass', expected: null, actual, message: `no AK is pinned for this node yet: this pass pins AK ${actual}` };
  const pinned = input.pinned.toLowerCase();
  if (pinned === actual) return { rule, outcome: 'pass', expected: pinned, actual, message: `the vTPM AK is the one pinned for this node (${actual})` };
  return {
    rule,
    outcome: 'fail',
    code: POLICY_ERROR_CODES.akPinMismatch,
    expected: pinned,
    actual,
    message: `the vTPM AK ${actual} is not the AK ${pinned} this node is pinned to: another vTPM claims the node's name (a machine replaced on purpose is unpinned by an admin)`,
  };
}
