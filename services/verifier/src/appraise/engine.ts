import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { BoundedMap, deepFreeze, digest, equalBytes, reject, toHex } from '@joinguard/core';
import { parseEventLog, replayPcrs, type EventLog, type PcrBanks } from '@joinguard/eventlog';
import { evaluate, evaluateAkPin, type AppraisalClaims, type BootClaims, type Policy, type RuleResult } from '@joinguard/policy';
import {
  bindingDigest, evidenceSchema, fromB64, fromB64url, jwkThumbprint, tpmExtraData, LIMITS, PURPOSES, TEES,
  type Appraisal, type Check, type Evidence, type Purpose, type RuntimeData, type TcbClaim, type Tee,
} from '@joinguard/protocol';
import type { ChainCache } from '@joinguard/snp';
import type { PckChainCache } from '@joinguard/tdx';
import { decodeAttest, resolveAk, verifyQuote, type QuoteClaims } from '@joinguard/tpm';
import * as ajvModule from 'ajv';
import type { Ajv as AjvClass, ValidateFunction } from 'ajv';
import { decodeHclReport, HCL_REPORT_TYPE, HW_REPORT_SIZE, sha256, type HclReport } from './azure.js';
import { bootClaims, checkReplay } from './boot.js';
import { asJson, CheckRun, clampMessage, mismatch } from './checks.js';
import { checkTdReportMatchesQuote, verifySnpHardware, verifyTdxHardware, type SnpHardwareResult, type TdxHardwareResult } from './hardware.js';
import type { AppraisalTrust } from './trust.js';

export interface AppraisalContext {
  now: Date;
  policy: Policy;
  policyRef: { id: string; digest: string };
  trust: AppraisalTrust;
  caches?: { snpChains?: ChainCache; tdxPck?: PckChainCache };
  /**
   * For a policy with `tpm.pinAk`: the AK the node is pinned to (hex SHA-256 of its TPMT_PUBLIC), null when it
   * is pinned to none yet. Absent: not known to the caller (offline verification), and rule tpm.akPinned is
   * skipped. The verifier reads it from the node's state.
   */
  pinnedAkSha256?: string | null;
}

export interface AppraisalOutcome {
  appraisal: Appraisal;
  claims?: AppraisalClaims;
  measurements: Record<string, string>;
  tcb: TcbClaim;
  /** teeKeyThumbprint is absent when the evidence could not be decoded (the verdict is then fail) */
  bindings: { teeKeyThumbprint?: string; kubeletKeySha256?: string };
  /** hex d = SHA-512(nonce ‖ SHA-256(JCS(runtimeData))); empty when the evidence could not be decoded */
  bindingDigest: string;
  /**
   * Every check before the policy passed: the hardware signed the report, it and the vTPM quote are bound to
   * this nonce and runtimeData, and the log replays to the quote. Only then is the evidence known to come
   * from a CVM that claimed this node's name (a passing verdict implies it; a failed one may have it or not).
   */
  evidenceVerified: boolean;
  /**
   * hex SHA-256 of tpm.akPublic (the TPMT_PUBLIC, as sent) of the AK whose quote verified and is bound to this
   * evidence (bare: runtimeData.akPublicSha256; Azure: the HCL report's HCLAkPub); absent otherwise
   */
  akPublicSha256?: string;
}

/**
 * What the evidence must be bound to, in place of values derived from d. Only for tests of published
 * vectors, which were bound to their publisher's challenge: never reachable from a configuration.
 */
export interface ExpectedBinding {
  /** Azure runtime claims `user-data` (instead of d). */
  azureUserData?: Uint8Array;
  /** TPM quote extraData (instead of SHA-256(d)). */
  tpmExtraData?: Uint8Array;
  /** Judge a TDX quote by its signatures and PCK chain alone (collateral for its platform is not published). */
  tdxWithoutCollateral?: boolean;
}

interface Decoded {
  tee: Tee;
  runtimeData: RuntimeData;
  nonce: Uint8Array;
  d: Uint8Array;
  report: Uint8Array;
  certs: Record<string, string>;
  quote: Uint8Array;
  signature: Uint8Array;
  akPublic: Uint8Array;
  pcrs: Record<string, Record<string, string>>;
  /** The log's bytes, or the log parsed before from the same text (then the bytes are not decoded again). */
  eventLog: Uint8Array | KnownLog;
}

