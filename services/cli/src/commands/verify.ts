import type { Command } from 'commander';
import { reject } from '@joinguard/core';
import { loadPolicy } from '@joinguard/policy';
import { appraise, readEvidenceFile, readText, trustFlags, trustFrom, type AppraisalOutcome, type TrustOpts } from '../appraise.js';
import { runCommand, usage } from '../output.js';

interface VerifyOpts extends TrustOpts {
  json?: boolean;
  policy: string;
  at?: string;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function parseAt(at: string | undefined): Date {
  if (at === undefined) return new Date();
  const d = new Date(at);
  if (!RFC3339.test(at) || Number.isNaN(d.getTime())) throw usage(`--at ${JSON.stringify(at)} is not an RFC 3339 date-time (e.g. 2026-01-01T00:00:00Z)`, { at });
  return d;
}

function summary(o: AppraisalOutcome): string {
  const lines = [`verdict: ${o.appraisal.verdict} (${o.appraisal.tee}, node ${o.appraisal.node}, purpose ${o.appraisal.purpose})`];
  for (const c of o.appraisal.checks) {
    if (c.outcome === 'skip' && c.name.startsWith('policy.')) continue;
    lines.push(`  ${c.outcome.padEnd(4)} ${c.name}${c.code ? ` [${c.code}]` : ''}${c.message ? `: ${c.message}` : ''}`);
  }
  return lines.join('\n');
}

/**
 * `joinguard verify EVIDENCE.json --policy POLICY`: the whole appraisal of an evidence bundle, exactly as
 * the verifier runs it, offline. The challenge's own checks (MAC, expiry, single use) need the verifier's
 * key and store and are not made here; the binding of the bundle to its nonce is.
 */
export function registerVerify(program: Command): void {
  trustFlags(
    program
      .command('verify')
      .description('appraise an evidence bundle (POST /v1/attest body) against a policy, as the verifier does; exit 0 pass, 1 fail')
      .argument('<evidence>', 'evidence JSON file')
      .requiredOption('--policy <file>', 'appraisal policy (YAML or JSON)')
      .option('--at <rfc3339>', 'appraisal time (default: now)'),
  )
    .option('--json', 'print JSON')
    .action(async (evidencePath: string, opts: VerifyOpts) => {
      await runCommand(opts, async () => {
        const now = parseAt(opts.at);
        const evidence = readEvidenceFile(evidencePath);
        const { policy } = loadPolicy(readText(opts.policy, 'policy'), now);
        const trust = trustFrom(opts);
        const out = await appraise(evidence, { now, policy, trust });
        const json = {
          verified: out.appraisal.verdict === 'pass',
          appraisal: out.appraisal,
          measurements: out.measurements,
          tcb: out.tcb,
          bindings: out.bindings,
          bindingDigest: out.bindingDigest,
          ...(out.claims ? { claims: out.claims } : {}),
        };
        if (out.appraisal.verdict !== 'pass') {
          const failed = out.appraisal.checks.filter((c) => c.outcome === 'fail');
          const first = failed[0]!;
          throw reject(first.code ?? 'APPRAISE_FAILED', `${first.name}: ${first.message ?? 'failed'}${failed.length > 1 ? ` (and ${failed.length - 1} more failed checks)` : ''}`, {
            check: first.name,
            failedChecks: failed.map((c) => c.name),
            ...json,
          });
        }
        return { json, text: summary(out) };
      });
    });
}
