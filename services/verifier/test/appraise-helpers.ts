import { createHash } from 'node:crypto';
import { policyDigest, type Policy } from '@joinguard/policy';
import { canonicalJsonBytes, fromB64url, type Evidence } from '@joinguard/protocol';
import type { SimCvm } from '@joinguard/simcvm';
import { defaultTrust, type AppraisalContext, type AppraisalOutcome } from '../src/appraise/index.js';

export function ctxFor(sim: SimCvm, opts: { policy?: Policy; now?: Date; trustSim?: boolean; collateral?: boolean } = {}): AppraisalContext {
  const policy = opts.policy ?? sim.goodPolicy();
  const trust = opts.trustSim === false ? defaultTrust() : defaultTrust({ snpTestRootsPem: sim.trust.snpRootsPem, tdxTestRootsPem: sim.trust.tdxRootsPem });
  if (opts.collateral !== false && sim.trust.tdxCollateral) trust.tdxCollateral = sim.trust.tdxCollateral;
  return { now: opts.now ?? new Date(), policy, policyRef: { id: policy.name, digest: policyDigest(policy) }, trust };
}

export const failedChecks = (o: AppraisalOutcome): string[] => o.appraisal.checks.filter((c) => c.outcome === 'fail').map((c) => `${c.name}:${c.code}`);
/** Failures before the policy: the first one stops the chain. */
export const chainFailures = (o: AppraisalOutcome): string[] => failedChecks(o).filter((x) => !x.startsWith('policy.'));
export const outcomeOf = (o: AppraisalOutcome, name: string): string | undefined => o.appraisal.checks.find((c) => c.name === name)?.outcome;

/** d recomputed here from the definition (DESIGN.md "Evidence and binding"). */
export function expectedD(ev: Evidence): string {
  const inner = createHash('sha256').update(canonicalJsonBytes(ev.runtimeData)).digest();
  return createHash('sha512').update(fromB64url(ev.nonce, 'X', 'nonce')).update(inner).digest('hex');
}

export const CHAIN = ['evidence.decode', 'binding.reportData', 'binding.akPublic', 'tpm.quote', 'binding.tpmExtraData', 'eventlog.replay', 'teeKey'];