/**
 * An event log parsed before. Its replay and boot claims are added, and the whole frozen, when the log is
 * first seen again: a log seen only once costs nothing but its entry.
 */
interface KnownLog {
  log: EventLog;
  /** null: the log cannot be replayed (the full comparison says why) */
  replayed?: PcrBanks | null;
  boot?: BootClaims;
}

/**
 * A node sends the same event log at every re-attestation, and parsing, replaying and reading it costs more
 * than the rest of its decoding (real logs hold 50 to 100 events): logs parsed lately are remembered by their
 * text (at most 64 logs and 16 Mi characters of them, oldest first out), with their replayed PCR values and
 * boot claims. All of it is a function of the text alone and frozen; the comparison with the quoted PCRs,
 * which differ per quote, is made every time.
 */
const knownLogs = new BoundedMap<string, KnownLog>(64, 16 * 1024 * 1024);

/** For tests: how much the memo of parsed logs holds, and emptying it. */
export function knownLogsUsage(): { entries: number; chars: number } {
  return { entries: knownLogs.size, chars: knownLogs.cost };
}
export function forgetKnownLogs(): void {
  knownLogs.clear();
}

/** The log's replay, made (and the log frozen, being shared from now on) on its first re-use. */
function knownReplay(known: KnownLog): PcrBanks | undefined {
  if (known.replayed === undefined) {
    try {
      known.replayed = deepFreeze(replayPcrs(deepFreeze(known.log)));
    } catch {
      known.replayed = null;
    }
  }
  return known.replayed ?? undefined;
}

const MAX_CHECKS = LIMITS.maxChecks;

// The edge schema of POST /v1/attest, except that teeKey is checked by its own named check (a key with `d`
// must fail as `teeKey`, not as a decoding error).
let validateEvidence: ValidateFunction | undefined;
function evidenceValidator(): ValidateFunction {
  if (validateEvidence) return validateEvidence;
  const schema = structuredClone(evidenceSchema) as unknown as { properties: { runtimeData: { properties: Record<string, unknown> } } };
  schema.properties.runtimeData.properties.teeKey = { type: 'object', maxProperties: 16 };
  // ajv is CommonJS: under plain node ESM (the bundled CLI) only its default export exists, under a
  // bundler-style loader (vitest, tsx) the named one does.
  const m = ajvModule as unknown as { Ajv?: typeof AjvClass; default?: typeof AjvClass | { Ajv?: typeof AjvClass } };
  const Ctor = (m.Ajv ?? (typeof m.default === 'function' ? m.default : m.default?.Ajv))!;
  validateEvidence = new Ctor({ allErrors: false, strict: false }).compile(schema);
  return validateEvidence;
}

/**
 * Bundles that already passed the edge schema of POST /v1/attest, which is stricter than the engine's (it also
 * constrains teeKey): the server notes them so that a request's evidence is validated once, not twice.
 */
const passedEdgeSchema = new WeakSet<object>();

/** Notes that `e` passed the edge Evidence schema (the server calls this from its body validator). */
export function notePassedEdgeSchema(e: unknown): void {
  if (typeof e === 'object' && e !== null) passedEdgeSchema.add(e);
}

