import type { JsonValue } from './jcs.js';

/** Wire types. Each has a JSON Schema of the same name (…Schema) in schemas.ts; keep the two in step. */

export const TEES = ['snp', 'tdx', 'azure-snp-vtpm', 'azure-tdx-vtpm'] as const;
export type Tee = (typeof TEES)[number];

export const PURPOSES = ['unlock', 'join', 'reattest'] as const;
export type Purpose = (typeof PURPOSES)[number];

export const VERDICTS = ['pass', 'fail'] as const;
export type Verdict = (typeof VERDICTS)[number];

export const CHECK_OUTCOMES = ['pass', 'fail', 'skip'] as const;
export type CheckOutcome = (typeof CHECK_OUTCOMES)[number];

export const RECORD_KINDS = ['appraisal', 'key-release', 'csr-decision', 'revocation', 'policy-change', 'ak-unpin'] as const;
export type RecordKind = (typeof RECORD_KINDS)[number];

/** `GET /v1/challenge` reply. */
export interface ChallengeResponse {
  /** unpadded base64url; the binding digest is computed over its decoded bytes */
  nonce: string;
  /** RFC 3339 */
  expiresAt: string;
}

interface JwkCommon {
  kid?: string;
  alg?: string;
  use?: 'enc';
}
export interface TeeKeyJwkP256 extends JwkCommon {
  kty: 'EC';
  crv: 'P-256';
  x: string;
  y: string;
}
export interface TeeKeyJwkX25519 extends JwkCommon {
  kty: 'OKP';
  crv: 'X25519';
  x: string;
}
/** The attester's ephemeral public key for key release (never a private key: `d` is refused). */
export type TeeKeyJwk = TeeKeyJwkP256 | TeeKeyJwkX25519;

export interface RuntimeData {
  teeKey: TeeKeyJwk;
  /** hex SHA-256 of the kubelet client key's SubjectPublicKeyInfo (DER) */
  kubeletKeySha256?: string;
  nodeName: string;
  machine?: string;
  providerId?: string;
  purpose: Purpose;
  /**
   * hex SHA-256 of the AK's TPMT_PUBLIC bytes, for bare SNP/TDX where the hardware report does not name
   * the AK (DESIGN.md "Evidence and binding"); Azure names it in the HCL report's runtime claims.
   */
  akPublicSha256?: string;
}

export interface TpmEvidence {
  /** base64 TPMS_ATTEST */
  quote: string;
  /** base64 TPMT_SIGNATURE */
  signature: string;
  /** bank → PCR index ("0".."23") → hex */
  pcrs: Partial<Record<'sha1' | 'sha256' | 'sha384' | 'sha512', Record<string, string>>>;
  /** base64 TPMT_PUBLIC */
  akPublic: string;
  /** base64 DER */
  akCert?: string;
}

/** `POST /v1/attest` body: the exact shape of DESIGN.md "Evidence and binding". */
export interface Evidence {
  nonce: string;
  tee: Tee;
  runtimeData: RuntimeData;
  hardware: {
    /** base64: SNP report, TDX quote, or Azure HCL report */
    report: string;
    /** name → base64 DER certificate or PEM text (vcek, ask, ark, vlek, pckChain …) */
    certs?: Record<string, string>;
  };
  tpm: TpmEvidence;
  /** base64 TCG PC Client crypto-agile event log */
  eventLog: string;
  imaLog?: string;
}

export interface Check {
  /** stable name of the check, e.g. "snp.signature", "tpm.extraData", "policy.pcr.7" */
  name: string;
  outcome: CheckOutcome;
  expected?: JsonValue;
  actual?: JsonValue;
  /** the error code when the check failed */
  code?: string;
  message?: string;
  /** a failed policy rule's claim: its path in the claims (e.g. `snp.reportedTcb.microcode`) */
  path?: string;
  /** a failed policy rule's event: its index in the event log */
  eventIndex?: number;
  /** a failed policy rule's PCR */
  pcr?: number;
  /** a policy rule's reference value: the one that matched, or that matched only outside its validity */
  referenceValue?: { id: string; version: string };
}

