export { canonicalJson, canonicalJsonBytes, assertJsonValue, MAX_JSON_DEPTH } from './jcs.js';
export type { JsonValue } from './jcs.js';
export { bindingDigest, tpmExtraData } from './binding.js';
export { toB64url, fromB64url, fromB64, b64Length } from './base64.js';
export { issueChallenge, checkChallenge, CHALLENGE_NONCE_BYTES, DEFAULT_CHALLENGE_TTL_MS } from './challenge.js';
export type { IssuedChallenge, CheckedChallenge } from './challenge.js';
export { signResult, verifyResult, jwkThumbprint, RESULT_JWT_TYPE, RESULT_ALGORITHMS } from './result.js';
export { compactSign, jwkThumbprintSync } from './jws.js';
export type { JwsAlgorithm } from './jws.js';
export { recordedEvidence, evidenceOfRecord, recordedEvidenceMemoUsage, CERT_BLOB_NAMES } from './record-evidence.js';
export type { RecordedEvidence, EvidenceGap, EvidenceBlobRefs } from './record-evidence.js';
export type { ResultAlgorithm, SigningKeyInput, VerifyResultOptions } from './result.js';
export {
  generateSigningKey,
  signingKeyFromJwk,
  emptyKeyRing,
  rotateKey,
  activeKey,
  publishedJwks,
  allKeys,
  canonicalRing,
  mergeKeyRings,
  extendPublication,
  noteResultLifetime,
  publicationLifetimeSec,
} from './jwks.js';
export type { SigningKey, PublishedKey, KeyRing } from './jwks.js';
export { TEES, PURPOSES, VERDICTS, CHECK_OUTCOMES, RECORD_KINDS, POLICY_SOURCES } from './types.js';
export type {
  Tee,
  Purpose,
  Verdict,
  CheckOutcome,
  RecordKind,
  ChallengeResponse,
  TeeKeyJwk,
  TeeKeyJwkP256,
  TeeKeyJwkX25519,
  RuntimeData,
  TpmEvidence,
  Evidence,
  Check,
  PolicyRef,
  Appraisal,
  TcbClaim,
  AttestationResultClaims,
  AttestResponse,
  KeyReleaseRequest,
  KeyReleaseResponse,
  ErrorReply,
  AuditRecord,
  RecordDraft,
  BlobInput,
  SignedRecord,
  RecordQuery,
  RecordPage,
  NodeState,
  UnpinRequest,
  PolicySource,
  ReferenceValueInfo,
  PolicyPoolInfo,
  PolicyListResponse,
  PolicyDocumentResponse,
  PolicyIssueInfo,
  PolicyChangeResponse,
} from './types.js';
export * from './schemas.js';