function decodeEvidence(e: unknown): Decoded {
  const validate = evidenceValidator();
  // Evidence that passed the edge schema has had every base64 field matched against its pattern there.
  const checked = passedEdgeSchema.has(e as object);
  if (!checked && !validate(e)) {
    const err = validate.errors?.[0];
    throw reject('APPRAISE_EVIDENCE_MALFORMED', `evidence does not match the Evidence schema: ${err?.instancePath || '/'} ${err?.message ?? ''}`.trim(), {
      path: err?.instancePath, keyword: err?.keyword,
    });
  }
  const ev = e as Evidence;
  const code = 'APPRAISE_EVIDENCE_MALFORMED';
  const nonce = fromB64url(ev.nonce, code, 'nonce');
  return {
    tee: ev.tee,
    runtimeData: ev.runtimeData,
    nonce,
    d: bindingDigest(nonce, ev.runtimeData),
    report: fromB64(ev.hardware.report, code, 'hardware.report', checked),
    certs: ev.hardware.certs ?? {},
    quote: fromB64(ev.tpm.quote, code, 'tpm.quote', checked),
    signature: fromB64(ev.tpm.signature, code, 'tpm.signature', checked),
    akPublic: fromB64(ev.tpm.akPublic, code, 'tpm.akPublic', checked),
    pcrs: ev.tpm.pcrs as Record<string, Record<string, string>>,
    // Only a text that decoded and parsed before is found here.
    eventLog: knownLogs.get(ev.eventLog) ?? fromB64(ev.eventLog, code, 'eventLog', checked),
  };
}

function equalOrFail(code: string, what: string, expected: Uint8Array, actual: Uint8Array): void {
  if (!equalBytes(expected, actual)) throw mismatch(code, `${what}: ${toHex(actual)} is not the expected ${toHex(expected)}`, toHex(expected), toHex(actual));
}

function spki(k: KeyObject): Buffer {
  return k.export({ type: 'spki', format: 'der' });
}

/**
 * Importing an EC point costs about as much as a P-256 signature check (OpenSSL validates it), and a node
 * re-attests with the key it attested with before: the last points found valid are kept (oldest evicted).
 */
const validTeeKeys = new BoundedMap<string, true>(1024);

/** A P-256 or X25519 public JWK and nothing private: the key broker encrypts the disk key to it. */
function checkTeeKey(k: unknown): string {
  if (k === null || typeof k !== 'object' || Array.isArray(k)) throw reject('APPRAISE_TEE_KEY_INVALID', 'runtimeData.teeKey is not a JWK object', {});
  const jwk = k as Record<string, unknown>;
  const privateMembers = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'].filter((m) => m in jwk);
  if (privateMembers.length > 0) {
    throw reject('APPRAISE_TEE_KEY_PRIVATE', `runtimeData.teeKey carries private key material (${privateMembers.join(', ')}): the attester leaked its key`, { members: privateMembers });
  }
  const allowed = new Set(['kty', 'crv', 'x', 'y', 'kid', 'alg', 'use']);
  const extra = Object.keys(jwk).filter((m) => !allowed.has(m));
  if (extra.length > 0) throw reject('APPRAISE_TEE_KEY_INVALID', `runtimeData.teeKey has unexpected members ${extra.join(', ')}`, { members: extra });
  const b64u32 = (v: unknown) => typeof v === 'string' && /^[A-Za-z0-9_-]{43}$/.test(v);
  let kind: string;
  if (jwk.kty === 'EC' && jwk.crv === 'P-256' && b64u32(jwk.x) && b64u32(jwk.y)) kind = 'EC P-256';
  else if (jwk.kty === 'OKP' && jwk.crv === 'X25519' && b64u32(jwk.x) && jwk.y === undefined) kind = 'OKP X25519';
  else throw reject('APPRAISE_TEE_KEY_INVALID', `runtimeData.teeKey must be an EC P-256 or OKP X25519 public JWK, got kty ${JSON.stringify(jwk.kty)} crv ${JSON.stringify(jwk.crv)}`, {});
  const point = `${kind} ${String(jwk.x)} ${String(jwk.y ?? '')}`;
  if (validTeeKeys.has(point)) return kind;
  try {
    // Rejects points that are not on the curve.
    createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, ...(jwk.y ? { y: jwk.y } : {}) } as JsonWebKey, format: 'jwk' });
  } catch (e) {
    throw reject('APPRAISE_TEE_KEY_INVALID', `runtimeData.teeKey is not a valid ${kind} public key: ${e instanceof Error ? e.message : String(e)}`, {});
  }
  validTeeKeys.set(point, true);
  return kind;
}

