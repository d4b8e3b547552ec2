export type {
  AppraisalClaims,
  TeeKind,
  TcbVersion,
  SnpGuestPolicy,
  SnpPlatformInfo,
  SnpClaims,
  TdxClaims,
  TpmClaims,
  BootClaims,
  BootAppClaims,
  BootStringClaims,
  EfiSignatureListClaims,
  EventRef,
  UnverifiedEventClaims,
} from './claims.js';
export { TEE_KINDS, isSnpTee, isTdxTee } from './claims.js';
export type {
  Policy,
  ReferenceValue,
  EfiSignatureReference,
  MinimumTcb,
  SnpPolicySection,
  TdxPolicySection,
  TpmPolicySection,
  BootPolicySection,
  RuleResult,
  Outcome,
  Verdict,
  Appraisal,
  TdxTcbStatus,
  PcrBank,
} from './types.js';
export { POLICY_API_VERSION, POLICY_KIND, TDX_TCB_STATUSES, PCR_BANKS } from './types.js';
export { policySchema } from './schema.js';
export { claimsSchema, parseClaims } from './claims-schema.js';
export { parsePolicy, parsePolicyDocument, schemaErrors, pointerToPath, MAX_POLICY_BYTES } from './parse.js';
export type { PolicyIssue } from './parse.js';
export { checkPolicy, loadPolicy } from './check.js';
export type { PolicyCheck } from './check.js';
export { policyDigest } from './digest.js';
export { ReferenceIndex, referenceEntries, validity } from './refs.js';
export type { Validity, ReferenceKey } from './refs.js';
export { evaluate, MAX_MATCHED_STRING } from './evaluate.js';
export { evaluateAkPin, AK_PIN_RULE } from './pin.js';
export type { AkPinInput } from './pin.js';
export { dryRun, appraisalError } from './dryrun.js';
export type { DryRunItem, DryRunEntry, DryRunReport } from './dryrun.js';
export { learn } from './learn.js';
export type { LearnInput, LearnOptions, LearnResult, Difference } from './learn.js';
export { defaultPolicy } from './default.js';
export { POLICY_ERROR_CODES, ALL_POLICY_ERROR_CODES, RULE_NAMES, PCR_RULE_PATTERN } from './codes.js';
