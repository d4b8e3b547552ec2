import { inputError } from '@joinguard/core';
import { isSnpTee, isTdxTee, type AppraisalClaims, type TcbVersion, type TeeKind } from './claims.js';
import { PCR_BANKS, POLICY_API_VERSION, POLICY_KIND, type Policy, type ReferenceValue } from './types.js';

export interface LearnInput {
  name?: string;
  claims: AppraisalClaims;
}

export interface LearnOptions {
  id?: string;
  version?: string;
  description?: string;
  notBefore?: string;
  expires?: string;
  /** Name of the draft policy. */
  policyName?: string;
  /**
   * PCR indices to learn raw values for. Default 0..15: PCR 16 is the debug PCR, 17..22 belong to
   * DRTM and 23 to applications, all of which software can reset or extend after boot.
   */
  pcrs?: number[];
}

export interface Difference {
  /** The reference key (`pcrs.sha256.8`, `boot.bootApps`, `snp.measurement`). */
  key: string;
  /** Per node: its value (scalars), or the entries it has beyond what all nodes share (sets); null when absent. */
  values: Record<string, string | string[] | null>;
}

export interface LearnResult {
  nodes: string[];
  /** The values every node shares, as one reference value. */
  referenceValue: ReferenceValue;
  /** What is not common, per node: PCR 8/9 with per-node command lines, a boot application only some nodes run, ... */
  differing: Difference[];
  /** A strict draft policy around the learned reference value, to review before use. */
  policy: Policy;
  notes: string[];
}

const SNP_FIELDS = ['measurement', 'hostData', 'idKeyDigest', 'authorKeyDigest'] as const;
const TDX_FIELDS = ['mrTd', 'mrConfigId', 'mrOwner', 'mrOwnerConfig', 'rtmr0', 'rtmr1', 'rtmr2', 'rtmr3'] as const;
const EFI = ['pk', 'kek', 'db', 'dbx'] as const;
const DEFAULT_PCRS = Array.from({ length: 16 }, (_, i) => i);

function lower(x: unknown): string | undefined {
  return typeof x === 'string' ? x.toLowerCase() : undefined;
}

function place(ref: ReferenceValue, key: string, values: string[]): void {
  const [section, a, b] = key.split('.') as [string, string, string | undefined];
  if (a === '__proto__' || b === '__proto__' || a === 'constructor' || b === 'constructor') return;
  if (section === 'snp') ((ref.snp ??= {}) as Record<string, string[]>)[a] = values;
  else if (section === 'tdx') ((ref.tdx ??= {}) as Record<string, string[]>)[a] = values;
  else if (section === 'pcrs') ((ref.pcrs ??= {})[a] ??= {})[b!] = values;
  else if (section === 'boot') {
    const boot = (ref.boot ??= {});
    if (a === 'bootApps') boot.bootApps = values;
    else if (a === 'kernelCmdline') boot.kernelCmdline = values;
    else ((boot as Record<string, Record<string, string[]>>)[a] ??= {})[b!] = values;
  }
}

/**
 * Proposes reference values from the claims of known-good nodes: a value all nodes share becomes a
 * reference value; a value that differs between nodes (PCR 8 and 9 carry per-node kernel command lines
 * and files on many distributions) is reported per node and left out, for the operator to decide.
 */