function policyCheck(r: RuleResult): Check {
  const c: Check = { name: `policy.${r.rule}`, outcome: r.outcome, message: clampMessage(r.message) };
  const exp = asJson(r.expected);
  const act = asJson(r.actual);
  if (exp !== undefined && exp !== null) c.expected = exp;
  if (act !== undefined && act !== null) c.actual = act;
  if (r.referenceValue && validName(r.referenceValue.id) && validName(r.referenceValue.version)) c.referenceValue = { id: r.referenceValue.id, version: r.referenceValue.version };
  if (r.outcome === 'fail') {
    c.code = r.code && /^[A-Z][A-Z0-9_]{0,63}$/.test(r.code) ? r.code : 'POLICY_RULE_FAILED';
    // Where it broke, so that a record names the field or event, not only the rule (passing rules leave it
    // out: their claims are the record's evidence, and every record would grow by it).
    if (typeof r.path === 'string' && r.path.length > 0 && r.path.length <= 256) c.path = r.path;
    if (Number.isInteger(r.eventIndex) && r.eventIndex! >= 0 && r.eventIndex! <= 1_000_000) c.eventIndex = r.eventIndex!;
    if (Number.isInteger(r.pcr) && r.pcr! >= 0 && r.pcr! <= 63) c.pcr = r.pcr!;
  }
  return c;
}

const validName = (s: unknown): s is string => typeof s === 'string' && s.length > 0 && s.length <= 256;

function safeTee(x: unknown): Tee {
  return (TEES as readonly unknown[]).includes(x) ? (x as Tee) : 'snp';
}

function fallbackHeader(e: unknown): { tee: Tee; node: string; purpose: Purpose } {
  const ev = (e !== null && typeof e === 'object' ? e : {}) as Partial<Evidence>;
  const rd = (ev.runtimeData !== null && typeof ev.runtimeData === 'object' ? ev.runtimeData : {}) as Partial<RuntimeData>;
  const node = typeof rd.nodeName === 'string' && /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(rd.nodeName) ? rd.nodeName : 'unknown';
  return { tee: safeTee(ev.tee), node, purpose: (PURPOSES as readonly unknown[]).includes(rd.purpose) ? (rd.purpose as Purpose) : 'join' };
}

/**
 * The whole appraisal of one evidence bundle (see index.ts for the contract). `expected` replaces values
 * derived from d; only tests pass it.
 */
