import { basename } from 'node:path';
import type { Command } from 'commander';
import { stringify as toYaml } from 'yaml';
import { inputError, reject, type JoinguardError } from '@joinguard/core';
import { evidenceOfRecord, type Check, type Evidence } from '@joinguard/protocol';
import { allRecords } from '@joinguard/store';
import type { AppraisalTrust } from '@joinguard/verifier';
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
import { firstEvidenceFailure, looksLikeEvidence, MAX_EVIDENCE_BYTES, readText, trustFlags, trustFrom, verifiedClaims, type TrustOpts } from '../appraise.js';
import { runCommand, usage } from '../output.js';
import { openStoreFile } from '../store-file.js';

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

/** An input whose evidence does not verify (or a stored appraisal whose evidence did not): no policy changes that. */
interface UnverifiedEntry {
  name: string;
  /** the first check before the policy that failed */
  check: string;
  code: string;
  message?: string;
  verdict?: Verdict;
}

function unverifiedEntry(name: string, failed: Check, verdict?: Verdict): UnverifiedEntry {
  return { name, check: failed.name, code: failed.code ?? 'APPRAISE_FAILED', ...(failed.message ? { message: failed.message } : {}), ...(verdict ? { verdict } : {}) };
}

interface Inputs {
  entries: ClaimsFileEntry[];
  unverified: UnverifiedEntry[];
}

/** How evidence bundles among the inputs are appraised; absent: the command takes claims only. */
interface EvidenceOptions {
  now: Date;
  trust: () => AppraisalTrust;
}

/**
 * Reads input files: AppraisalClaims JSON (one claims object, `{name?, claims, verdict?}`, or an array of
 * either) or evidence bundles (the JSON `joinguard verify` takes, or an array of them), which are appraised
 * here by the verifier's engine and stand for the claims they prove. An evidence item is named after its
 * runtimeData.nodeName.
 */
async function readInputs(paths: string[], evidence?: EvidenceOptions): Promise<Inputs> {
  const entries: ClaimsFileEntry[] = [];
  const unverified: UnverifiedEntry[] = [];
  const used = new Set<string>();
  // Names must tell the items apart (learn refuses duplicates). A name someone wrote is kept as written; a node
  // name taken from evidence that is already in use (two boots of one node) gets its file's name too.
  const named = (name: string): string => {
    used.add(name);
    return name;
  };
  const unique = (name: string, where: string): string => {
    let n = used.has(name) ? `${name}@${where}` : name;
    for (let i = 2; used.has(n); i++) n = `${name}@${where}#${i}`;
    return named(n);
  };
  let trust: AppraisalTrust | undefined;
  for (const path of paths) {
    let doc: unknown;
    try {
      doc = JSON.parse(readText(path, 'claims or evidence', MAX_EVIDENCE_BYTES));
    } catch (e) {
      if ((e as JoinguardError).kind === 'input') throw e;
      throw inputError('POLICY_CLAIMS_INVALID', `claims file ${path} is not JSON: ${(e as Error).message}`, { path });
    }
    const list = Array.isArray(doc) ? doc : [doc];
    const base = basename(path).replace(/\.json$/i, '');
    for (const [i, item] of list.entries()) {
      const where = list.length === 1 ? path : `${path}[${i}]`;
      const fallback = list.length === 1 ? base : `${base}#${i}`;
      if (looksLikeEvidence(item)) {
        if (!evidence) throw usage(`${where} is an evidence bundle; this command takes claims (appraise evidence with \`joinguard verify\`)`, { path: where });
        const ev = item as Evidence;
        const node = typeof ev.runtimeData.nodeName === 'string' && ev.runtimeData.nodeName !== '' ? ev.runtimeData.nodeName : fallback;
        trust ??= evidence.trust();
        const v = await verifiedClaims(ev, evidence.now, trust);
        if (v.ok) entries.push({ name: unique(node, fallback), claims: v.claims });
        else unverified.push(unverifiedEntry(unique(node, fallback), v.failed));
      } else if (item !== null && typeof item === 'object' && 'claims' in item) {
        const w = item as { name?: unknown; claims: unknown; verdict?: unknown };
        if (w.verdict !== undefined && w.verdict !== 'pass' && w.verdict !== 'fail') throw inputError('POLICY_CLAIMS_INVALID', `${where}: verdict must be "pass" or "fail"`, { path: where });
        entries.push({
          name: named(typeof w.name === 'string' && w.name !== '' ? w.name : fallback),
          claims: parseClaims(w.claims, where),
          ...(w.verdict === undefined ? {} : { verdict: w.verdict as Verdict }),
        });
      } else entries.push({ name: named(fallback), claims: parseClaims(item, where) });
    }
  }
  return { entries, unverified };
}