export function learn(inputs: ReadonlyArray<AppraisalClaims | LearnInput>, options: LearnOptions = {}): LearnResult {
  if (inputs.length === 0) throw inputError('POLICY_LEARN_NO_EVIDENCE', 'learning reference values needs the claims of at least one known-good node');
  const nodes = inputs.map((x) => ('claims' in x ? x : { claims: x as AppraisalClaims })).map((x, i) => ({ name: x.name ?? `node${i}`, claims: x.claims }));
  const names = nodes.map((n) => n.name);
  if (new Set(names).size !== names.length) throw inputError('POLICY_LEARN_DUPLICATE_NODE', 'two inputs have the same node name', { names });

  const ref: ReferenceValue = { id: options.id ?? 'learned', version: options.version ?? '1' };
  if (options.description !== undefined) ref.description = options.description;
  if (options.notBefore !== undefined) ref.notBefore = options.notBefore;
  if (options.expires !== undefined) ref.expires = options.expires;
  const differing: Difference[] = [];
  const notes: string[] = [];

  const scalar = (key: string, get: (c: AppraisalClaims) => string | undefined) => {
    const vals = nodes.map((n) => get(n.claims));
    if (vals.every((v) => v === undefined)) return;
    if (vals.every((v) => v !== undefined && v === vals[0])) place(ref, key, [vals[0]!]);
    else differing.push({ key, values: Object.fromEntries(nodes.map((n, i) => [n.name, vals[i] ?? null])) });
  };
  const set = (key: string, get: (c: AppraisalClaims) => string[] | undefined) => {
    const sets = nodes.map((n) => {
      const v = get(n.claims);
      return v === undefined ? undefined : new Set(v);
    });
    if (sets.every((s) => s === undefined || s.size === 0)) return;
    const present = sets.filter((s): s is Set<string> => s !== undefined);
    const common = present.length === sets.length ? [...present[0]!].filter((x) => present.every((s) => s.has(x))) : [];
    const shared = new Set(common);
    const extras = sets.map((s) => (s === undefined ? null : [...s].filter((x) => !shared.has(x))));
    if (common.length > 0) place(ref, key, common);
    if (extras.some((e) => e === null || e.length > 0)) differing.push({ key, values: Object.fromEntries(nodes.map((n, i) => [n.name, extras[i]!])) });
  };

  for (const f of SNP_FIELDS) scalar(`snp.${f}`, (c) => (isSnpTee(c.tee) ? lower(c.snp?.[f]) : undefined));
  for (const f of TDX_FIELDS) scalar(`tdx.${f}`, (c) => (isTdxTee(c.tee) ? lower(c.tdx?.[f]) : undefined));

  const banks = new Set<string>();
  // Only known bank names become keys: a claims object is data, and its keys must not reach prototypes.
  for (const n of nodes) for (const b of Object.keys(n.claims.tpm?.pcrs ?? {})) if (Object.hasOwn(PCR_BANKS, b)) banks.add(b);
  for (const bank of [...banks].sort()) {
    for (const i of options.pcrs ?? DEFAULT_PCRS) scalar(`pcrs.${bank}.${i}`, (c) => lower(c.tpm?.pcrs?.[bank]?.[String(i)]));
  }

  const lowerAll = (xs: unknown) => (Array.isArray(xs) ? xs.filter((x): x is string => typeof x === 'string').map((x) => x.toLowerCase()) : undefined);
  set('boot.bootApps', (c) => (c.boot ? (c.boot.bootApps ?? []).map((a) => (a.digestSha256 ?? '').toLowerCase()).filter((d) => d !== '') : undefined));
  for (const v of EFI) {
    set(`boot.${v}.certSha256`, (c) => lowerAll(c.boot?.[v]?.certSha256));
    set(`boot.${v}.hashes`, (c) => lowerAll(c.boot?.[v]?.hashes));
  }
  // A reference command line is at most 4096 characters (the policy schema's limit, twice Linux's).
  set('boot.kernelCmdline', (c) => (c.boot?.kernelCmdline ? c.boot.kernelCmdline.map((k) => k.value).filter((v) => typeof v === 'string' && v.length <= 4096) : undefined));

  const unknownApps = nodes.filter((n) => (n.claims.boot?.bootApps ?? []).some((a) => !a.digestSha256)).map((n) => n.name);
  if (unknownApps.length > 0) notes.push(`boot applications without a SHA-256 digest on ${unknownApps.join(', ')} cannot become reference values`);
  if (nodes.length === 1) notes.push('one node only: values that differ per node (PCR 8/9 on many systems) cannot be told apart from shared ones');

  const policy = draftPolicy(nodes.map((n) => n.claims), ref, options.policyName ?? 'learned', notes);
  return { nodes: names, referenceValue: ref, differing, policy, notes };
}

function draftPolicy(claims: AppraisalClaims[], ref: ReferenceValue, name: string, notes: string[]): Policy {
  const tees = [...new Set(claims.map((c) => c.tee))].sort() as TeeKind[];
  const policy: Policy = { apiVersion: POLICY_API_VERSION, kind: POLICY_KIND, name, tee: { allowed: tees } };

  const tcbs = claims.filter((c) => isSnpTee(c.tee) && c.snp?.reportedTcb).map((c) => c.snp!.reportedTcb);
  if (tcbs.length > 0) {
    const min = (k: keyof TcbVersion) => {
      const xs = tcbs.map((t) => t[k]).filter((x): x is number => typeof x === 'number');
      return xs.length === tcbs.length ? Math.min(...xs) : undefined;
    };
    const minimumTcb: NonNullable<Policy['snp']>['minimumTcb'] = {};
    for (const k of ['bootloader', 'tee', 'snp', 'microcode', 'fmc'] as const) {
      const m = min(k);
      if (m !== undefined) minimumTcb[k] = m;
    }
    policy.snp = { minimumTcb, guestPolicy: { allowDebug: false, allowMigrateMa: false } };
  }
  if (tees.some(isTdxTee)) policy.tdx = { allowedTcbStatuses: ['UpToDate'], allowDebug: false };

  const withTpm = claims.filter((c) => c.tpm);
  if (withTpm.length > 0) {
    const common = withTpm[0]!.tpm!.banks.filter((b) => withTpm.every((c) => c.tpm!.banks.includes(b)));
    const known = common.filter((b) => ['sha1', 'sha256', 'sha384', 'sha512'].includes(b)).sort();
    if (known.length > 0) policy.tpm = { requiredBanks: known };
  }
  if (claims.some((c) => c.boot)) {
    const allSecure = claims.every((c) => c.boot?.secureBoot === true);
    policy.boot = { requireSecureBoot: true, requireVerifiedEvents: true };
    if (!allSecure) notes.push('not every node booted with Secure Boot on; the draft still requires it');
  } else {
    notes.push('no node sent an event log: the draft, like every policy, requires Secure Boot and verified boot events, which only an event log shows');
  }
  policy.referenceValues = [ref];
  return policy;
}