export async function appraiseInternal(evidence: Evidence, ctx: AppraisalContext, expected: ExpectedBinding = {}): Promise<AppraisalOutcome> {
  const run = new CheckRun();
  const now = ctx.now;
  const header = fallbackHeader(evidence);
  const dec = await run.step('evidence.decode', () => decodeEvidence(evidence), (x) => ({ message: `tee ${x.tee}, node ${x.runtimeData.nodeName}, purpose ${x.runtimeData.purpose}` }));
  const tee = dec?.tee ?? header.tee;
  const isAzure = tee === 'azure-snp-vtpm' || tee === 'azure-tdx-vtpm';
  const isSnp = tee === 'snp' || tee === 'azure-snp-vtpm';
  const claims: AppraisalClaims = { tee };
  let claimsExist = false;
  let snpResult: SnpHardwareResult | undefined;
  let tdxResult: TdxHardwareResult | undefined;
  let hcl: HclReport | undefined;
  let quoteClaims: QuoteClaims | undefined;
  let akPublicSha256: string | undefined;

  // ---- hardware: signature, chain, TCB collateral
  const hw = await run.step(
    `${tee}.hardware`,
    async () => {
      const d = dec!;
      if (isAzure) {
        hcl = decodeHclReport(d.report);
        const wantType = isSnp ? HCL_REPORT_TYPE.snp : HCL_REPORT_TYPE.tdx;
        if (hcl.reportType !== wantType) {
          throw mismatch('AZURE_HCL_WRONG_REPORT_TYPE', `the HCL report is of type ${hcl.reportType}, evidence says ${tee} (type ${wantType})`, wantType, hcl.reportType);
        }
      }
      if (isSnp) {
        const report = hcl ? hcl.hardwareReport.subarray(0, HW_REPORT_SIZE) : d.report;
        snpResult = verifySnpHardware(report, d.certs, ctx.trust, now, ctx.caches?.snpChains);
        return { kind: 'snp' as const, reportData: snpResult.reportData };
      }
      // Azure TDX: the HCL report holds the (MAC-only) TDREPORT; the hardware-signed TD quote of that report
      // travels in hardware.certs.tdQuote (base64), as Azure's attestation library fetches it from the host.
      let quoteBytes = d.report;
      if (hcl) {
        const q = d.certs.tdQuote;
        if (!q) throw reject('AZURE_TD_QUOTE_MISSING', 'azure-tdx-vtpm evidence needs the TD quote in hardware.certs.tdQuote (base64)', {});
        quoteBytes = fromB64(q, 'APPRAISE_EVIDENCE_MALFORMED', 'hardware.certs.tdQuote');
      }
      tdxResult = await verifyTdxHardware(quoteBytes, ctx.trust, now, ctx.caches?.tdxPck, expected.tdxWithoutCollateral === true);
      if (hcl) checkTdReportMatchesQuote(hcl.hardwareReport, tdxResult.quote);
      return { kind: 'tdx' as const, reportData: tdxResult.reportData };
    },
    () => {
      if (snpResult) return { message: `SNP report (${snpResult.verified.product}, ${snpResult.verified.signingKey.toUpperCase()}) signature and chain to ARK ${snpResult.verified.chain.ark.sha256.slice(0, 16)}... verify` };
      const v = tdxResult!.verification;
      return { message: v ? `TDX quote, QE, PCK chain and collateral verify; TCB ${v.tcbStatus}, QE ${v.qeTcbStatus}` : 'TDX quote, QE and PCK chain verify (TCB not judged: no collateral, test mode)' };
    },
  );
  if (hw) {
    claimsExist = true;
    if (snpResult) claims.snp = snpResult.claims;
    if (tdxResult) claims.tdx = tdxResult.claims;
  }

  // ---- binding of the hardware report to d
  const d = dec?.d;
  if (!isAzure) {
    await run.step(
      'binding.reportData',
      () => equalOrFail('APPRAISE_REPORT_DATA_MISMATCH', 'REPORT_DATA is not d = SHA-512(nonce ‖ SHA-256(JCS(runtimeData)))', d!, hw!.reportData),
      () => ({ expected: toHex(d!), message: 'REPORT_DATA = d' }),
    );
  } else {
    await run.step(
      'binding.azure.userData',
      () => {
        const want = toHex(expected.azureUserData ?? d!);
        const got = hcl!.runtimeClaims.userData;
        if (got === undefined) throw reject('AZURE_USER_DATA_MISSING', 'the HCL runtime claims carry no user-data', {});
        if (got.toLowerCase() !== want) throw mismatch('AZURE_USER_DATA_MISMATCH', `runtime claims user-data ${got} is not hex(d) ${want}`, want, got.toLowerCase());
      },
      () => ({ message: expected.azureUserData ? 'runtime claims user-data = the expected test value' : 'runtime claims user-data = hex(d)' }),
    );
    await run.step(
      'binding.azure.varDataDigest',
      () => equalOrFail('AZURE_VAR_DATA_DIGEST_MISMATCH', 'REPORT_DATA[0:32] is not SHA-256 of the HCL runtime claims', sha256(hcl!.varData), hw!.reportData.subarray(0, 32)),
      () => ({ message: 'REPORT_DATA[0:32] = SHA-256(runtime claims)' }),
    );
  }

  // ---- vTPM: AK, quote, extraData
  if (!isAzure) {
    await run.step(
      'binding.akPublic',
      () => {
        const want = dec!.runtimeData.akPublicSha256;
        const got = digest('sha256', dec!.akPublic, 'hex');
        if (want === undefined) throw reject('APPRAISE_AK_NOT_BOUND', 'runtimeData.akPublicSha256 is absent: nothing binds the vTPM AK to this TEE', { actual: got });
        if (want.toLowerCase() !== got) throw mismatch('APPRAISE_AK_DIGEST_MISMATCH', `SHA-256(tpm.akPublic) ${got} is not runtimeData.akPublicSha256 ${want}`, want.toLowerCase(), got);
      },
      () => ({ message: 'SHA-256(TPMT_PUBLIC) = runtimeData.akPublicSha256' }),
    );
  }
  await run.step(
    'tpm.quote',
    () => {
      const x = dec!;
      if (isAzure) {
        // The HCL report, signed by the hardware, names the AK; a TPMT_PUBLIC sent with it must be that key.
        const hclAk: KeyObject = hcl!.runtimeClaims.ak;
        const sent = resolveAk(x.akPublic);
        if (!spki(sent.key).equals(spki(hclAk))) throw reject('AZURE_AK_MISMATCH', 'tpm.akPublic is not the HCLAkPub key of the HCL report', {});
        quoteClaims = verifyQuote({ quote: x.quote, signature: x.signature, akPublic: sent.pub ?? hclAk, pcrs: x.pcrs, allowAkWithoutAttributes: true });
      } else {
        quoteClaims = verifyQuote({ quote: x.quote, signature: x.signature, akPublic: x.akPublic, pcrs: x.pcrs });
      }
      return quoteClaims;
    },
    (q) => ({ message: `quote signature (${q.signature.sigAlg}/${q.signature.hash}) by the ${q.ak.attributesChecked ? 'restricted signing ' : ''}AK and pcrDigest over ${q.pcrSelect.map((s) => `${s.bank}:${s.pcrs.length}`).join(', ')} verify` }),
  );
  await run.step(
    'binding.tpmExtraData',
    () => {
      const want = expected.tpmExtraData ?? tpmExtraData(d!);
      equalOrFail('APPRAISE_TPM_EXTRA_DATA_MISMATCH', 'quote extraData is not SHA-256(d)', want, decodeAttest(dec!.quote).extraData);
    },
    () => ({ message: expected.tpmExtraData ? 'extraData = the expected test value' : 'extraData = SHA-256(d)' }),
  );
  if (quoteClaims && !run.failed) {
    const pcrs: Record<string, Record<string, string>> = {};
    for (const [bank, values] of Object.entries(quoteClaims.pcrs ?? {})) pcrs[bank] = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, String(v)]));
    claims.tpm = { banks: quoteClaims.pcrSelect.map((s) => s.bank), pcrs };
    akPublicSha256 = digest('sha256', dec!.akPublic, 'hex');
  }

  // ---- event log against the quoted PCRs
  let log: EventLog | undefined;
  let known: KnownLog | undefined;
  await run.step(
    'eventlog.replay',
    () => {
      const source = dec!.eventLog;
      const quoted = (quoteClaims!.pcrs ?? {}) as Record<string, Record<number, string>>;
      if (source instanceof Uint8Array) {
        // A log seen for the first time is compared in full, and remembered once it parsed.
        log = parseEventLog(source);
        knownLogs.set(evidence.eventLog, { log }, evidence.eventLog.length);
        return checkReplay(log, quoted);
      }
      known = source;
      log = known.log;
      return checkReplay(log, quoted, knownReplay(known));
    },
    (r) => ({ message: `${log!.events.length} events; ${r.compared} PCRs extended by the log equal the quoted ${r.banks.join(', ')} values` }),
  );
  if (log && !run.failed) claims.boot = known ? (known.boot ??= deepFreeze(bootClaims(log))) : bootClaims(log);

  await run.step('teeKey', () => checkTeeKey(dec!.runtimeData.teeKey), (k) => ({ message: `${k} public key, no private members` }));

  // ---- policy: every rule, once the claims exist
  const checks = run.checks;
  let policyFailed = false;
  if (claimsExist) {
    const a = evaluate(ctx.policy, claims, now, ctx.policyRef.digest);
    // Judged against the node's state, not the claims: only policies with tpm.pinAk have this rule at all.
    const pin = evaluateAkPin(ctx.policy, { ...(akPublicSha256 ? { akPublicSha256 } : {}), ...(ctx.pinnedAkSha256 !== undefined ? { pinned: ctx.pinnedAkSha256 } : {}) });
    // A record holds at most MAX_CHECKS checks (protocol LIMITS.maxChecks); a hostile log can make a rule fail
    // once per entry, so the excess is folded into one failed check that says how many were left out.
    const room = MAX_CHECKS - checks.length - 1 - (pin ? 1 : 0);
    for (const r of a.results.slice(0, room)) checks.push(policyCheck(r));
    if (pin) checks.push(policyCheck(pin));
    const left = a.results.slice(room);
    if (left.length > 0) {
      const failedLeft = left.filter((r) => r.outcome === 'fail');
      checks.push({
        name: 'policy.truncated',
        outcome: failedLeft.length > 0 ? 'fail' : 'skip',
        ...(failedLeft.length > 0 ? { code: 'APPRAISE_TOO_MANY_CHECKS' } : {}),
        message: `${left.length} more rule results (${failedLeft.length} failed, first ${failedLeft[0]?.rule ?? 'none'}) are not listed`,
      });
    }
    policyFailed = a.verdict === 'fail' || pin?.outcome === 'fail';
  } else {
    checks.push({ name: 'policy', outcome: 'skip', message: 'not evaluated: the evidence was not verified far enough to yield claims' });
  }

  const verdict = run.failed || policyFailed ? 'fail' : 'pass';
  const rd = dec?.runtimeData;
  const appraisal: Appraisal = {
    verdict,
    tee,
    node: rd?.nodeName ?? header.node,
    purpose: rd?.purpose ?? header.purpose,
    policy: { id: ctx.policyRef.id, digest: ctx.policyRef.digest },
    checks,
  };
  // Evidence that could not be decoded has no teeKey the verifier checked: its (failed) result names none.
  let teeKeyThumbprint: string | undefined;
  if (rd) {
    try {
      teeKeyThumbprint = await jwkThumbprint(rd.teeKey as Parameters<typeof jwkThumbprint>[0]);
    } catch {
      // not a key a thumbprint can be taken of: none is named
    }
  }
  const outcome: AppraisalOutcome = {
    appraisal,
    measurements: measurementsOf(claims),
    tcb: tcbOf(claims, tdxResult, checks),
    bindings: { ...(teeKeyThumbprint ? { teeKeyThumbprint } : {}), ...(rd?.kubeletKeySha256 ? { kubeletKeySha256: rd.kubeletKeySha256 } : {}) },
    bindingDigest: d ? toHex(d) : '',
    evidenceVerified: !run.failed,
  };
  if (akPublicSha256 && !run.failed) outcome.akPublicSha256 = akPublicSha256;
  if (claimsExist) outcome.claims = claims;
  return outcome;
}

