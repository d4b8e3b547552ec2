/**
 * The normalized input of an appraisal: plain JSON data that the verifier builds from the outputs of
 * @joinguard/snp, @joinguard/tdx, @joinguard/tpm and @joinguard/eventlog after they have checked
 * signatures, chains and the event-log replay. The policy engine never sees raw evidence, so the same
 * rules apply to every TEE kind and a stored appraisal can be re-run from these claims alone.
 *
 * Byte fields are lowercase or uppercase hex strings (compared case-insensitively). Field names follow
 * the specifications (SEV-SNP ABI, TDX DCAP quote, TCG PC Client) as the evidence packages spell them:
 * `snp` is a subset of @joinguard/snp's SnpClaims and `tdx` of @joinguard/tdx's TdxClaims plus the
 * tcbStatus and advisoryIds of its TdxVerification, so those objects can be passed as they are.
 */

export const TEE_KINDS = ['snp', 'tdx', 'azure-snp-vtpm', 'azure-tdx-vtpm'] as const;
export type TeeKind = (typeof TEE_KINDS)[number];

/** SNP TCB_VERSION as its security patch levels; fmc exists from Turin on. */
export interface TcbVersion {
  bootloader: number;
  tee: number;
  snp: number;
  microcode: number;
  fmc?: number;
}

/** The SNP guest policy bits (SEV-SNP ABI, GUEST_POLICY) that an appraisal constrains. */
export interface SnpGuestPolicy {
  abiMajor?: number;
  abiMinor?: number;
  smt: boolean;
  migrateMa: boolean;
  debug: boolean;
  singleSocket: boolean;
  cxlAllow?: boolean;
  memAes256Xts?: boolean;
  raplDis?: boolean;
  ciphertextHiding?: boolean;
  pageSwapDisable?: boolean;
}

/** PLATFORM_INFO bits of the report (names as @joinguard/snp decodes them). */
export interface SnpPlatformInfo {
  smtEnabled?: boolean;
  tsmeEnabled?: boolean;
  eccEnabled?: boolean;
  raplDisabled?: boolean;
  ciphertextHidingEnabled?: boolean;
}

export interface SnpClaims {
  version?: number;
  guestSvn?: number;
  policy: SnpGuestPolicy;
  vmpl: number;
  reportedTcb: TcbVersion;
  measurement: string;
  hostData: string;
  idKeyDigest: string;
  authorKeyDigest: string;
  reportData?: string;
  platformInfo?: SnpPlatformInfo;
}

export interface TdxClaims {
  /** Intel TCB status of the platform after matching TCB info and the QE identity (e.g. "UpToDate"). */
  tcbStatus: string;
  advisoryIds: string[];
  /** TDATTRIBUTES, 8 bytes as hex; bit 0 is DEBUG. */
  tdAttributes: string;
  mrTd: string;
  mrConfigId: string;
  mrOwner: string;
  mrOwnerConfig: string;
  rtmr0: string;
  rtmr1: string;
  rtmr2: string;
  rtmr3: string;
  mrSeam?: string;
  teeTcbSvn?: string;
  reportData?: string;
}

export interface TpmClaims {
  /** PCR banks the quote covered, by algorithm name ("sha1", "sha256", "sha384", "sha512"). */
  banks: string[];
  /** Quoted PCR values (already checked against the quote's pcrDigest): bank → PCR index → hex. */
  pcrs: Record<string, Record<string, string>>;
}

/** Where in the event log a claim came from, so that a failed rule can name the event. */
export interface EventRef {
  eventIndex?: number;
  pcr?: number;
}

/** An EFI signature database (PK, KEK, db, dbx) as measured: certificates by SHA-256 of their DER, and bare hashes. */
export interface EfiSignatureListClaims extends EventRef {
  certSha256: string[];
  hashes: string[];
}

/** An EV_EFI_BOOT_SERVICES_APPLICATION event: its SHA-256 bank digest is the image's Authenticode digest. */
export interface BootAppClaims extends EventRef {
  /** Absent when the log had no SHA-256 digest for the event, which makes the application unknown. */
  digestSha256?: string;
  path?: string;
}

export interface BootStringClaims extends EventRef {
  value: string;
}

/** An event whose content a rule relies on but whose digest did not match the content. */
export interface UnverifiedEventClaims extends EventRef {
  type: string;
  reason?: string;
}

export interface BootClaims {
  /** The SecureBoot EFI variable (1 = enabled); undefined when the log did not measure it. */
  secureBoot?: boolean;
  secureBootEvent?: EventRef;
  pk?: EfiSignatureListClaims;
  kek?: EfiSignatureListClaims;
  db?: EfiSignatureListClaims;
  dbx?: EfiSignatureListClaims;
  bootApps: BootAppClaims[];
  /** Kernel command lines from EV_IPL events (the "kernel_cmdline: " prefix removed). */
  kernelCmdline?: BootStringClaims[];
  /** grub commands from EV_IPL events (the "grub_cmd: " prefix removed). */
  grubCommands?: BootStringClaims[];
  /** Events decoded for the claims above whose digest did not match their data; empty when all matched. */
  unverifiedEvents?: UnverifiedEventClaims[];
}

export interface AppraisalClaims {
  tee: TeeKind;
  snp?: SnpClaims;
  tdx?: TdxClaims;
  tpm?: TpmClaims;
  boot?: BootClaims;
}

export function isSnpTee(tee: TeeKind): boolean {
  return tee === 'snp' || tee === 'azure-snp-vtpm';
}

export function isTdxTee(tee: TeeKind): boolean {
  return tee === 'tdx' || tee === 'azure-tdx-vtpm';
}
