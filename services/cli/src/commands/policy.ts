import { basename } from 'node:path';
import type { Command } from 'commander';
import { stringify as toYaml } from 'yaml';
import { inputError, readInputFile, type JoinguardError } from '@joinguard/core';
import {
  appraisalError,
  checkPolicy,
  defaultPolicy,
  dryRun,
  evaluate,
  learn,
  loadPolicy,
  parseClaims,
  parsePolicy,
  policyDigest,
  policySchema,
  validity,
  type AppraisalClaims,
  type DryRunItem,
  type LearnInput,
  type Policy,
  type PolicyIssue,
  type Verdict,
} from '@joinguard/policy';
import { runCommand, usage } from '../output.js';

interface JsonOpt {
  json?: boolean;
}

function parseAt(at: string | undefined): Date {
  // The command line is the edge where the clock may be read; the library takes `now` as an argument.
  if (at === undefined) return new Date();
  const t = Date.parse(at);
  if (Number.isNaN(t)) throw usage(`--at ${at} is not an RFC 3339 date-time`);
  return new Date(t);
}

function readText(path: string, what: string): string {
  return Buffer.from(readInputFile(path, what)).toString('utf8');
}

function issueLines(issues: PolicyIssue[]): string {
  return issues.map((i) => `  ${i.path}: ${i.message} [${i.code}]`).join('\n');
}

/** A policy error whose message lists every issue, for people reading stderr. */
function withAllIssues(e: unknown): unknown {
  const je = e as JoinguardError;
  const errors = (je?.details?.errors ?? []) as PolicyIssue[];
  if (!Array.isArray(errors) || errors.length === 0 || typeof je.code !== 'string') return e;
  return inputError(je.code, `the policy is invalid:\n${issueLines(errors.map((x) => ({ ...x, code: x.code ?? je.code })))}`, je.details);
}

function loadPolicyFile(path: string, now: Date): Policy {
  try {
    return loadPolicy(readText(path, 'policy'), now).policy;
  } catch (e) {
    throw withAllIssues(e);
  }
}

interface ClaimsFileEntry {
  name: string;
  claims: AppraisalClaims;
  verdict?: Verdict;
}

/**
 * Reads files of AppraisalClaims JSON: one claims object, `{name?, claims, verdict?}`, or an array of
 * either. (Raw evidence is mapped to claims by the verifier; until that mapping is public, the CLI
 * takes claims.)
 */
function readClaimsFiles(paths: string[]): ClaimsFileEntry[] {
  const out: ClaimsFileEntry[] = [];
  for (const path of paths) {
    let doc: unknown;
    try {
      doc = JSON.parse(readText(path, 'claims'));
    } catch (e) {
      if ((e as JoinguardError).kind === 'input') throw e;
      throw inputError('POLICY_CLAIMS_INVALID', `claims file ${path} is not JSON: ${(e as Error).message}`, { path });
    }
    const list = Array.isArray(doc) ? doc : [doc];
    list.forEach((item, i) => {
      const where = list.length === 1 ? path : `${path}[${i}]`;
      const fallback = list.length === 1 ? basename(path).replace(/\.json$/i, '') : `${basename(path).replace(/\.json$/i, '')}#${i}`;
      if (item !== null && typeof item === 'object' && 'claims' in item) {
        const w = item as { name?: unknown; claims: unknown; verdict?: unknown };
        if (w.verdict !== undefined && w.verdict !== 'pass' && w.verdict !== 'fail') throw inputError('POLICY_CLAIMS_INVALID', `${where}: verdict must be "pass" or "fail"`, { path: where });
        out.push({
          name: typeof w.name === 'string' && w.name !== '' ? w.name : fallback,
          claims: parseClaims(w.claims, where),
          ...(w.verdict === undefined ? {} : { verdict: w.verdict as Verdict }),
        });
      } else out.push({ name: fallback, claims: parseClaims(item, where) });
    });
  }
  return out;
}

function parsePcrList(s: string | undefined): number[] | undefined {
  if (s === undefined) return undefined;
  const xs = s.split(',').map((x) => x.trim());
  if (!xs.every((x) => /^\d+$/.test(x) && Number(x) <= 23)) throw usage(`--pcrs ${s} must be a comma-separated list of PCR indices 0..23`);
  return xs.map(Number);
}