function measurementsOf(c: AppraisalClaims): Record<string, string> {
  const m: Record<string, string> = {};
  if (c.snp) {
    m.measurement = c.snp.measurement;
    m.hostData = c.snp.hostData;
  }
  if (c.tdx) {
    m.mrTd = c.tdx.mrTd;
    for (const k of ['rtmr0', 'rtmr1', 'rtmr2', 'rtmr3', 'mrConfigId', 'mrOwner', 'mrOwnerConfig'] as const) m[k] = c.tdx[k];
  }
  for (const [bank, values] of Object.entries(c.tpm?.pcrs ?? {})) {
    for (const [pcr, v] of Object.entries(values)) m[`pcr.${bank}.${pcr}`] = v;
  }
  return m;
}

function tcbOf(c: AppraisalClaims, tdx: TdxHardwareResult | undefined, checks: Check[]): TcbClaim {
  if (c.snp) {
    const t = c.snp.reportedTcb;
    const low = checks.some((x) => x.name === 'policy.snp.tcb.minimum' && x.outcome === 'fail');
    return { status: low ? 'below-minimum' : 'ok', versions: { bootloader: t.bootloader, tee: t.tee, snp: t.snp, microcode: t.microcode, ...(t.fmc !== undefined ? { fmc: t.fmc } : {}) } };
  }
  if (c.tdx) {
    const v = tdx?.verification;
    return {
      status: c.tdx.tcbStatus,
      versions: { teeTcbSvn: c.tdx.teeTcbSvn ?? '', ...(v ? { tcbDate: v.claims.tcbDate, qeTcbStatus: v.qeTcbStatus, pceSvn: v.claims.pceSvn, tcbEvaluationDataNumber: v.claims.tcbEvaluationDataNumber } : {}) },
    };
  }
  return { status: 'unknown' };
}
