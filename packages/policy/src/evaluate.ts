import { RULE_NAMES } from './codes.js';
import { inputError } from '@joinguard/core';
import { isSnpTee, isTdxTee, type AppraisalClaims, type BootClaims, type BootStringClaims, type EventRef } from './claims.js';
import { compilePattern } from './check.js';
import { policyDigest } from './digest.js';
import { ReferenceIndex, refOf, type ReferenceKey } from './refs.js';
import type { Appraisal, Policy, RuleResult } from './types.js';

/**
 * Kernel command lines and grub commands come from the node; patterns run over at most this many
 * characters (Linux's COMMAND_LINE_SIZE is 2048 on x86) so that a crafted event cannot make a
 * backtracking pattern run for long. Patterns that can backtrack exponentially, for which no length
 * bound helps, are refused when the policy is loaded (compilePattern).
 */
export const MAX_MATCHED_STRING = 4096;

const TCB_COMPONENTS = ['bootloader', 'tee', 'snp', 'microcode', 'fmc'] as const;

type Extra = Pick<RuleResult, 'path' | 'eventIndex' | 'pcr' | 'referenceValue'>;

class Results {
  readonly list: RuleResult[] = [];

  pass(rule: string, expected: unknown, actual: unknown, message: string, extra: Extra = {}): void {
    this.list.push({ rule, outcome: 'pass', expected, actual, message, ...clean(extra) });
  }

  fail(rule: string, code: string, expected: unknown, actual: unknown, message: string, extra: Extra = {}): void {
    this.list.push({ rule, outcome: 'fail', expected, actual, message, code, ...clean(extra) });
  }

  skip(rule: string, message: string, extra: Extra = {}): void {
    this.list.push({ rule, outcome: 'skip', expected: null, actual: null, message, ...clean(extra) });
  }
}

function clean(extra: Extra): Extra {
  const out: Extra = {};
  if (extra.path !== undefined) out.path = extra.path;
  if (extra.eventIndex !== undefined) out.eventIndex = extra.eventIndex;
  if (extra.pcr !== undefined) out.pcr = extra.pcr;
  if (extra.referenceValue !== undefined) out.referenceValue = extra.referenceValue;
  return out;
}

function at(ev: EventRef | undefined): Extra {
  return { eventIndex: ev?.eventIndex, pcr: ev?.pcr };
}

function where(ev: EventRef | undefined): string {
  if (ev?.eventIndex === undefined) return '';
  return ` (event ${ev.eventIndex}${ev.pcr === undefined ? '' : `, PCR ${ev.pcr}`})`;
}

function describeRef(r: { id: string; version: string }): string {
  return `${r.id}@${r.version}`;
}

/** The failure code of a reference mismatch, by the kind of claim. */
function mismatchCode(key: ReferenceKey): string {
  if (key.startsWith('pcrs.')) return 'POLICY_PCR_MISMATCH';
  if (key === 'boot.bootApps') return 'POLICY_BOOT_APP_UNKNOWN';
  if (key === 'boot.kernelCmdline') return 'POLICY_KERNEL_CMDLINE';
  return 'POLICY_MEASUREMENT_MISMATCH';
}

/** Compares one claimed value with the reference values for `key`, reporting which one matched. */
function checkReference(r: Results, refs: ReferenceIndex, rule: string, key: ReferenceKey, actual: unknown, extra: Extra, what: string): void {
  if (!refs.has(key)) {
    r.skip(rule, `no reference values for ${key}`, extra);
    return;
  }
  const expected = refs.activeValues(key);
  if (typeof actual !== 'string') {
    r.fail(rule, 'POLICY_CLAIMS_MISSING', expected, actual ?? null, `${what} is missing from the evidence`, extra);
    return;
  }
  const found = refs.lookup(key, actual);
  if (found.active) {
    r.pass(rule, expected, actual, `${what} matches reference value ${describeRef(found.active)}`, { ...extra, referenceValue: refOf(found.active) });
    return;
  }
  if (found.inactive) {
    const { ref, validity } = found.inactive;
    const code = validity === 'expired' ? 'POLICY_REFERENCE_EXPIRED' : 'POLICY_REFERENCE_NOT_YET_VALID';
    const when = validity === 'expired' ? `expired at ${ref.expires}` : `is valid only from ${ref.notBefore}`;
    r.fail(rule, code, expected, actual, `${what} ${actual} matches only reference value ${describeRef(ref)}, which ${when}`, { ...extra, referenceValue: refOf(ref) });
    return;
  }
  r.fail(rule, mismatchCode(key), expected, actual, `${what} ${actual} is not among the ${expected.length} accepted reference value(s)`, extra);
}

