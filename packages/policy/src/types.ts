import { INTEL_TCB_STATUSES } from '@joinguard/core';
import type { TeeKind } from './claims.js';

export const POLICY_API_VERSION = 'joinguard.io/v1alpha1';
export const POLICY_KIND = 'AppraisalPolicy';

/** Intel TCB statuses (TDX/SGX TCB info and QE identity). */
export const TDX_TCB_STATUSES = INTEL_TCB_STATUSES;
export type TdxTcbStatus = (typeof TDX_TCB_STATUSES)[number];

export const PCR_BANKS = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 } as const;
export type PcrBank = keyof typeof PCR_BANKS;

export interface MinimumTcb {
  bootloader?: number;
  tee?: number;
  snp?: number;
  microcode?: number;
  fmc?: number;
}

export interface SnpPolicySection {
  /** Each component of reportedTcb must be at least this security patch level. */
  minimumTcb?: MinimumTcb;
  guestPolicy?: {
    /** Default false: a guest whose policy allows debugging has readable memory. */
    allowDebug?: boolean;
    /** Default false: a migration agent can export the guest. */
    allowMigrateMa?: boolean;
    /** Default true: most cloud hosts run with SMT enabled. */
    allowSmt?: boolean;
    /** Default false. */
    requireSingleSocket?: boolean;
  };
  /** VMPLs the report may come from; default any. */
  allowedVmpl?: number[];
  minimumGuestSvn?: number;
}

export interface TdxPolicySection {
  /** Default ["UpToDate"]. */
  allowedTcbStatuses?: TdxTcbStatus[];
  /** When given, every advisory id the TCB matching reported must be in this list. */
  allowedAdvisoryIds?: string[];
  /** Default false. */
  allowDebug?: boolean;
}

export interface TpmPolicySection {
  requiredBanks?: string[];
  /**
   * Default false. True: a node's first passing appraisal pins its vTPM attestation key (the SHA-256 of the
   * AK's TPMT_PUBLIC, kept in the node's state by the verifier), and a later appraisal of that node with
   * another AK fails rule `tpm.akPinned` until an admin unpins it. Only for vTPMs whose AK persists across
   * boots (Azure's); an ephemeral vTPM (an SVSM vTPM, the simulated ones) makes a new AK at every boot.
   */
  pinAk?: boolean;
}

export interface BootPolicySection {
  /** Default true. */
  requireSecureBoot?: boolean;
  kernelCmdline?: {
    /** Each pattern must match at least one measured kernel command line. */
    required?: string[];
    /** No pattern may match any measured kernel command line. */
    forbidden?: string[];
  };
  grubCommands?: {
    forbidden?: string[];
  };
  /** Default true: every event a boot rule reads must have a digest matching its data. */
  requireVerifiedEvents?: boolean;
}

export interface EfiSignatureReference {
  certSha256?: string[];
  hashes?: string[];
}

/**
 * One versioned set of reference values. A rule accepts a value found in any reference value active at
 * `now` (notBefore ≤ now < expires), so N and N+1 of an OS image can be accepted side by side while an
 * update rolls out, and N stops being accepted on its expiry date.
 */
export interface ReferenceValue {
  id: string;
  version: string;
  description?: string;
  notBefore?: string;
  expires?: string;
  snp?: {
    measurement?: string[];
    hostData?: string[];
    idKeyDigest?: string[];
    authorKeyDigest?: string[];
  };
  tdx?: {
    mrTd?: string[];
    mrConfigId?: string[];
    mrOwner?: string[];
    mrOwnerConfig?: string[];
    rtmr0?: string[];
    rtmr1?: string[];
    rtmr2?: string[];
    rtmr3?: string[];
  };
  boot?: {
    /** Authenticode SHA-256 digests of allowed boot applications (shim, grub, kernel, ...). */
    bootApps?: string[];
    /** PK, KEK and db: every measured entry must be listed here (nothing else may be trusted). */
    pk?: EfiSignatureReference;
    kek?: EfiSignatureReference;
    db?: EfiSignatureReference;
    /** dbx: every entry listed here must be measured (revocations must not go missing). */
    dbx?: EfiSignatureReference;
    /** Exact kernel command lines. */
    kernelCmdline?: string[];
  };
  /** Raw PCR values, bank → PCR index → allowed values. */
  pcrs?: Record<string, Record<string, string[]>>;
}

export interface Policy {
  apiVersion: typeof POLICY_API_VERSION;
  kind: typeof POLICY_KIND;
  name: string;
  nodePool?: string;
  description?: string;
  tee: { allowed: TeeKind[] };
  snp?: SnpPolicySection;
  tdx?: TdxPolicySection;
  tpm?: TpmPolicySection;
  boot?: BootPolicySection;
  referenceValues?: ReferenceValue[];
}

export type Outcome = 'pass' | 'fail' | 'skip';
export type Verdict = 'pass' | 'fail';

export interface RuleResult {
  /** Stable rule name (`snp.tcb.minimum`, `tpm.pcrs.sha256.7`, `boot.bootApps.allowed`, ...). */
  rule: string;
  outcome: Outcome;
  expected: unknown;
  actual: unknown;
  message: string;
  /** Stable POLICY_* code of a failure. */
  code?: string;
  /** The reference value that matched (pass) or that the value only matched outside its validity (fail). */
  referenceValue?: { id: string; version: string };
  /** Path of the claim in AppraisalClaims, e.g. `snp.reportedTcb.microcode`. */
  path?: string;
  eventIndex?: number;
  pcr?: number;
}

export interface Appraisal {
  verdict: Verdict;
  policy: { name: string; digest: string };
  evaluatedAt: string;
  /** Every rule's outcome, in a stable order. */
  results: RuleResult[];
  /** The failed results only (a convenience for records and messages). */
  failures: RuleResult[];
}