/** `joinguard policy …`: check, learn, evaluate, dry-run, schema, default. */
export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('appraisal policies: check them, learn reference values, dry-run drafts');

  policy
    .command('check')
    .description('validate a policy (schema, regexes, dates, reference-value validity); exit 0 valid, 2 invalid')
    .argument('<policy>', 'policy file (YAML or JSON)')
    .option('--at <time>', 'judge reference-value validity at this RFC 3339 time instead of now')
    .option('--json', 'print JSON')
    .action(async (file: string, opts: JsonOpt & { at?: string }) =>
      runCommand(opts, () => {
        const now = parseAt(opts.at);
        let p: Policy;
        try {
          p = parsePolicy(readText(file, 'policy'));
        } catch (e) {
          throw withAllIssues(e);
        }
        const { errors, warnings } = checkPolicy(p, now);
        if (errors.length > 0) throw withAllIssues(inputError('POLICY_SEMANTIC', 'the policy is not usable', { errors, warnings }));
        const digest = policyDigest(p);
        const refs = (p.referenceValues ?? []).map((r) => ({ id: r.id, version: r.version, validity: validity(r, now), ...(r.expires ? { expires: r.expires } : {}) }));
        const text = [
          `policy ${p.name} is valid at ${now.toISOString()}`,
          `digest sha256:${digest}`,
          ...refs.map((r) => `reference value ${r.id}@${r.version}: ${r.validity}${r.expires ? ` (expires ${r.expires})` : ''}`),
          ...(warnings.length ? ['warnings:', issueLines(warnings)] : []),
        ].join('\n');
        return { json: { valid: true, name: p.name, digest, checkedAt: now.toISOString(), referenceValues: refs, warnings }, text };
      }),
    );

  policy
    .command('learn')
    .description('propose reference values from the claims of known-good nodes (files of AppraisalClaims JSON)')
    .argument('<claims...>', 'claims files: an AppraisalClaims object, {name, claims}, or an array of them')
    .option('--id <id>', 'id of the proposed reference value', 'learned')
    .option('--ref-version <version>', 'version of the proposed reference value', '1')
    .option('--expires <time>', 'expiry (RFC 3339) of the proposed reference value')
    .option('--not-before <time>', 'start of validity (RFC 3339) of the proposed reference value')
    .option('--name <name>', 'name of the draft policy', 'learned')
    .option('--pcrs <list>', 'PCR indices to learn raw values for (default 0-15)')
    .option('--json', 'print JSON (the draft policy, the reference value, and what differs per node)')
    .action(async (files: string[], opts: JsonOpt & { id: string; refVersion: string; expires?: string; notBefore?: string; name: string; pcrs?: string }) =>
      runCommand(opts, () => {
        const inputs: LearnInput[] = readClaimsFiles(files).map((e) => ({ name: e.name, claims: e.claims }));
        const r = learn(inputs, {
          id: opts.id,
          version: opts.refVersion,
          policyName: opts.name,
          ...(opts.expires === undefined ? {} : { expires: opts.expires }),
          ...(opts.notBefore === undefined ? {} : { notBefore: opts.notBefore }),
          ...(opts.pcrs === undefined ? {} : { pcrs: parsePcrList(opts.pcrs) }),
        });
        // The draft must itself be a valid policy; bad --expires values surface here as schema errors.
        try {
          parsePolicy(r.policy);
        } catch (e) {
          throw withAllIssues(e);
        }
        const comments = [
          `# Draft policy learned from ${r.nodes.length} node(s): ${r.nodes.join(', ')}. Review before use.`,
          ...r.notes.map((n) => `# note: ${n}`),
          ...r.differing.map((d) => `# differs per node, left out: ${d.key}: ${Object.entries(d.values).map(([n, v]) => `${n}=${Array.isArray(v) ? `[${v.join(' ')}]` : v}`).join(', ')}`),
        ];
        return { json: r, text: `${comments.join('\n')}\n${toYaml(r.policy, { lineWidth: 0 })}` };
      }),
    );

  policy
    .command('evaluate')
    .description('appraise claims against a policy; exit 0 pass, 1 rejected (error.details lists every failed rule)')
    .requiredOption('--policy <file>', 'policy file')
    .argument('<claims>', 'claims file (one AppraisalClaims object)')
    .option('--at <time>', 'evaluate at this RFC 3339 time instead of now')
    .option('--json', 'print JSON')
    .action(async (file: string, opts: JsonOpt & { policy: string; at?: string }) =>
      runCommand(opts, () => {
        const now = parseAt(opts.at);
        const p = loadPolicyFile(opts.policy, now);
        const entries = readClaimsFiles([file]);
        if (entries.length !== 1) throw usage(`${file} holds ${entries.length} claims; evaluate takes one (use dry-run for several)`);
        const a = evaluate(p, entries[0]!.claims, now);
        const err = appraisalError(a);
        if (err) throw err;
        return { json: { verified: true, ...a }, text: `pass: policy ${a.policy.name} (sha256:${a.policy.digest}), ${a.results.filter((r) => r.outcome === 'pass').length} rules passed` };
      }),
    );

  policy
    .command('dry-run')
    .description('evaluate a draft policy over stored claims and compare with the old verdicts; changes nothing')
    .requiredOption('--policy <file>', 'draft policy file')
    .option('--current <file>', 'current policy, for items without a stored verdict')
    .argument('<claims...>', 'claims files (AppraisalClaims, {name, claims, verdict}, or arrays of them)')
    .option('--at <time>', 'evaluate at this RFC 3339 time instead of now')
    .option('--json', 'print JSON')
    .action(async (files: string[], opts: JsonOpt & { policy: string; current?: string; at?: string }) =>
      runCommand(opts, () => {
        const now = parseAt(opts.at);
        const draft = loadPolicyFile(opts.policy, now);
        const current = opts.current === undefined ? undefined : loadPolicyFile(opts.current, now);
        const items: DryRunItem[] = readClaimsFiles(files).map((e) => ({ id: e.name, claims: e.claims, ...(e.verdict ? { verdict: e.verdict } : {}) }));
        const r = dryRun(draft, items, now, current);
        const lines = r.items.map(
          (i) => `${i.id}: ${i.oldVerdict ?? '?'} -> ${i.newVerdict}${i.changed ? ' (changed)' : ''}${i.newFailures.length ? `; new failures: ${i.newFailures.map((f) => `${f.rule}${f.path ? ` at ${f.path}` : ''}`).join(', ')}` : ''}`,
        );
        const text = [`draft ${r.policy.name}: ${r.passing} pass, ${r.failing} fail; newly failing: ${r.newlyFailing.join(', ') || 'none'}`, ...lines].join('\n');
        return { json: r, text };
      }),
    );

  policy
    .command('schema')
    .description('print the JSON Schema of appraisal policies')
    .action(async () => runCommand({ json: true }, () => ({ json: policySchema, text: '' })));

  policy
    .command('default')
    .description('print the strict default policy (YAML, or JSON with --json)')
    .option('--json', 'print JSON')
    .action(async (opts: JsonOpt) => runCommand(opts, () => ({ json: defaultPolicy(), text: toYaml(defaultPolicy()) })));
}