function evaluateTee(r: Results, policy: Policy, claims: AppraisalClaims): void {
  const ok = policy.tee.allowed.includes(claims.tee);
  if (ok) r.pass('tee.allowed', policy.tee.allowed, claims.tee, `tee ${claims.tee} is allowed`, { path: 'tee' });
  else r.fail('tee.allowed', 'POLICY_TEE_NOT_ALLOWED', policy.tee.allowed, claims.tee ?? null, `tee ${String(claims.tee)} is not one of ${policy.tee.allowed.join(', ')}`, { path: 'tee' });
}

const SNP_RULES = ['snp.tcb.minimum', 'snp.policy.debug', 'snp.policy.migrateMa', 'snp.policy.smt', 'snp.policy.singleSocket', 'snp.vmpl', 'snp.guestSvn', 'snp.measurement', 'snp.hostData', 'snp.idKeyDigest', 'snp.authorKeyDigest'];

function evaluateSnp(r: Results, policy: Policy, claims: AppraisalClaims, refs: ReferenceIndex): void {
  if (!isSnpTee(claims.tee)) {
    for (const rule of SNP_RULES) r.skip(rule, `tee ${claims.tee} is not SNP`);
    return;
  }
  const snp = claims.snp;
  if (!snp) {
    for (const rule of SNP_RULES) r.fail(rule, 'POLICY_CLAIMS_MISSING', 'SNP report claims', null, `tee ${claims.tee} has no SNP report claims`, { path: 'snp' });
    return;
  }
  const s = policy.snp ?? {};

  const min = s.minimumTcb;
  if (!min) r.skip('snp.tcb.minimum', 'the policy sets no minimum TCB');
  else {
    for (const c of TCB_COMPONENTS) {
      const want = min[c];
      if (want === undefined) continue;
      const path = `snp.reportedTcb.${c}`;
      const have = snp.reportedTcb?.[c];
      // fmc exists only on Turin and later; older products have no such component to hold back.
      if (have === undefined && c === 'fmc') r.skip('snp.tcb.minimum', 'reportedTcb has no fmc component (pre-Turin product)', { path });
      else if (typeof have !== 'number') r.fail('snp.tcb.minimum', 'POLICY_CLAIMS_MISSING', { [c]: want }, null, `reportedTcb.${c} is missing`, { path });
      else if (have < want) r.fail('snp.tcb.minimum', 'POLICY_TCB_TOO_LOW', { [c]: want }, { [c]: have }, `reportedTcb.${c} is ${have}, below the minimum ${want}`, { path });
      else r.pass('snp.tcb.minimum', { [c]: want }, { [c]: have }, `reportedTcb.${c} ${have} >= ${want}`, { path });
    }
  }

  const gp = s.guestPolicy ?? {};
  const bit = (rule: string, field: 'debug' | 'migrateMa' | 'smt' | 'singleSocket', want: boolean | undefined, why: string) => {
    const path = `snp.policy.${field}`;
    if (want === undefined) {
      r.skip(rule, `the policy does not constrain the guest policy bit ${field}`, { path });
      return;
    }
    const have = snp.policy?.[field];
    if (have === want) r.pass(rule, want, have, `guest policy ${field} is ${have}`, { path });
    else r.fail(rule, 'POLICY_GUEST_POLICY', want, have ?? null, `guest policy ${field} is ${String(have)}, expected ${want}: ${why}`, { path });
  };
  bit('snp.policy.debug', 'debug', gp.allowDebug === true ? undefined : false, 'a debug guest has host-readable memory');
  bit('snp.policy.migrateMa', 'migrateMa', gp.allowMigrateMa === true ? undefined : false, 'a migration agent can export the guest');
  bit('snp.policy.smt', 'smt', gp.allowSmt === false ? false : undefined, 'the pool requires guests that refuse SMT hosts');
  bit('snp.policy.singleSocket', 'singleSocket', gp.requireSingleSocket === true ? true : undefined, 'the pool requires single-socket guests');

  if (!s.allowedVmpl) r.skip('snp.vmpl', 'the policy does not constrain the VMPL');
  else if (s.allowedVmpl.includes(snp.vmpl)) r.pass('snp.vmpl', s.allowedVmpl, snp.vmpl, `VMPL ${snp.vmpl} is allowed`, { path: 'snp.vmpl' });
  else r.fail('snp.vmpl', 'POLICY_VMPL', s.allowedVmpl, snp.vmpl ?? null, `VMPL ${snp.vmpl} is not one of ${s.allowedVmpl.join(', ')}`, { path: 'snp.vmpl' });

  if (s.minimumGuestSvn === undefined) r.skip('snp.guestSvn', 'the policy sets no minimum guest SVN');
  else if (typeof snp.guestSvn === 'number' && snp.guestSvn >= s.minimumGuestSvn) r.pass('snp.guestSvn', { minimum: s.minimumGuestSvn }, snp.guestSvn, `guestSvn ${snp.guestSvn} >= ${s.minimumGuestSvn}`, { path: 'snp.guestSvn' });
  else r.fail('snp.guestSvn', 'POLICY_GUEST_SVN_TOO_LOW', { minimum: s.minimumGuestSvn }, snp.guestSvn ?? null, `guestSvn ${String(snp.guestSvn)} is below ${s.minimumGuestSvn}`, { path: 'snp.guestSvn' });

  for (const f of ['measurement', 'hostData', 'idKeyDigest', 'authorKeyDigest'] as const) {
    checkReference(r, refs, `snp.${f}`, `snp.${f}`, snp[f], { path: `snp.${f}` }, f);
  }
}

