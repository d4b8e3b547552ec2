// The appraisal of evidence bundles from the command line, shared by `joinguard verify`, `joinguard policy
// learn|dry-run` (evidence in place of claims) and `joinguard audit verify --reappraise`: the trust options,
// reading a bundle, and the engine of the verifier service itself (its public face, @joinguard/verifier).
import { existsSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { inputError, readInputFile } from '@joinguard/core';
import { defaultPolicy, policyDigest, type AppraisalClaims, type Policy } from '@joinguard/policy';
import type { Check, Evidence } from '@joinguard/protocol';
import { appraiseEvidence, defaultTrust, type AppraisalOutcome, type AppraisalTrust } from '@joinguard/verifier';
import { usage } from './output.js';

export type { AppraisalOutcome } from '@joinguard/verifier';

/** Evidence bundles may carry whole event logs; 16 MiB is the limit of `joinguard verify` and of records. */
export const MAX_EVIDENCE_BYTES = 16 * 1024 * 1024;

export interface TrustOpts {
  snpTestRoot?: string[];
  tdxTestRoot?: string[];
  tdxCollateral?: string;
  snpCollateral?: string;
}

function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

/** The trust flags of `joinguard verify`, for every command that appraises evidence. */
export function trustFlags(c: Command): Command {
  return c
    .option('--snp-test-root <pem>', 'also trust this SNP test root (ASK/ARK PEM of a simulated CVM); repeatable', collect)
    .option('--tdx-test-root <pem>', 'also trust this TDX test root CA (PEM); repeatable', collect)
    .option('--tdx-collateral <dir>', 'offline TDX collateral directory (TCB info, QE identity, CRLs of one platform)')
    .option('--snp-collateral <dir>', 'offline AMD KDS cache (the KdsClient cacheDir layout): VCEK, chain and CRL for SNP evidence whose hardware.certs has no VCEK');
}

/** A text input file (policy, PEM, JSON), with readInputFile's checks. */
export function readText(path: string, what: string, max?: number): string {
  return Buffer.from(readInputFile(path, what, max)).toString('utf8');
}

/**
 * AMD's and Intel's roots, plus the test roots and offline collateral the options name: the TDX bundle, and
 * the AMD KDS cache (as the verifier's `trust.snpCollateralDir`), consulted only for SNP evidence that carries
 * no VCEK.
 */
export function trustFrom(o: TrustOpts): AppraisalTrust {
  for (const [flag, dir] of [['--tdx-collateral', o.tdxCollateral], ['--snp-collateral', o.snpCollateral]] as const) {
    if (dir !== undefined && (!existsSync(dir) || !statSync(dir).isDirectory())) throw usage(`${flag} ${dir} is not a directory`, { path: dir });
  }
  return defaultTrust({
    snpTestRootsPem: (o.snpTestRoot ?? []).map((p) => readText(p, 'SNP test root')),
    tdxTestRootsPem: (o.tdxTestRoot ?? []).map((p) => readText(p, 'TDX test root')),
    ...(o.tdxCollateral !== undefined ? { tdxCollateralDir: o.tdxCollateral } : {}),
    ...(o.snpCollateral !== undefined ? { snpCollateralDir: o.snpCollateral } : {}),
  });
}

/**
 * An evidence bundle is a JSON object. Anything else (`[]`, `null`, a number) is not a bundle at all: the input
 * is unusable (exit 2), where an object, however wrong, is evidence for the appraisal to reject (exit 1).
 */
export function readEvidenceFile(path: string): Evidence {
  let doc: unknown;
  try {
    doc = JSON.parse(readText(path, 'evidence', MAX_EVIDENCE_BYTES));
  } catch (e) {
    if (e instanceof SyntaxError) throw inputError('CLI_BAD_EVIDENCE', `evidence ${path} is not JSON: ${e.message}`, { path });
    throw e;
  }
  if (!isObject(doc)) {
    const what = doc === null ? 'null' : Array.isArray(doc) ? 'an array' : `a ${typeof doc}`;
    throw inputError('CLI_BAD_EVIDENCE', `evidence ${path} is ${what}, not an evidence bundle (a JSON object, the body of POST /v1/attest)`, { path });
  }
  return doc as unknown as Evidence;
}

/**
 * Whether a JSON document is an evidence bundle (the body of POST /v1/attest) rather than AppraisalClaims: it
 * has the bundle's members, which claims never have. Whether it is a *valid* bundle is the appraisal's call.
 */
export function looksLikeEvidence(doc: unknown): boolean {
  if (!isObject(doc)) return false;
  const d = doc as Record<string, unknown>;
  return typeof d.nonce === 'string' && typeof d.tee === 'string' && isObject(d.runtimeData) && isObject(d.hardware) && isObject(d.tpm);
}

function isObject(x: unknown): boolean {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

/**
 * `pinnedAkSha256` is the AK the node was pinned to (null: none) for a policy with tpm.pinAk; without it that
 * rule is skipped, as nothing offline knows a node's pin.
 */
export async function appraise(evidence: Evidence, o: { now: Date; policy: Policy; trust: AppraisalTrust; pinnedAkSha256?: string | null }): Promise<AppraisalOutcome> {
  return appraiseEvidence(evidence, {
    now: o.now,
    policy: o.policy,
    policyRef: { id: o.policy.name, digest: policyDigest(o.policy) },
    trust: o.trust,
    ...(o.pinnedAkSha256 !== undefined ? { pinnedAkSha256: o.pinnedAkSha256 } : {}),
  });
}

/**
 * The pin a stored appraisal was judged against, from its own (signed) check policy.tpm.akPinned: the AK it
 * expected, or null for the pass that took the pin. Undefined when the record has no such judgement (no
 * pinning policy, or the rule was skipped). Whether that pin was the right one is the earlier records' story.
 */
export function recordedPin(checks: unknown): string | null | undefined {
  if (!Array.isArray(checks)) return undefined;
  const c = (checks as Check[]).find((x) => x?.name === 'policy.tpm.akPinned');
  if (!c || c.outcome === 'skip') return undefined;
  if (typeof c.expected === 'string') return c.expected;
  return c.outcome === 'pass' ? null : undefined;
}

/** The first failed check before the policy: the evidence itself does not verify, whatever the policy. */
export function firstEvidenceFailure(checks: readonly Check[]): Check | undefined {
  return checks.find((c) => c.outcome === 'fail' && c.name !== 'policy' && !c.name.startsWith('policy.'));
}

export type VerifiedClaims =
  | { ok: true; claims: AppraisalClaims; outcome: AppraisalOutcome }
  | { ok: false; failed: Check; outcome: AppraisalOutcome };

/**
 * The claims an evidence bundle proves, when every check before the policy passes (hardware, bindings, quote,
 * event log, teeKey). The policy the engine runs meanwhile does not matter: the claims are the same under any.
 */
export async function verifiedClaims(evidence: Evidence, now: Date, trust: AppraisalTrust): Promise<VerifiedClaims> {
  const outcome = await appraise(evidence, { now, policy: defaultPolicy(), trust });
  const failed = firstEvidenceFailure(outcome.appraisal.checks);
  if (failed) return { ok: false, failed, outcome };
  if (!outcome.claims) return { ok: false, failed: { name: 'evidence.decode', outcome: 'fail', code: 'APPRAISE_NO_CLAIMS', message: 'the evidence yields no claims' }, outcome };
  return { ok: true, claims: outcome.claims, outcome };
}
