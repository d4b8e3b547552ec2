import { existsSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { inputError, readInputFile, reject } from '@joinguard/core';
import { loadPolicy, policyDigest } from '@joinguard/policy';
import type { Evidence } from '@joinguard/protocol';
// The engine lives in the verifier service (services/verifier/src/appraise); the CLI runs the very same code.
import { appraiseEvidence, defaultTrust, type AppraisalOutcome } from '../../../verifier/src/appraise/index.js';
import { runCommand, usage } from '../output.js';

interface VerifyOpts {
  json?: boolean;
  policy: string;
  at?: string;
  snpTestRoot?: string[];
  tdxTestRoot?: string[];
  tdxCollateral?: string;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const MAX_EVIDENCE_BYTES = 16 * 1024 * 1024;

function parseAt(at: string | undefined): Date {
  if (at === undefined) return new Date();
  const d = new Date(at);
  if (!RFC3339.test(at) || Number.isNaN(d.getTime())) throw usage(`--at ${JSON.stringify(at)} is not an RFC 3339 date-time (e.g. 2026-01-01T00:00:00Z)`, { at });
  return d;
}

function text(path: string, what: string, max?: number): string {
  return Buffer.from(readInputFile(path, what, max)).toString('utf8');
}

function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
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
  program
    .command('verify')
    .description('appraise an evidence bundle (POST /v1/attest body) against a policy, as the verifier does; exit 0 pass, 1 fail')
    .argument('<evidence>', 'evidence JSON file')
    .requiredOption('--policy <file>', 'appraisal policy (YAML or JSON)')
    .option('--at <rfc3339>', 'appraisal time (default: now)')
    .option('--snp-test-root <pem>', 'also trust this SNP test root (ASK/ARK PEM of a simulated CVM); repeatable', collect)
    .option('--tdx-test-root <pem>', 'also trust this TDX test root CA (PEM); repeatable', collect)
    .option('--tdx-collateral <dir>', 'offline TDX collateral directory (TCB info, QE identity, CRLs of one platform)')
    .option('--json', 'print JSON')
    .action(async (evidencePath: string, opts: VerifyOpts) => {
      await runCommand(opts, async () => {
        const now = parseAt(opts.at);
        let evidence: Evidence;
        try {
          evidence = JSON.parse(text(evidencePath, 'evidence', MAX_EVIDENCE_BYTES)) as Evidence;
        } catch (e) {
          if (e instanceof SyntaxError) throw inputError('CLI_BAD_EVIDENCE', `evidence ${evidencePath} is not JSON: ${e.message}`, { path: evidencePath });
          throw e;
        }
        const { policy } = loadPolicy(text(opts.policy, 'policy'), now);
        if (opts.tdxCollateral !== undefined && (!existsSync(opts.tdxCollateral) || !statSync(opts.tdxCollateral).isDirectory())) {
          throw usage(`--tdx-collateral ${opts.tdxCollateral} is not a directory`, { path: opts.tdxCollateral });
        }
        const trust = defaultTrust({
          snpTestRootsPem: (opts.snpTestRoot ?? []).map((p) => text(p, 'SNP test root')),
          tdxTestRootsPem: (opts.tdxTestRoot ?? []).map((p) => text(p, 'TDX test root')),
          ...(opts.tdxCollateral !== undefined ? { tdxCollateralDir: opts.tdxCollateral } : {}),
        });
        const out = await appraiseEvidence(evidence, { now, policy, policyRef: { id: policy.name, digest: policyDigest(policy) }, trust });
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