const TDX_MR = ['mrTd', 'mrConfigId', 'mrOwner', 'mrOwnerConfig', 'rtmr0', 'rtmr1', 'rtmr2', 'rtmr3'] as const;
const TDX_RULES = ['tdx.tcbStatus', 'tdx.advisoryIds', 'tdx.tdAttributes.debug', ...TDX_MR.map((m) => `tdx.${m}`)];

function evaluateTdx(r: Results, policy: Policy, claims: AppraisalClaims, refs: ReferenceIndex): void {
  if (!isTdxTee(claims.tee)) {
    for (const rule of TDX_RULES) r.skip(rule, `tee ${claims.tee} is not TDX`);
    return;
  }
  const tdx = claims.tdx;
  if (!tdx) {
    for (const rule of TDX_RULES) r.fail(rule, 'POLICY_CLAIMS_MISSING', 'TDX quote claims', null, `tee ${claims.tee} has no TDX quote claims`, { path: 'tdx' });
    return;
  }
  const t = policy.tdx ?? {};

  const statuses: string[] = t.allowedTcbStatuses ?? ['UpToDate'];
  if (statuses.includes(tdx.tcbStatus)) r.pass('tdx.tcbStatus', statuses, tdx.tcbStatus, `TCB status ${tdx.tcbStatus} is allowed`, { path: 'tdx.tcbStatus' });
  else r.fail('tdx.tcbStatus', 'POLICY_TDX_TCB_STATUS', statuses, tdx.tcbStatus ?? null, `TCB status ${String(tdx.tcbStatus)} is not one of ${statuses.join(', ')}`, { path: 'tdx.tcbStatus' });

  if (!t.allowedAdvisoryIds) r.skip('tdx.advisoryIds', 'the policy does not list accepted advisories');
  else {
    const advisories = Array.isArray(tdx.advisoryIds) ? tdx.advisoryIds : [];
    const unaccepted = advisories.filter((a) => !t.allowedAdvisoryIds!.includes(a));
    if (unaccepted.length === 0) r.pass('tdx.advisoryIds', t.allowedAdvisoryIds, advisories, `all ${advisories.length} advisories are accepted`, { path: 'tdx.advisoryIds' });
    else r.fail('tdx.advisoryIds', 'POLICY_TDX_ADVISORY', t.allowedAdvisoryIds, advisories, `advisories not accepted by the policy: ${unaccepted.join(', ')}`, { path: 'tdx.advisoryIds' });
  }

  if (t.allowDebug === true) r.skip('tdx.tdAttributes.debug', 'the policy allows debug TDs', { path: 'tdx.tdAttributes' });
  else {
    // TDATTRIBUTES is a little-endian 64-bit field; DEBUG is bit 0, i.e. the low bit of the first byte.
    const attrs = typeof tdx.tdAttributes === 'string' ? tdx.tdAttributes : '';
    if (!/^[0-9a-fA-F]{16}$/.test(attrs)) r.fail('tdx.tdAttributes.debug', 'POLICY_CLAIMS_MISSING', 'tdAttributes, 8 bytes', tdx.tdAttributes ?? null, 'tdAttributes is not 8 bytes of hex', { path: 'tdx.tdAttributes' });
    else {
      const debug = (parseInt(attrs.slice(0, 2), 16) & 1) === 1;
      if (!debug) r.pass('tdx.tdAttributes.debug', { debug: false }, { debug, tdAttributes: attrs }, 'the TD is not a debug TD', { path: 'tdx.tdAttributes' });
      else r.fail('tdx.tdAttributes.debug', 'POLICY_DEBUG', { debug: false }, { debug, tdAttributes: attrs }, `tdAttributes ${attrs} has DEBUG set: the TD's memory is readable by the host`, { path: 'tdx.tdAttributes' });
    }
  }

  for (const m of TDX_MR) checkReference(r, refs, `tdx.${m}`, `tdx.${m}`, tdx[m], { path: `tdx.${m}` }, m);
}

