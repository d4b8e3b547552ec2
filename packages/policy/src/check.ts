import ret, { types, type Root, type Token } from 'ret';
import { BoundedMap, inputError } from '@joinguard/core';
import { isSnpTee, isTdxTee } from './claims.js';
import { canonicalizationProblem } from './digest.js';
import { parsePolicy, type PolicyIssue } from './parse.js';
import { referenceEntries, validity } from './refs.js';
import { PCR_BANKS, type Policy } from './types.js';

export interface PolicyCheck {
  errors: PolicyIssue[];
  warnings: PolicyIssue[];
}

/** RFC 3339 instants as the schema admits them, also rejecting impossible calendar dates (2026-02-30). */
export function parseInstant(s: string): number | undefined {
  const t = Date.parse(s);
  if (Number.isNaN(t)) return undefined;
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(s);
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const probe = new Date(Date.UTC(y, mo - 1, d));
  if (probe.getUTCFullYear() !== y || probe.getUTCMonth() !== mo - 1 || probe.getUTCDate() !== d) return undefined;
  return t;
}

/** Why a policy pattern is refused: it does not compile, or it can backtrack exponentially. */
export interface PatternProblem {
  code: 'POLICY_BAD_REGEX' | 'POLICY_UNSAFE_REGEX';
  message: string;
}

/**
 * The parser (ret) does not know lookbehind. Read as a lookahead it has the same quantifiers, nested the same
 * way, which is all the analysis looks at; a `(?<=` that is not a lookbehind (escaped, in a class) loses only
 * a literal `<`.
 */
