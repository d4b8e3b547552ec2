// For tests of published vectors only: they were bound to their publisher's challenge, not to a d of ours.
// Nothing in the verifier's configuration or HTTP surface reaches this module.
import type { Evidence } from '@joinguard/protocol';
import { appraiseInternal, type AppraisalContext, type AppraisalOutcome, type ExpectedBinding } from './engine.js';

export type { ExpectedBinding } from './engine.js';

export function appraiseWithExpectedBinding(evidence: Evidence, ctx: AppraisalContext, expected: ExpectedBinding): Promise<AppraisalOutcome> {
  return appraiseInternal(evidence, ctx, expected);
}