function evaluateTpm(r: Results, policy: Policy, claims: AppraisalClaims, refs: ReferenceIndex): void {
  const required = policy.tpm?.requiredBanks;
  const tpm = claims.tpm;
  if (!required) r.skip('tpm.banks.required', 'the policy requires no PCR banks');
  else {
    for (const bank of required) {
      const path = `tpm.pcrs.${bank}`;
      const banks = Array.isArray(tpm?.banks) ? tpm.banks : [];
      if (!tpm) r.fail('tpm.banks.required', 'POLICY_CLAIMS_MISSING', bank, null, `bank ${bank} is required but the evidence has no TPM quote`, { path: 'tpm' });
      else if (banks.includes(bank) && tpm.pcrs?.[bank] !== undefined) r.pass('tpm.banks.required', bank, banks, `bank ${bank} was quoted`, { path });
      else r.fail('tpm.banks.required', 'POLICY_PCR_BANK_MISSING', bank, banks, `bank ${bank} is required but the quote covers ${banks.join(', ') || 'no bank'}`, { path });
    }
  }
  const keys = refs
    .keys()
    .filter((k) => k.startsWith('pcrs.'))
    .map((k) => {
      const [, bank, index] = k.split('.');
      return { key: k, bank: bank!, index: Number(index) };
    })
    .sort((a, b) => (a.bank === b.bank ? a.index - b.index : a.bank < b.bank ? -1 : 1));
  for (const { key, bank, index } of keys) {
    const value = tpm?.pcrs?.[bank]?.[String(index)];
    checkReference(r, refs, `tpm.pcrs.${bank}.${index}`, key, value, { path: `tpm.pcrs.${bank}.${index}`, pcr: index }, `PCR ${index} (${bank})`);
  }
}