const forAnalysis = (p: string) => p.replace(/\(\?<([=!])/g, '(?$1');

/** Why a pattern could backtrack exponentially, or undefined when its quantifiers cannot. */
function backtrackingRisk(p: string): string | undefined {
  let tree: Root;
  try {
    tree = ret(forAnalysis(p));
  } catch {
    // What the parser cannot read (syntax newer than it) cannot be judged: refused rather than trusted.
    return 'its quantifiers cannot be analysed';
  }
  let quantifiers = 0;
  // Only a quantifier that repeats (max > 1) nests: `?` and `{0,1}` match once at most.
  const walk = (t: Token | Root, repeated: boolean): string | undefined => {
    if (t.type === types.REPETITION) {
      const repeats = t.max > 1;
      if (repeats && ++quantifiers > 25) return 'more than 25 repeating quantifiers';
      if (repeats && repeated) return 'a repeating quantifier inside a repeated group';
      const inner = t.value;
      if (repeats && inner.type === types.GROUP && (inner.options?.length ?? 0) > 1) return 'alternatives under a repeating quantifier';
      return walk(inner, repeated || repeats);
    }
    if (t.type === types.ROOT || t.type === types.GROUP) {
      for (const x of t.stack ?? []) {
        const r = walk(x, repeated);
        if (r) return r;
      }
      for (const option of t.options ?? []) {
        for (const x of option) {
          const r = walk(x, repeated);
          if (r) return r;
        }
      }
    }
    return undefined;
  };
  return walk(tree, false);
}

/**
 * Compiles a policy pattern the way evaluation does. Patterns run on the verifier's event loop over text the
 * node controls (kernel command lines, grub commands), and a backtracking pattern such as `^(\S+\s*)*ro$` takes
 * time exponential in the text's length, so the shapes that can are refused too: a repeating quantifier
 * (`*`, `+`, `{n,m}` with m > 1) inside a repeated group, alternatives under a repeating quantifier (`(a|a)*`),
 * or more than 25 repeating quantifiers. `?` is not one: it matches once at most. This is a check of shape,
 * not a proof: polynomial cases such as `\s*\s*x` pass (see docs/THREAT-MODEL.md).
 */
export function compilePattern(p: string): RegExp | PatternProblem {
  // Evaluation compiles the policy's patterns at every appraisal: the outcome is remembered per pattern (the
  // RegExp has no g or y flag, so it keeps no state between tests). Patterns are bounded in number and length
  // by the policy schema.
  let known = compiledPatterns.get(p);
  if (known === undefined) {
    known = compileFresh(p);
    compiledPatterns.set(p, known, p.length);
  }
  return known;
}

const compiledPatterns = new BoundedMap<string, RegExp | PatternProblem>(1024, 1024 * 1024);

function compileFresh(p: string): RegExp | PatternProblem {
  let re: RegExp;
  try {
    re = new RegExp(p);
  } catch (e) {
    return { code: 'POLICY_BAD_REGEX', message: `pattern ${JSON.stringify(p)} does not compile: ${(e as Error).message}` };
  }
  const risk = backtrackingRisk(p);
  if (risk !== undefined) {
    return {
      code: 'POLICY_UNSAFE_REGEX',
      message: `pattern ${JSON.stringify(p)} may backtrack exponentially over text the node controls (${risk}); write it without nested or alternated repetition, e.g. with a character class`,
    };
  }
  return re;
}

/**
 * The checks a schema cannot express. Errors make a policy unusable (evaluation refuses it); warnings
 * are for the operator (a reference value that has expired, a section no allowed TEE uses).
 */
export function checkPolicy(policy: Policy, now: Date): PolicyCheck {
  const errors: PolicyIssue[] = [];
  const warnings: PolicyIssue[] = [];
  const err = (path: string, code: string, message: string) => errors.push({ path, code, message });
  const warn = (path: string, code: string, message: string) => warnings.push({ path, code, message });

  const jcs = canonicalizationProblem(policy);
  if (jcs) err(jcs.path, 'POLICY_JCS_INVALID', `${jcs.message}: the policy would have no RFC 8785 digest and could not be recorded`);

  const tcb = policy.snp?.minimumTcb ?? {};
  for (const [k, v] of Object.entries(tcb)) {
    if (typeof v === 'number' && v > 255) err(`$.snp.minimumTcb.${k}`, 'POLICY_TCB_OUT_OF_RANGE', `${k} is ${v}, but a security patch level is one byte (0..255)`);
  }

  const patterns: Array<[string, string[] | undefined]> = [
    ['$.boot.kernelCmdline.required', policy.boot?.kernelCmdline?.required],
    ['$.boot.kernelCmdline.forbidden', policy.boot?.kernelCmdline?.forbidden],
    ['$.boot.grubCommands.forbidden', policy.boot?.grubCommands?.forbidden],
  ];
  for (const [path, list] of patterns) {
    (list ?? []).forEach((p, i) => {
      const r = compilePattern(p);
      if (!(r instanceof RegExp)) err(`${path}[${i}]`, r.code, r.message);
    });
  }

  const allowed = policy.tee.allowed;
  if (policy.snp && !allowed.some(isSnpTee)) warn('$.snp', 'POLICY_UNUSED_SECTION', 'no allowed tee kind is SNP, so the snp section never applies');
  if (policy.tdx && !allowed.some(isTdxTee)) warn('$.tdx', 'POLICY_UNUSED_SECTION', 'no allowed tee kind is TDX, so the tdx section never applies');
  if (policy.snp?.guestPolicy?.allowDebug) warn('$.snp.guestPolicy.allowDebug', 'POLICY_WEAK', 'debug guests are accepted: their memory is readable by the host');
  if (policy.snp?.guestPolicy?.allowMigrateMa) warn('$.snp.guestPolicy.allowMigrateMa', 'POLICY_WEAK', 'guests with a migration agent are accepted');
  if (policy.tdx?.allowDebug) warn('$.tdx.allowDebug', 'POLICY_WEAK', 'debug TDs are accepted: their memory is readable by the host');
  if (policy.tdx?.allowedTcbStatuses?.includes('Revoked')) warn('$.tdx.allowedTcbStatuses', 'POLICY_WEAK', 'platforms with a revoked TCB are accepted');
  if (policy.boot?.requireSecureBoot === false) warn('$.boot.requireSecureBoot', 'POLICY_WEAK', 'nodes without Secure Boot are accepted');
  // Azure's vTPM keeps its AK across boots; the vTPM of a bare SNP or TDX guest (an SVSM's) is usually made anew
  // at every boot, and so is its AK: each reboot of such a node would fail until an admin unpins it.
  const ephemeral = allowed.filter((t) => t === 'snp' || t === 'tdx');
  if (policy.tpm?.pinAk === true && ephemeral.length > 0) {
    warn(
      '$.tpm.pinAk',
      'POLICY_AK_PIN_EPHEMERAL',
      `AKs are pinned and tee ${ephemeral.join(', ')} is allowed: a vTPM that makes a new AK at every boot (an SVSM's) fails each reboot of its node until an admin unpins it; pin where the AK persists (azure-snp-vtpm, azure-tdx-vtpm)`,
    );
  }

  const refs = policy.referenceValues ?? [];
  // id → version → index. Ids may contain "@", so "a@b" version "c" and "a" version "b@c" are different
  // reference values although both are written a@b@c.
  const seen = new Map<string, Map<string, number>>();
  // key -> [(index, validity)]
  const providers = new Map<string, Array<{ i: number; v: string }>>();
  refs.forEach((ref, i) => {
    const at = `$.referenceValues[${i}]`;
    const name = `${ref.id}@${ref.version}`;
    let versions = seen.get(ref.id);
    if (!versions) seen.set(ref.id, (versions = new Map()));
    const dup = versions.get(ref.version);
    if (dup !== undefined) err(at, 'POLICY_DUPLICATE_REFERENCE', `reference value ${name} (id ${JSON.stringify(ref.id)}, version ${JSON.stringify(ref.version)}) is also defined at $.referenceValues[${dup}]`);
    else versions.set(ref.version, i);

    const nb = ref.notBefore === undefined ? undefined : parseInstant(ref.notBefore);
    const ex = ref.expires === undefined ? undefined : parseInstant(ref.expires);
    let datesOk = true;
    if (ref.notBefore !== undefined && nb === undefined) {
      err(`${at}.notBefore`, 'POLICY_BAD_DATE', `notBefore ${ref.notBefore} is not a valid date`);
      datesOk = false;
    }
    if (ref.expires !== undefined && ex === undefined) {
      err(`${at}.expires`, 'POLICY_BAD_DATE', `expires ${ref.expires} is not a valid date`);
      datesOk = false;
    }
    if (nb !== undefined && ex !== undefined && ex <= nb) err(`${at}.expires`, 'POLICY_BAD_DATE', `${name} expires (${ref.expires}) before it becomes valid (${ref.notBefore})`);

    for (const [bank, byIndex] of Object.entries(ref.pcrs ?? {})) {
      const size = PCR_BANKS[bank as keyof typeof PCR_BANKS];
      for (const [index, values] of Object.entries(byIndex)) {
        values.forEach((v, j) => {
          if (v.length !== size * 2) err(`${at}.pcrs.${bank}["${index}"][${j}]`, 'POLICY_BAD_PCR_VALUE', `a ${bank} PCR value has ${size} bytes, this one has ${v.length / 2}`);
        });
      }
      const required = policy.tpm?.requiredBanks;
      if (required && !required.includes(bank)) warn(`${at}.pcrs.${bank}`, 'POLICY_BANK_NOT_REQUIRED', `PCR values of bank ${bank} are given but the bank is not in tpm.requiredBanks: a node that omits the bank fails`);
    }

    const v = datesOk ? validity(ref, now) : 'expired';
    if (datesOk && v === 'expired') warn(at, 'POLICY_REFERENCE_EXPIRED', `reference value ${name} expired at ${ref.expires} and is no longer accepted`);
    if (datesOk && v === 'notYetValid') warn(at, 'POLICY_REFERENCE_NOT_YET_VALID', `reference value ${name} becomes valid at ${ref.notBefore}`);
    for (const [key, values] of referenceEntries(ref)) {
      let list = providers.get(key);
      if (!list) providers.set(key, (list = []));
      list.push({ i, v });
      if (values.length === 0) warn(at, 'POLICY_EMPTY_REFERENCE', `${name} gives an empty list for ${key}, which accepts nothing from it`);
    }
  });

  for (const [key, list] of providers) {
    if (list.every((p) => p.v === 'expired')) {
      err(
        `$.referenceValues[${list[0]!.i}]`,
        'POLICY_REFERENCE_EXPIRED',
        `every reference value for ${key} has expired (${list.map((p) => `${refs[p.i]!.id}@${refs[p.i]!.version}`).join(', ')}), so no node can pass`,
      );
    } else if (list.every((p) => p.v !== 'active')) {
      warn(`$.referenceValues[${list[0]!.i}]`, 'POLICY_REFERENCE_NOT_YET_VALID', `no reference value for ${key} is valid yet, so no node can pass until one becomes valid`);
    }
  }
  return { errors, warnings };
}

/**
 * Parses, schema-validates and semantically checks a policy; throws POLICY_SCHEMA or POLICY_SEMANTIC
 * (details.errors, details.warnings) when it cannot be used at `now`.
 */
export function loadPolicy(textOrDoc: string | unknown, now: Date): { policy: Policy; warnings: PolicyIssue[] } {
  const policy = parsePolicy(textOrDoc);
  const { errors, warnings } = checkPolicy(policy, now);
  if (errors.length > 0) {
    const first = errors[0]!;
    throw inputError('POLICY_SEMANTIC', `the policy is not usable: ${first.path}: ${first.message}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}`, {
      errors,
      warnings,
    });
  }
  return { policy, warnings };
}
