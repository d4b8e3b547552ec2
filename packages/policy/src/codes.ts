/**
 * Stable codes of the policy package. Thrown (input errors, exit 2 in the CLI): the document and
 * argument codes. Reported per rule (RuleResult.code) and, for the whole appraisal, POLICY_REJECTED
 * (a rejection, exit 1). Reported per issue by checkPolicy (PolicyIssue.code).
 */
export const POLICY_ERROR_CODES = {
  // thrown
  invalid: 'POLICY_INVALID',
  schema: 'POLICY_SCHEMA',
  semantic: 'POLICY_SEMANTIC',
  badTime: 'POLICY_BAD_TIME',
  claimsInvalid: 'POLICY_CLAIMS_INVALID',
  learnNoEvidence: 'POLICY_LEARN_NO_EVIDENCE',
  learnDuplicateNode: 'POLICY_LEARN_DUPLICATE_NODE',
  rejected: 'POLICY_REJECTED',
  // checkPolicy issues
  badRegex: 'POLICY_BAD_REGEX',
  unsafeRegex: 'POLICY_UNSAFE_REGEX',
  tcbOutOfRange: 'POLICY_TCB_OUT_OF_RANGE',
  badDate: 'POLICY_BAD_DATE',
  duplicateReference: 'POLICY_DUPLICATE_REFERENCE',
  badPcrValue: 'POLICY_BAD_PCR_VALUE',
  emptyReference: 'POLICY_EMPTY_REFERENCE',
  bankNotRequired: 'POLICY_BANK_NOT_REQUIRED',
  unusedSection: 'POLICY_UNUSED_SECTION',
  weak: 'POLICY_WEAK',
  jcsInvalid: 'POLICY_JCS_INVALID',
  // rule failures (also POLICY_REFERENCE_EXPIRED / _NOT_YET_VALID, shared with checkPolicy)
  referenceExpired: 'POLICY_REFERENCE_EXPIRED',
  referenceNotYetValid: 'POLICY_REFERENCE_NOT_YET_VALID',
  claimsMissing: 'POLICY_CLAIMS_MISSING',
  teeNotAllowed: 'POLICY_TEE_NOT_ALLOWED',
  tcbTooLow: 'POLICY_TCB_TOO_LOW',
  guestPolicy: 'POLICY_GUEST_POLICY',
  vmpl: 'POLICY_VMPL',
  guestSvnTooLow: 'POLICY_GUEST_SVN_TOO_LOW',
  measurementMismatch: 'POLICY_MEASUREMENT_MISMATCH',
  tdxTcbStatus: 'POLICY_TDX_TCB_STATUS',
  tdxAdvisory: 'POLICY_TDX_ADVISORY',
  debug: 'POLICY_DEBUG',
  pcrBankMissing: 'POLICY_PCR_BANK_MISSING',
  pcrMismatch: 'POLICY_PCR_MISMATCH',
  secureBoot: 'POLICY_SECURE_BOOT',
  efiVariable: 'POLICY_EFI_VARIABLE',
  bootAppUnknown: 'POLICY_BOOT_APP_UNKNOWN',
  kernelCmdline: 'POLICY_KERNEL_CMDLINE',
  grubCommand: 'POLICY_GRUB_COMMAND',
  eventUnverified: 'POLICY_EVENT_UNVERIFIED',
  // rule tpm.akPinned (evaluateAkPin, judged against the node's state)
  akPinMismatch: 'POLICY_AK_PIN_MISMATCH',
  // checkPolicy issue of tpm.pinAk
  akPinEphemeral: 'POLICY_AK_PIN_EPHEMERAL',
} as const;

export const ALL_POLICY_ERROR_CODES: readonly string[] = [...new Set(Object.values(POLICY_ERROR_CODES))];

/** Every rule name evaluate() reports, besides `tpm.pcrs.<bank>.<index>` (one per PCR with reference values). */
export const RULE_NAMES = [
  'tee.allowed',
  'snp.tcb.minimum',
  'snp.policy.debug',
  'snp.policy.migrateMa',
  'snp.policy.smt',
  'snp.policy.singleSocket',
  'snp.vmpl',
  'snp.guestSvn',
  'snp.measurement',
  'snp.hostData',
  'snp.idKeyDigest',
  'snp.authorKeyDigest',
  'tdx.tcbStatus',
  'tdx.advisoryIds',
  'tdx.tdAttributes.debug',
  'tdx.mrTd',
  'tdx.mrConfigId',
  'tdx.mrOwner',
  'tdx.mrOwnerConfig',
  'tdx.rtmr0',
  'tdx.rtmr1',
  'tdx.rtmr2',
  'tdx.rtmr3',
  'tpm.banks.required',
  'boot.secureBoot',
  'boot.pk',
  'boot.kek',
  'boot.db',
  'boot.dbx',
  'boot.bootApps.allowed',
  'boot.kernelCmdline.allowed',
  'boot.kernelCmdline.required',
  'boot.kernelCmdline.forbidden',
  'boot.grubCommands.forbidden',
  'boot.events.verified',
] as const;

export const PCR_RULE_PATTERN = /^tpm\.pcrs\.(sha1|sha256|sha384|sha512)\.([0-9]|1[0-9]|2[0-3])$/;