/** The measured-boot rules, in RULE_NAMES order (the one list of rule names). */
const BOOT_RULES = RULE_NAMES.filter((r) => r.startsWith('boot.'));

/**
 * The boot rules whose setting defaults to true (requireSecureBoot, requireVerifiedEvents): they apply to
 * every policy, with or without a boot section, as the snp and tdx defaults do. The others need a boot
 * section or a boot reference value to say what to check.
 */
const DEFAULT_BOOT_RULES: ReadonlySet<string> = new Set(['boot.secureBoot', 'boot.events.verified']);

function boundedTest(re: RegExp, s: string): boolean | undefined {
  if (s.length > MAX_MATCHED_STRING) return undefined;
  return re.test(s);
}

/** Whether a boot rule has something to check under this policy (with an event log it would not be skipped). */
function bootRuleChecks(rule: string, b: BootSection, refs: ReferenceIndex): boolean {
  switch (rule) {
    case 'boot.secureBoot':
      return b?.requireSecureBoot !== false;
    case 'boot.events.verified':
      return b?.requireVerifiedEvents !== false;
    case 'boot.pk':
    case 'boot.kek':
    case 'boot.db':
    case 'boot.dbx':
      return refs.has(`${rule}.certSha256`) || refs.has(`${rule}.hashes`);
    case 'boot.bootApps.allowed':
      return refs.has('boot.bootApps');
    case 'boot.kernelCmdline.allowed':
      return refs.has('boot.kernelCmdline');
    case 'boot.kernelCmdline.required':
      return b?.kernelCmdline?.required !== undefined;
    case 'boot.kernelCmdline.forbidden':
      return b?.kernelCmdline?.forbidden !== undefined;
    case 'boot.grubCommands.forbidden':
      return b?.grubCommands?.forbidden !== undefined;
    default:
      return true;
  }
}

function evaluateBoot(r: Results, policy: Policy, claims: AppraisalClaims, refs: ReferenceIndex): void {
  const b = policy.boot;
  const configured = b !== undefined || refs.keys().some((k) => k.startsWith('boot.'));
  const applies = (rule: string) => configured || DEFAULT_BOOT_RULES.has(rule);
  const boot = claims.boot;
  if (!boot) {
    // Without an event log, each rule that would check something fails, and only those: a rule switched off
    // (requireSecureBoot: false) or given nothing to check is skipped, as it is with a log.
    for (const rule of BOOT_RULES) {
      if (bootRuleChecks(rule, b, refs)) r.fail(rule, 'POLICY_CLAIMS_MISSING', 'a replayed event log', null, `${rule} has something to check but the evidence has no event log`, { path: 'boot' });
      else r.skip(rule, 'the policy gives this rule nothing to check');
    }
    return;
  }

  if (b?.requireSecureBoot === false) r.skip('boot.secureBoot', 'the policy does not require Secure Boot', { path: 'boot.secureBoot' });
  else if (boot.secureBoot === true) r.pass('boot.secureBoot', true, true, `Secure Boot is enabled${where(boot.secureBootEvent)}`, { path: 'boot.secureBoot', ...at(boot.secureBootEvent) });
  else
    r.fail(
      'boot.secureBoot',
      'POLICY_SECURE_BOOT',
      true,
      boot.secureBoot ?? null,
      boot.secureBoot === false ? `Secure Boot is disabled${where(boot.secureBootEvent)}` : 'the SecureBoot variable was not measured',
      { path: 'boot.secureBoot', ...at(boot.secureBootEvent) },
    );

  if (configured) {
    for (const v of ['pk', 'kek', 'db'] as const) evaluateSignatureAllowList(r, refs, boot, v);
    evaluateDbx(r, refs, boot);
    evaluateBootApps(r, refs, boot);
    evaluateStrings(r, refs, b, boot);
  } else {
    for (const rule of BOOT_RULES) if (!applies(rule)) r.skip(rule, 'the policy has no measured-boot rules');
  }

  if (b?.requireVerifiedEvents === false) r.skip('boot.events.verified', 'the policy accepts events whose digest does not match their data');
  else {
    const bad = Array.isArray(boot.unverifiedEvents) ? boot.unverifiedEvents : [];
    if (bad.length === 0) r.pass('boot.events.verified', 'every decoded event matches its digest', [], 'every decoded event matches its digest', { path: 'boot.unverifiedEvents' });
    bad.forEach((e, i) =>
      r.fail('boot.events.verified', 'POLICY_EVENT_UNVERIFIED', 'event data matching its digest', e, `${e.type} event${where(e)} does not match its digest${e.reason ? `: ${e.reason}` : ''}`, {
        path: `boot.unverifiedEvents[${i}]`,
        ...at(e),
      }),
    );
  }
}