/**
 * The appraisal records of a verifier's store file, as dry-run items, with the verdict each was given. Their
 * claims are those the record's evidence proves, appraised again at the record's time with `trust` (as
 * `joinguard audit verify --reappraise` does), its event log and certificates fetched back from the store's
 * blobs; records written before records stopped keeping claims give the claims they keep. Records whose
 * evidence failed before the policy cannot be changed by any policy and are returned as unverified, as are
 * those whose evidence no longer verifies (a test root not given, a blob missing). Records are read as stored;
 * `joinguard audit verify` checks their signatures and chain.
 */
async function readStoredAppraisals(path: string, o: { node?: string; latest?: boolean; trust: () => AppraisalTrust }): Promise<Inputs> {
  const store = await openStoreFile(path);
  const items: Array<{ node: string; entry?: ClaimsFileEntry; unverified?: UnverifiedEntry }> = [];
  let trust: AppraisalTrust | undefined;
  try {
    for await (const { record } of allRecords((q) => store.query(q), { kind: 'appraisal', ...(o.node ? { node: o.node } : {}), limit: 500 })) {
      const name = `${record.node ?? 'unknown'}/${record.id}`;
      const body = record.body as { claims?: unknown; checks?: Check[] };
      const failed = Array.isArray(body.checks) ? firstEvidenceFailure(body.checks) : undefined;
      const verdict = record.verdict === 'pass' || record.verdict === 'fail' ? record.verdict : undefined;
      const node = record.node ?? record.id;
      const entry = (claims: AppraisalClaims) => ({ name, claims, ...(verdict ? { verdict } : {}) });
      if (failed) items.push({ node, unverified: unverifiedEntry(name, failed, verdict) });
      else if (body.claims !== undefined) items.push({ node, entry: entry(parseClaims(body.claims, `record ${record.id}`)) });
      else {
        const got = await evidenceOfRecord(record.body, (sha256) => store.getBlob(sha256));
        if ('gap' in got) {
          items.push({ node, unverified: unverifiedEntry(name, { name: 'evidence.decode', outcome: 'fail', code: got.gap.code, message: got.gap.message }, verdict) });
          continue;
        }
        trust ??= o.trust();
        const v = await verifiedClaims(got.evidence, new Date(record.time), trust);
        items.push(v.ok ? { node, entry: entry(v.claims) } : { node, unverified: unverifiedEntry(name, v.failed, verdict) });
      }
    }
  } finally {
    await store.close();
  }
  // --latest: each node where it first appears, with its last appraisal.
  const kept = o.latest ? [...new Map(items.map((x) => [x.node, x])).values()] : items;
  return { entries: kept.flatMap((x) => (x.entry ? [x.entry] : [])), unverified: kept.flatMap((x) => (x.unverified ? [x.unverified] : [])) };
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

  trustFlags(
    policy
      .command('learn')
      .description('propose reference values from known-good nodes: their evidence bundles (appraised as by `joinguard verify`) or AppraisalClaims')
      .argument('<inputs...>', 'evidence bundles (POST /v1/attest JSON) or claims files: an AppraisalClaims object, {name, claims}, or an array of them')
      .option('--at <time>', 'appraise evidence at this RFC 3339 time instead of now'),
  )
    .option('--id <id>', 'id of the proposed reference value', 'learned')
    .option('--ref-version <version>', 'version of the proposed reference value', '1')
    .option('--expires <time>', 'expiry (RFC 3339) of the proposed reference value')
    .option('--not-before <time>', 'start of validity (RFC 3339) of the proposed reference value')
    .option('--name <name>', 'name of the draft policy', 'learned')
    .option('--pcrs <list>', 'PCR indices to learn raw values for (default 0-15)')
    .option('--json', 'print JSON (the draft policy, the reference value, and what differs per node)')
    .action(async (files: string[], opts: JsonOpt & TrustOpts & { at?: string; id: string; refVersion: string; expires?: string; notBefore?: string; name: string; pcrs?: string }) =>
      runCommand(opts, async () => {
        const pcrs = parsePcrList(opts.pcrs);
        const read = await readInputs(files, { now: parseAt(opts.at), trust: () => trustFrom(opts) });
        // Reference values come from known-good nodes only: evidence that does not verify is refused.
        const bad = read.unverified[0];
        if (bad) {
          throw reject(bad.code, `evidence of ${bad.name} does not verify (${bad.check}: ${bad.message ?? bad.code}); learn only from known-good nodes`, {
            node: bad.name,
            check: bad.check,
            unverified: read.unverified,
          });
        }
        const inputs: LearnInput[] = read.entries.map((e) => ({ name: e.name, claims: e.claims }));
        const r = learn(inputs, {
          id: opts.id,
          version: opts.refVersion,
          policyName: opts.name,
          ...(opts.expires === undefined ? {} : { expires: opts.expires }),
          ...(opts.notBefore === undefined ? {} : { notBefore: opts.notBefore }),
          ...(pcrs === undefined ? {} : { pcrs }),
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
      runCommand(opts, async () => {
        const now = parseAt(opts.at);
        const p = loadPolicyFile(opts.policy, now);
        const { entries } = await readInputs([file]);
        if (entries.length !== 1) throw usage(`${file} holds ${entries.length} claims; evaluate takes one (use dry-run for several)`);
        const a = evaluate(p, entries[0]!.claims, now);
        const err = appraisalError(a);
        if (err) throw err;
        return { json: { verified: true, ...a }, text: `pass: policy ${a.policy.name} (sha256:${a.policy.digest}), ${a.results.filter((r) => r.outcome === 'pass').length} rules passed` };
      }),
    );

  trustFlags(
    policy
      .command('dry-run')
      .description('evaluate a draft policy over stored claims, evidence or a store\'s appraisals and compare with the old verdicts; changes nothing')
      .requiredOption('--policy <file>', 'draft policy file')
      .option('--current <file>', 'current policy, for items without a stored verdict')
      .argument('[inputs...]', 'evidence bundles or claims files (AppraisalClaims, {name, claims, verdict}, or arrays of them)')
      .option('--store <file>', 'also every appraisal record of this verifier store file (SQLite), with its stored verdict')
      .option('--node <name>', 'with --store: only this node\'s appraisals')
      .option('--latest', 'with --store: only the latest appraisal of each node')
      .option('--at <time>', 'evaluate (and appraise evidence) at this RFC 3339 time instead of now'),
  )
    .option('--json', 'print JSON')
    .action(async (files: string[], opts: JsonOpt & TrustOpts & { policy: string; current?: string; at?: string; store?: string; node?: string; latest?: boolean }) =>
      runCommand(opts, async () => {
        if (files.length === 0 && opts.store === undefined) throw usage('give evidence or claims files, or --store FILE');
        if ((opts.node !== undefined || opts.latest) && opts.store === undefined) throw usage('--node and --latest select records of --store FILE');
        const now = parseAt(opts.at);
        const draft = loadPolicyFile(opts.policy, now);
        const current = opts.current === undefined ? undefined : loadPolicyFile(opts.current, now);
        const fromFiles = await readInputs(files, { now, trust: () => trustFrom(opts) });
        const fromStore = opts.store === undefined ? { entries: [], unverified: [] } : await readStoredAppraisals(opts.store, { ...(opts.node ? { node: opts.node } : {}), ...(opts.latest ? { latest: true } : {}), trust: () => trustFrom(opts) });
        const entries = [...fromFiles.entries, ...fromStore.entries];
        const unverified = [...fromFiles.unverified, ...fromStore.unverified];
        const items: DryRunItem[] = entries.map((e) => ({ id: e.name, claims: e.claims, ...(e.verdict ? { verdict: e.verdict } : {}) }));
        const r = dryRun(draft, items, now, current);
        const lines = r.items.map(
          (i) => `${i.id}: ${i.oldVerdict ?? '?'} -> ${i.newVerdict}${i.changed ? ' (changed)' : ''}${i.newFailures.length ? `; new failures: ${i.newFailures.map((f) => `${f.rule}${f.path ? ` at ${f.path}` : ''}`).join(', ')}` : ''}`,
        );
        const notEvaluated = unverified.map((u) => `${u.name}: ${u.verdict ?? 'fail'} (evidence does not verify: ${u.check} [${u.code}]; no policy changes that)`);
        const text = [
          `draft ${r.policy.name}: ${r.passing} pass, ${r.failing} fail; newly failing: ${r.newlyFailing.join(', ') || 'none'}${unverified.length ? `; ${unverified.length} not evaluated` : ''}`,
          ...lines,
          ...notEvaluated,
        ].join('\n');
        const json = {
          ...r,
          // Items judged before any policy: their evidence fails a hardware, binding, quote or event-log check.
          unverified: unverified.map((u) => ({ id: u.name, check: u.check, code: u.code, ...(u.message ? { message: u.message } : {}), ...(u.verdict ? { oldVerdict: u.verdict } : {}) })),
        };
        return { json, text };
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