export interface PolicyRef {
  id: string;
  /** hex SHA-256 of the canonical (JCS) policy document */
  digest: string;
}

export interface Appraisal {
  verdict: Verdict;
  tee: Tee;
  node: string;
  purpose: Purpose;
  policy: PolicyRef;
  checks: Check[];
}

export interface TcbClaim {
  /** e.g. "UpToDate", "OutOfDate", "SWHardeningNeeded" (TDX) or "ok" / "below-minimum" (SNP) */
  status: string;
  versions?: Record<string, number | string>;
}

/** Claims of the attestation-result JWT (DESIGN.md "Verification"). */
export interface AttestationResultClaims {
  iss?: string;
  aud?: string | string[];
  /** node name */
  sub: string;
  /** id of the appraisal record */
  jti: string;
  iat: number;
  exp: number;
  nbf?: number;
  verdict: Verdict;
  tee: Tee;
  purpose?: Purpose;
  tcb: TcbClaim;
  /** name → hex: measurement, mrTd, rtmr0…, pcr names as "pcr.sha256.7" */
  measurements: Record<string, string>;
  bindings: {
    /**
     * RFC 7638 SHA-256 thumbprint (base64url) of runtimeData.teeKey; always there when the verdict is pass,
     * absent from a failed result whose evidence held no usable teeKey
     */
    teeKeyThumbprint?: string;
    kubeletKeySha256?: string;
  };
  policy: PolicyRef;
}

/** `POST /v1/attest` reply. */
export interface AttestResponse {
  /** compact JWT carrying AttestationResultClaims */
  result: string;
  appraisal: Appraisal;
  recordId: string;
}

/** `POST /v1/keys/disk/{name}` body (the attestation result travels as the Bearer token). */
export interface KeyReleaseRequest {
  /** key epoch to derive; the verifier's current epoch when absent */
  epoch?: number;
  /** the TEE key the attestation bound, to check it is the one the key will be sealed to */
  teeKey?: TeeKeyJwk;
}

export interface KeyReleaseResponse {
  name: string;
  epoch: number;
  /** compact JWE, ECDH-ES+A256KW / A256GCM, to the result's teeKey */
  jwe: string;
  recordId: string;
}