/** PK, KEK, db: everything measured must be a reference entry, since anything there is trusted to sign boot code. */
function evaluateSignatureAllowList(r: Results, refs: ReferenceIndex, boot: BootClaims, v: 'pk' | 'kek' | 'db'): void {
  const rule = `boot.${v}`;
  const certKey = `boot.${v}.certSha256`;
  const hashKey = `boot.${v}.hashes`;
  if (!refs.has(certKey) && !refs.has(hashKey)) {
    r.skip(rule, `no reference values for ${v}`);
    return;
  }
  const measured = boot[v];
  const expected = { certSha256: refs.activeValues(certKey), hashes: refs.activeValues(hashKey) };
  if (!measured) {
    r.fail(rule, 'POLICY_CLAIMS_MISSING', expected, null, `the ${v} variable was not measured`, { path: `boot.${v}` });
    return;
  }
  let failed = false;
  for (const [field, key] of [['certSha256', certKey], ['hashes', hashKey]] as const) {
    const list = Array.isArray(measured[field]) ? measured[field] : [];
    list.forEach((entry, i) => {
      const found = refs.lookup(key, entry);
      if (found.active) return;
      failed = true;
      const extra: Extra = { path: `boot.${v}.${field}[${i}]`, ...at(measured) };
      if (found.inactive) extra.referenceValue = refOf(found.inactive.ref);
      const note = found.inactive ? ` (only in ${describeRef(found.inactive.ref)}, not valid now)` : '';
      r.fail(rule, 'POLICY_EFI_VARIABLE', expected[field], entry, `${v} holds ${field === 'certSha256' ? 'a certificate' : 'a hash'} ${entry} that no active reference value lists${note}${where(measured)}`, extra);
    });
  }
  if (!failed) r.pass(rule, expected, { certSha256: measured.certSha256, hashes: measured.hashes }, `every ${v} entry is in the reference values${where(measured)}`, { path: `boot.${v}`, ...at(measured) });
}

/** dbx: the reverse direction; every required revocation must be present. */
function evaluateDbx(r: Results, refs: ReferenceIndex, boot: BootClaims): void {
  const keys = ['boot.dbx.certSha256', 'boot.dbx.hashes'] as const;
  if (!refs.has(keys[0]) && !refs.has(keys[1])) {
    r.skip('boot.dbx', 'no reference values for dbx');
    return;
  }
  const measured = boot.dbx;
  const expected = { certSha256: refs.activeValues(keys[0]), hashes: refs.activeValues(keys[1]) };
  if (!measured) {
    r.fail('boot.dbx', 'POLICY_CLAIMS_MISSING', expected, null, 'the dbx variable was not measured', { path: 'boot.dbx' });
    return;
  }
  let failed = false;
  for (const field of ['certSha256', 'hashes'] as const) {
    const have = new Set((Array.isArray(measured[field]) ? measured[field] : []).map((x) => x.toLowerCase()));
    for (const want of expected[field]) {
      if (have.has(want)) continue;
      failed = true;
      r.fail('boot.dbx', 'POLICY_EFI_VARIABLE', want, null, `dbx lacks the required revocation ${want} (${field})${where(measured)}`, { path: `boot.dbx.${field}`, ...at(measured) });
    }
  }
  if (!failed) r.pass('boot.dbx', expected, { certSha256: measured.certSha256, hashes: measured.hashes }, `dbx holds every required revocation${where(measured)}`, { path: 'boot.dbx', ...at(measured) });
}