/** Every HTTP error reply. */
export interface ErrorReply {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

/** The signed payload of an audit record (DESIGN.md "Records"). */
export interface AuditRecord {
  /** format version */
  v: 1;
  id: string;
  kind: RecordKind;
  /** the chain this record belongs to; records of one log are hash-linked by `prev` */
  log: string;
  /** 1, 2, 3 … within the log */
  seq: number;
  /** RFC 3339 */
  time: string;
  node?: string;
  tee?: Tee;
  verdict?: Verdict;
  purpose?: Purpose;
  /** plain JSON (checked when appended); typed loosely so that interfaces such as Appraisal fit */
  body: Record<string, unknown>;
  /** hex SHA-256 of JCS(previous record of the same log); 64 zeros for seq 1 */
  prev: string;
}

/** What a caller hands the store; the store assigns id, seq, prev (and time when absent). */
export interface RecordDraft {
  kind: RecordKind;
  log: string;
  time?: string;
  id?: string;
  node?: string;
  tee?: Tee;
  verdict?: Verdict;
  purpose?: Purpose;
  /** plain JSON: evidence (or its digest and a blob reference), checks, policy digest … */
  body: Record<string, unknown>;
  /**
   * Content the body names by SHA-256 instead of carrying it (an event log, which every re-attestation of a
   * node repeats): stored once per digest, durably before the record is, and served by `getBlob`.
   */
  blobs?: BlobInput[];
}

/**
 * A blob for the store: its bytes and the lowercase hex SHA-256 the record names it by. `data` may be computed
 * when first read; a store reads it only for a digest it does not hold yet.
 */
export interface BlobInput {
  sha256: string;
  data: Uint8Array;
}

/** A record as stored and served: the decoded payload and the compact JWS that carries it. */
export interface SignedRecord {
  record: AuditRecord;
  /** compact JWS whose payload is JCS(record) */
  jws: string;
}

/** `GET /v1/records` query. */
export interface RecordQuery {
  node?: string;
  /** RFC 3339, inclusive */
  from?: string;
  /** RFC 3339, exclusive */
  to?: string;
  verdict?: Verdict;
  tee?: Tee;
  purpose?: Purpose;
  kind?: RecordKind;
  log?: string;
  limit?: number;
  /** opaque, from a previous page's nextCursor */
  cursor?: string;
}

export interface RecordPage {
  records: SignedRecord[];
  nextCursor?: string;
}

/** What the verifier keeps per node (`GET /v1/nodes`). */
export interface NodeState {
  name: string;
  revoked: boolean;
  lastVerdict?: Verdict;
  /** RFC 3339 */
  lastVerifiedAt?: string;
  lastRecordId?: string;
  tee?: Tee;
  machine?: string;
  revokedAt?: string;
  revokedReason?: string;
  /**
   * The vTPM AK the node is pinned to (its pool's policy has `tpm.pinAk`): hex SHA-256 of the AK's TPMT_PUBLIC,
   * taken at the node's first passing appraisal under such a policy; absent when not pinned (or unpinned)
   */
  pinnedAkSha256?: string;
  /** RFC 3339: when the pin was taken */
  pinnedAkAt?: string;
  /** the appraisal record that took the pin */
  pinnedAkRecordId?: string;
}

/** `POST /v1/nodes/{name}/unpin` body: why, and optionally the pin the admin means to clear. */
export interface UnpinRequest {
  reason: string;
  /** the pinned AK's digest as the admin read it (`GET /v1/nodes`): the pin is cleared only while it is this one */
  akPublicSha256?: string;
}

/** Where a node pool's policy in force came from. */
export const POLICY_SOURCES = ['file', 'default', 'api'] as const;
export type PolicySource = (typeof POLICY_SOURCES)[number];

/** One reference value of a pool's policy, with its validity at the time of the reply. */
export interface ReferenceValueInfo {
  id: string;
  version: string;
  description?: string;
  /** RFC 3339, inclusive */
  notBefore?: string;
  /** RFC 3339, exclusive */
  expires?: string;
  validity: 'active' | 'expired' | 'notYetValid';
  /** the claims it constrains: `snp.measurement`, `boot.bootApps`, `pcrs.sha256.7` … */
  keys: string[];
}

/** A node pool and the policy in force for it (`GET /v1/policies`). */
export interface PolicyPoolInfo {
  name: string;
  /** the anchored regular expression on node names; absent for the default pool (every other node) */
  nodes?: string;
  default: boolean;
  policy: PolicyRef;
  /** file: the configured file; default: the strict default; api: set by an admin route, kept in the data folder */
  source: PolicySource;
  /** the configured file (source file, or the file an api policy replaced) */
  file?: string;
  /** RFC 3339: when an admin route set the policy (source api) */
  updatedAt?: string;
  updatedBy?: string;
  referenceValues: ReferenceValueInfo[];
}

export interface PolicyListResponse {
  pools: PolicyPoolInfo[];
}

/** `GET /v1/policies/{pool}`: the pool and its whole policy document. */
export interface PolicyDocumentResponse extends PolicyPoolInfo {
  document: Record<string, unknown>;
}

/** A finding of the policy checks (`joinguard policy check`). */
export interface PolicyIssueInfo {
  /** JSONPath, e.g. `$.referenceValues[0].expires` */
  path: string;
  code: string;
  message: string;
}

/** Reply of `PUT /v1/policies/{pool}` and of the reference-value routes. */
export interface PolicyChangeResponse {
  pool: string;
  /** false when the new policy is the one in force already (same digest): nothing is recorded */
  changed: boolean;
  policy: PolicyRef;
  previous: PolicyRef;
  /** the `policy-change` record, when changed */
  recordId?: string;
  warnings: PolicyIssueInfo[];
}