function evaluateBootApps(r: Results, refs: ReferenceIndex, boot: BootClaims): void {
  const rule = 'boot.bootApps.allowed';
  if (!refs.has('boot.bootApps')) {
    r.skip(rule, 'no reference values for boot applications');
    return;
  }
  const apps = Array.isArray(boot.bootApps) ? boot.bootApps : [];
  if (apps.length === 0) {
    r.fail(rule, 'POLICY_CLAIMS_MISSING', refs.activeValues('boot.bootApps'), [], 'the event log measured no boot application', { path: 'boot.bootApps' });
    return;
  }
  apps.forEach((app, i) => {
    const name = `boot application${app.path ? ` ${app.path}` : ''}${where(app)}`;
    checkReference(r, refs, rule, 'boot.bootApps', app.digestSha256, { path: `boot.bootApps[${i}].digestSha256`, ...at(app) }, name);
  });
}

type BootSection = Policy['boot'];

function evaluateStrings(r: Results, refs: ReferenceIndex, b: BootSection, boot: BootClaims): void {
  const cmdlines = Array.isArray(boot.kernelCmdline) ? boot.kernelCmdline : [];
  const grub = Array.isArray(boot.grubCommands) ? boot.grubCommands : [];

  if (!refs.has('boot.kernelCmdline')) r.skip('boot.kernelCmdline.allowed', 'no reference values for the kernel command line');
  else if (cmdlines.length === 0) r.fail('boot.kernelCmdline.allowed', 'POLICY_CLAIMS_MISSING', refs.activeValues('boot.kernelCmdline'), [], 'no kernel command line was measured', { path: 'boot.kernelCmdline' });
  else cmdlines.forEach((c, i) => checkReference(r, refs, 'boot.kernelCmdline.allowed', 'boot.kernelCmdline', c.value, { path: `boot.kernelCmdline[${i}]`, ...at(c) }, `kernel command line${where(c)}`));

  const required = b?.kernelCmdline?.required;
  if (!required) r.skip('boot.kernelCmdline.required', 'the policy requires no kernel command line pattern');
  else for (const p of required) matchRequired(r, 'boot.kernelCmdline.required', p, cmdlines, 'boot.kernelCmdline');

  const forbidden = b?.kernelCmdline?.forbidden;
  if (!forbidden) r.skip('boot.kernelCmdline.forbidden', 'the policy forbids no kernel command line pattern');
  else for (const p of forbidden) matchForbidden(r, 'boot.kernelCmdline.forbidden', p, cmdlines, 'boot.kernelCmdline', 'kernel command line');

  const grubForbidden = b?.grubCommands?.forbidden;
  if (!grubForbidden) r.skip('boot.grubCommands.forbidden', 'the policy forbids no grub command');
  else for (const p of grubForbidden) matchForbidden(r, 'boot.grubCommands.forbidden', p, grub, 'boot.grubCommands', 'grub command');
}

function compiled(p: string): RegExp {
  const re = compilePattern(p);
  // loadPolicy refuses such policies; a caller that skipped it gets an input error, not a verdict (and an
  // exponentially backtracking pattern is never run).
  if (!(re instanceof RegExp)) throw inputError(re.code, re.message, { pattern: p });
  return re;
}

/**
 * A required pattern must match *every* measured kernel command line: a boot measures one, and a line that
 * root appended to PCR 8 after boot must not be able to stand in for the one the kernel really booted with.
 */
function matchRequired(r: Results, rule: string, p: string, items: BootStringClaims[], base: string): void {
  const re = compiled(p);
  const expected = { pattern: p };
  if (items.length === 0) {
    r.fail(rule, 'POLICY_KERNEL_CMDLINE', expected, [], `no kernel command line was measured, /${p}/ is required`, { path: base });
    return;
  }
  const missing = items.findIndex((it) => !(typeof it.value === 'string' && boundedTest(re, it.value) === true));
  if (missing === -1) {
    r.pass(rule, expected, items.map((it) => it.value), `/${p}/ matches every measured kernel command line`, { path: base, ...at(items[0]!) });
    return;
  }
  const it = items[missing]!;
  r.fail(rule, 'POLICY_KERNEL_CMDLINE', expected, it.value, `the kernel command line${where(it)} does not match /${p}/`, { path: `${base}[${missing}]`, ...at(it) });
}

function matchForbidden(r: Results, rule: string, p: string, items: BootStringClaims[], base: string, what: string): void {
  const re = compiled(p);
  const expected = { notMatching: p };
  const code = base === 'boot.grubCommands' ? 'POLICY_GRUB_COMMAND' : 'POLICY_KERNEL_CMDLINE';
  let failed = false;
  items.forEach((it, i) => {
    const value = typeof it.value === 'string' ? it.value : '';
    const m = boundedTest(re, value);
    if (m === false) return;
    failed = true;
    const msg = m === undefined ? `the ${what}${where(it)} is longer than ${MAX_MATCHED_STRING} characters and cannot be checked` : `the ${what}${where(it)} matches the forbidden pattern /${p}/`;
    r.fail(rule, code, expected, value.length > MAX_MATCHED_STRING ? `${value.slice(0, 256)}…` : value, msg, { path: `${base}[${i}]`, ...at(it) });
  });
  if (!failed) r.pass(rule, expected, items.map((it) => it.value), `no ${what} matches /${p}/`, { path: base });
}

function assertNow(now: Date): void {
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) throw inputError('POLICY_BAD_TIME', 'the evaluation time is not a valid date');
}

/**
 * Appraises normalized claims against a policy at `now`. Never throws for bad evidence: every rule gets
 * an outcome, and the verdict is `fail` when any rule failed. Throws only for an unusable policy or time
 * (input errors), so the caller should have loaded the policy with loadPolicy. A caller that keeps the
 * policy's digest (the verifier computes it once, when it loads the policy) passes it as `digest`.
 */
export function evaluate(policy: Policy, claims: AppraisalClaims, now: Date, digest?: string): Appraisal {
  assertNow(now);
  return appraise(policy, claims, now, digest ?? policyDigest(policy), new ReferenceIndex(policy.referenceValues ?? [], now));
}

/** evaluate() with the digest and reference index computed once for many appraisals (dry runs). */
export function appraise(policy: Policy, claims: AppraisalClaims, now: Date, digest: string, refs: ReferenceIndex): Appraisal {
  const r = new Results();
  evaluateTee(r, policy, claims);
  evaluateSnp(r, policy, claims, refs);
  evaluateTdx(r, policy, claims, refs);
  evaluateTpm(r, policy, claims, refs);
  evaluateBoot(r, policy, claims, refs);
  const failures = r.list.filter((x) => x.outcome === 'fail');
  return {
    verdict: failures.length === 0 ? 'pass' : 'fail',
    policy: { name: policy.name, digest },
    evaluatedAt: now.toISOString(),
    results: r.list,
    failures,
  };
}

export function preparedAppraiser(policy: Policy, now: Date): (claims: AppraisalClaims) => Appraisal {
  assertNow(now);
  const digest = policyDigest(policy);
  const refs = new ReferenceIndex(policy.referenceValues ?? [], now);
  return (claims) => appraise(policy, claims, now, digest, refs);
}
