import { b64Length } from './base64.js';
import { CHECK_OUTCOMES, POLICY_SOURCES, PURPOSES, RECORD_KINDS, TEES, VERDICTS } from './types.js';

/**
 * JSON Schemas (draft-07, the dialect fastify's default Ajv accepts without configuration) for every wire
 * type in types.ts. No `format` keywords (patterns instead), so they compile under Ajv's strict mode with or
 * without ajv-formats. No `$id` either: a service that wants references adds them with `addSchema({ $id, ...s })`.
 *
 * The size limits below let the edge refuse oversized input before anything is decoded.
 */
export const LIMITS = {
  /** SNP report (1184 B), TDX quote with its certification data (~5–10 KiB), Azure HCL report (~2.6 KiB) */
  reportBytes: 64 * 1024,
  /** one certificate (DER or PEM) */
  certBytes: 16 * 1024,
  maxCerts: 16,
  /** TPMS_ATTEST, TPMT_SIGNATURE and TPMT_PUBLIC are each under 1 KiB even for RSA-4096 */
  tpmStructBytes: 4 * 1024,
  akCertBytes: 16 * 1024,
  eventLogBytes: 4 * 1024 * 1024,
  imaLogBytes: 4 * 1024 * 1024,
  /** base64url text of a nonce */
  nonceChars: 256,
  nameChars: 253,
  /** an appraisal body of a record (without blobs) */
  maxChecks: 512,
  recordLimit: 1000,
} as const;

const b64 = (maxBytes: number) =>
  ({ type: 'string', pattern: '^[A-Za-z0-9+/]*={0,2}$', minLength: 1, maxLength: b64Length(maxBytes) }) as const;

export const hexSha256Schema = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;
const HEX_SHA256 = new RegExp(hexSha256Schema.pattern);

/** Whether `s` is a lowercase hex SHA-256, as `hexSha256Schema` admits (a blob's name, a record's `prev`). */
export function isSha256Hex(s: unknown): s is string {
  return typeof s === 'string' && HEX_SHA256.test(s);
}
export const rfc3339Schema = {
  type: 'string',
  pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$',
  maxLength: 40,
} as const;
/** Kubernetes node names are DNS-1123 subdomains. */
export const nodeNameSchema = {
  type: 'string',
  minLength: 1,
  maxLength: LIMITS.nameChars,
  pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$',
} as const;
export const nonceSchema = { type: 'string', pattern: '^[A-Za-z0-9_-]+$', minLength: 22, maxLength: LIMITS.nonceChars } as const;
export const teeSchema = { type: 'string', enum: TEES } as const;
export const purposeSchema = { type: 'string', enum: PURPOSES } as const;
export const verdictSchema = { type: 'string', enum: VERDICTS } as const;
export const recordKindSchema = { type: 'string', enum: RECORD_KINDS } as const;
/** A log name becomes a NATS subject token and an SQL value: keep it to a safe alphabet. */
export const logNameSchema = { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } as const;
const shortString = { type: 'string', minLength: 1, maxLength: 256 } as const;
const b64url32 = { type: 'string', pattern: '^[A-Za-z0-9_-]{43}$' } as const;

export const challengeResponseSchema = {
  type: 'object',
  required: ['nonce', 'expiresAt'],
  additionalProperties: false,
  properties: { nonce: nonceSchema, expiresAt: rfc3339Schema },
} as const;

const jwkCommon = {
  kid: { type: 'string', maxLength: 128 },
  alg: { type: 'string', maxLength: 32 },
  use: { type: 'string', enum: ['enc'] },
} as const;

/** P-256 or X25519 public key; `additionalProperties: false` also refuses a private `d`. */
export const teeKeySchema = {
  oneOf: [
    {
      type: 'object',
      required: ['kty', 'crv', 'x', 'y'],
      additionalProperties: false,
      properties: { kty: { type: 'string', const: 'EC' }, crv: { type: 'string', const: 'P-256' }, x: b64url32, y: b64url32, ...jwkCommon },
    },
    {
      type: 'object',
      required: ['kty', 'crv', 'x'],
      additionalProperties: false,
      // `y` is named (and forbidden) so that an Ajv with removeAdditional (fastify's default) trying this branch
      // on a P-256 key does not strip the key's `y` and so change the bound runtime data.
      properties: { kty: { type: 'string', const: 'OKP' }, crv: { type: 'string', const: 'X25519' }, x: b64url32, y: { not: {} }, ...jwkCommon },
    },
  ],
} as const;

export const runtimeDataSchema = {
  type: 'object',
  required: ['teeKey', 'nodeName', 'purpose'],
  additionalProperties: false,
  properties: {
    teeKey: teeKeySchema,
    kubeletKeySha256: hexSha256Schema,
    nodeName: nodeNameSchema,
    machine: shortString,
    providerId: { type: 'string', minLength: 1, maxLength: 1024 },
    purpose: purposeSchema,
    akPublicSha256: hexSha256Schema,
  },
} as const;

const pcrBank = (hexChars: number) =>
  ({
    type: 'object',
    maxProperties: 24,
    propertyNames: { pattern: '^(1?[0-9]|2[0-3])$' },
    additionalProperties: { type: 'string', pattern: `^[0-9a-fA-F]{${hexChars}}$` },
  }) as const;

export const tpmEvidenceSchema = {
  type: 'object',
  required: ['quote', 'signature', 'pcrs', 'akPublic'],
  additionalProperties: false,
  properties: {
    quote: b64(LIMITS.tpmStructBytes),
    signature: b64(LIMITS.tpmStructBytes),
    pcrs: {
      type: 'object',
      minProperties: 1,
      additionalProperties: false,
      properties: { sha1: pcrBank(40), sha256: pcrBank(64), sha384: pcrBank(96), sha512: pcrBank(128) },
    },
    akPublic: b64(LIMITS.tpmStructBytes),
    akCert: b64(LIMITS.akCertBytes),
  },
} as const;

export const evidenceSchema = {
  type: 'object',
  required: ['nonce', 'tee', 'runtimeData', 'hardware', 'tpm', 'eventLog'],
  additionalProperties: false,
  properties: {
    nonce: nonceSchema,
    tee: teeSchema,
    runtimeData: runtimeDataSchema,
    hardware: {
      type: 'object',
      required: ['report'],
      additionalProperties: false,
      properties: {
        report: b64(LIMITS.reportBytes),
        certs: {
          type: 'object',
          maxProperties: LIMITS.maxCerts,
          propertyNames: { pattern: '^[A-Za-z0-9_-]{1,32}$' },
          // DER as base64, or PEM text (whose base64 body is larger than the DER, hence the factor 2).
          additionalProperties: { type: 'string', minLength: 1, maxLength: 2 * LIMITS.certBytes },
        },
      },
    },
    tpm: tpmEvidenceSchema,
    eventLog: b64(LIMITS.eventLogBytes),
    imaLog: b64(LIMITS.imaLogBytes),
  },
} as const;

const anyJson = {} as const;

export const checkSchema = {
  type: 'object',
  required: ['name', 'outcome'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 128 },
    outcome: { type: 'string', enum: CHECK_OUTCOMES },
    expected: anyJson,
    actual: anyJson,
    code: { type: 'string', pattern: '^[A-Z][A-Z0-9_]{0,63}$' },
    message: { type: 'string', maxLength: 2048 },
    path: { type: 'string', minLength: 1, maxLength: 256 },
    eventIndex: { type: 'integer', minimum: 0, maximum: 1_000_000 },
    pcr: { type: 'integer', minimum: 0, maximum: 63 },
    referenceValue: {
      type: 'object',
      required: ['id', 'version'],
      additionalProperties: false,
      properties: { id: { type: 'string', minLength: 1, maxLength: 256 }, version: { type: 'string', minLength: 1, maxLength: 256 } },
    },
  },
} as const;

export const policyRefSchema = {
  type: 'object',
  required: ['id', 'digest'],
  additionalProperties: false,
  properties: { id: shortString, digest: hexSha256Schema },
} as const;

export const appraisalSchema = {
  type: 'object',
  required: ['verdict', 'tee', 'node', 'purpose', 'policy', 'checks'],
  additionalProperties: false,
  properties: {
    verdict: verdictSchema,
    tee: teeSchema,
    node: nodeNameSchema,
    purpose: purposeSchema,
    policy: policyRefSchema,
    checks: { type: 'array', maxItems: LIMITS.maxChecks, items: checkSchema },
  },
} as const;

const numericDate = { type: 'integer', minimum: 0 } as const;

export const attestationResultClaimsSchema = {
  type: 'object',
  required: ['sub', 'jti', 'iat', 'exp', 'verdict', 'tee', 'tcb', 'measurements', 'bindings', 'policy'],
  additionalProperties: false,
  properties: {
    iss: shortString,
    aud: { oneOf: [shortString, { type: 'array', items: shortString, maxItems: 16 }] },
    sub: nodeNameSchema,
    jti: shortString,
    iat: numericDate,
    exp: numericDate,
    nbf: numericDate,
    verdict: verdictSchema,
    tee: teeSchema,
    purpose: purposeSchema,
    tcb: {
      type: 'object',
      required: ['status'],
      additionalProperties: false,
      properties: {
        status: { type: 'string', minLength: 1, maxLength: 64 },
        versions: { type: 'object', maxProperties: 64, additionalProperties: { anyOf: [{ type: 'integer' }, { type: 'string', maxLength: 128 }] } },
      },
    },
    measurements: {
      type: 'object',
      maxProperties: 128,
      additionalProperties: { type: 'string', pattern: '^[0-9a-f]*$', maxLength: 256 },
    },
    bindings: {
      type: 'object',
      additionalProperties: false,
      properties: { teeKeyThumbprint: b64url32, kubeletKeySha256: hexSha256Schema },
    },
    policy: policyRefSchema,
  },
  // A passing result always names the teeKey it binds; a failed one may have had none to name.
  if: { properties: { verdict: { const: 'pass' } } },
  then: { properties: { bindings: { type: 'object', required: ['teeKeyThumbprint'], properties: { teeKeyThumbprint: b64url32 } } } },
} as const;

/** A compact JWS/JWT: three base64url parts. */
export const compactJwsSchema = {
  type: 'string',
  pattern: '^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]*\\.[A-Za-z0-9_-]+$',
  maxLength: 64 * 1024 * 1024,
} as const;
const compactJwtSchema = { ...compactJwsSchema, maxLength: 16 * 1024 } as const;
const compactJweSchema = {
  type: 'string',
  pattern: '^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]*\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$',
  maxLength: 8 * 1024,
} as const;

export const attestResponseSchema = {
  type: 'object',
  required: ['result', 'appraisal', 'recordId'],
  additionalProperties: false,
  properties: { result: compactJwtSchema, appraisal: appraisalSchema, recordId: shortString },
} as const;

export const keyReleaseParamsSchema = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: { name: nodeNameSchema },
} as const;

export const keyReleaseRequestSchema = {
  type: 'object',
  additionalProperties: false,
  // teeKey, when sent, must be the key the attestation bound (a check the key broker makes).
  properties: { epoch: { type: 'integer', minimum: 0, maximum: 4294967295 }, teeKey: teeKeySchema },
} as const;

export const keyReleaseResponseSchema = {
  type: 'object',
  required: ['name', 'epoch', 'jwe', 'recordId'],
  additionalProperties: false,
  properties: {
    name: nodeNameSchema,
    epoch: { type: 'integer', minimum: 0, maximum: 4294967295 },
    jwe: compactJweSchema,
    recordId: shortString,
  },
} as const;

export const errorReplySchema = {
  type: 'object',
  required: ['code', 'message'],
  additionalProperties: false,
  properties: {
    code: { type: 'string', pattern: '^[A-Z][A-Z0-9_]{0,63}$' },
    message: { type: 'string', maxLength: 4096 },
    // Open objects must say so: a reply serializer given a bare { type: 'object' } writes {}.
    details: { type: 'object', additionalProperties: true },
  },
} as const;

export const auditRecordSchema = {
  type: 'object',
  required: ['v', 'id', 'kind', 'log', 'seq', 'time', 'body', 'prev'],
  additionalProperties: false,
  properties: {
    v: { type: 'integer', const: 1 },
    id: shortString,
    kind: recordKindSchema,
    log: logNameSchema,
    seq: { type: 'integer', minimum: 1 },
    time: rfc3339Schema,
    node: nodeNameSchema,
    tee: teeSchema,
    verdict: verdictSchema,
    purpose: purposeSchema,
    body: { type: 'object', additionalProperties: true },
    prev: hexSha256Schema,
  },
} as const;

export const recordDraftSchema = {
  type: 'object',
  required: ['kind', 'log', 'body'],
  additionalProperties: false,
  properties: {
    kind: recordKindSchema,
    log: logNameSchema,
    time: rfc3339Schema,
    id: shortString,
    node: nodeNameSchema,
    tee: teeSchema,
    verdict: verdictSchema,
    purpose: purposeSchema,
    body: { type: 'object', additionalProperties: true },
  },
} as const;

export const signedRecordSchema = {
  type: 'object',
  required: ['record', 'jws'],
  additionalProperties: false,
  properties: { record: auditRecordSchema, jws: compactJwsSchema },
} as const;

export const recordQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    node: nodeNameSchema,
    from: rfc3339Schema,
    to: rfc3339Schema,
    verdict: verdictSchema,
    tee: teeSchema,
    purpose: purposeSchema,
    kind: recordKindSchema,
    log: logNameSchema,
    limit: { type: 'integer', minimum: 1, maximum: LIMITS.recordLimit },
    cursor: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,128}$' },
  },
} as const;

export const recordPageSchema = {
  type: 'object',
  required: ['records'],
  additionalProperties: false,
  properties: {
    records: { type: 'array', items: signedRecordSchema, maxItems: LIMITS.recordLimit },
    nextCursor: { type: 'string' },
  },
} as const;

export const nodeStateSchema = {
  type: 'object',
  required: ['name', 'revoked'],
  additionalProperties: false,
  properties: {
    name: nodeNameSchema,
    revoked: { type: 'boolean' },
    lastVerdict: verdictSchema,
    lastVerifiedAt: rfc3339Schema,
    lastRecordId: shortString,
    tee: teeSchema,
    machine: shortString,
    revokedAt: rfc3339Schema,
    revokedReason: { type: 'string', maxLength: 1024 },
    pinnedAkSha256: hexSha256Schema,
    pinnedAkAt: rfc3339Schema,
    pinnedAkRecordId: shortString,
  },
} as const;

/** `POST /v1/nodes/{name}/unpin` body (UnpinRequest). */
export const unpinRequestSchema = {
  type: 'object',
  required: ['reason'],
  additionalProperties: false,
  properties: { reason: { type: 'string', minLength: 1, maxLength: 1024 }, akPublicSha256: hexSha256Schema },
} as const;

/**
 * JWKS as published at `/.well-known/jwks.json` and `/v1/keys/all` (public EC/OKP/RSA keys only). A set and
 * its keys are open (RFC 7517: crv, x, y, n, e, x5c and members yet to be registered), and say so: a reply
 * serializer built from this schema writes only the members it lists unless `additionalProperties` is true.
 * No bound on the number of keys: `/v1/keys/all` keeps every key ever used, one more at each rotation.
 */
export const jwksSchema = {
  type: 'object',
  required: ['keys'],
  additionalProperties: true,
  properties: {
    keys: {
      type: 'array',
      items: {
        type: 'object',
        required: ['kty', 'kid'],
        additionalProperties: true,
        // Private (d, p, q …) and symmetric (k) members must never be published.
        properties: {
          kty: { type: 'string' },
          kid: { type: 'string' },
          alg: { type: 'string' },
          use: { type: 'string' },
          d: { not: {} },
          p: { not: {} },
          q: { not: {} },
          k: { not: {} },
        },
      },
    },
  },
} as const;

/** A node pool's name: a DNS-1123 label (`default` names the pool of every node no other pool matches). */
export const poolNameSchema = { type: 'string', minLength: 1, maxLength: 63, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' } as const;

export const policyPoolParamsSchema = {
  type: 'object',
  required: ['pool'],
  additionalProperties: false,
  properties: { pool: poolNameSchema },
} as const;

/** `{id}@{version}` of a reference value (ids and versions are the policy schema's: at most 253 and 128 characters). */
export const referenceValueParamsSchema = {
  type: 'object',
  required: ['pool', 'ref'],
  additionalProperties: false,
  properties: { pool: poolNameSchema, ref: { type: 'string', minLength: 3, maxLength: 400, pattern: '^.+@.+$' } },
} as const;

export const referenceValueInfoSchema = {
  type: 'object',
  required: ['id', 'version', 'validity', 'keys'],
  additionalProperties: false,
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 253 },
    version: { type: 'string', minLength: 1, maxLength: 128 },
    description: { type: 'string', maxLength: 4096 },
    notBefore: { type: 'string', maxLength: 64 },
    expires: { type: 'string', maxLength: 64 },
    validity: { type: 'string', enum: ['active', 'expired', 'notYetValid'] },
    keys: { type: 'array', items: { type: 'string', maxLength: 256 } },
  },
} as const;

const policyPoolProperties = {
  name: poolNameSchema,
  nodes: { type: 'string', maxLength: 1024 },
  default: { type: 'boolean' },
  policy: policyRefSchema,
  source: { type: 'string', enum: POLICY_SOURCES },
  file: { type: 'string', maxLength: 4096 },
  updatedAt: rfc3339Schema,
  updatedBy: { type: 'string', maxLength: 256 },
  referenceValues: { type: 'array', items: referenceValueInfoSchema },
} as const;

export const policyPoolInfoSchema = {
  type: 'object',
  required: ['name', 'default', 'policy', 'source', 'referenceValues'],
  additionalProperties: false,
  properties: policyPoolProperties,
} as const;

export const policyListResponseSchema = {
  type: 'object',
  required: ['pools'],
  additionalProperties: false,
  properties: { pools: { type: 'array', items: policyPoolInfoSchema } },
} as const;

export const policyDocumentResponseSchema = {
  type: 'object',
  required: ['name', 'default', 'policy', 'source', 'referenceValues', 'document'],
  additionalProperties: false,
  properties: { ...policyPoolProperties, document: { type: 'object', additionalProperties: true } },
} as const;

export const policyIssueSchema = {
  type: 'object',
  required: ['path', 'code', 'message'],
  additionalProperties: false,
  properties: { path: { type: 'string', maxLength: 1024 }, code: { type: 'string', maxLength: 64 }, message: { type: 'string', maxLength: 4096 } },
} as const;

export const policyChangeResponseSchema = {
  type: 'object',
  required: ['pool', 'changed', 'policy', 'previous', 'warnings'],
  additionalProperties: false,
  properties: {
    pool: poolNameSchema,
    changed: { type: 'boolean' },
    policy: policyRefSchema,
    previous: policyRefSchema,
    recordId: shortString,
    warnings: { type: 'array', items: policyIssueSchema },
  },
} as const;

/** Every schema by the type name it describes, for services that register them under an `$id`. */
export const SCHEMAS = {
  ChallengeResponse: challengeResponseSchema,
  TeeKeyJwk: teeKeySchema,
  RuntimeData: runtimeDataSchema,
  TpmEvidence: tpmEvidenceSchema,
  Evidence: evidenceSchema,
  Check: checkSchema,
  PolicyRef: policyRefSchema,
  Appraisal: appraisalSchema,
  AttestationResultClaims: attestationResultClaimsSchema,
  AttestResponse: attestResponseSchema,
  KeyReleaseParams: keyReleaseParamsSchema,
  KeyReleaseRequest: keyReleaseRequestSchema,
  KeyReleaseResponse: keyReleaseResponseSchema,
  ErrorReply: errorReplySchema,
  AuditRecord: auditRecordSchema,
  RecordDraft: recordDraftSchema,
  SignedRecord: signedRecordSchema,
  RecordQuery: recordQuerySchema,
  RecordPage: recordPageSchema,
  NodeState: nodeStateSchema,
  UnpinRequest: unpinRequestSchema,
  Jwks: jwksSchema,
  PolicyPoolParams: policyPoolParamsSchema,
  ReferenceValueParams: referenceValueParamsSchema,
  ReferenceValueInfo: referenceValueInfoSchema,
  PolicyPoolInfo: policyPoolInfoSchema,
  PolicyListResponse: policyListResponseSchema,
  PolicyDocumentResponse: policyDocumentResponseSchema,
  PolicyIssueInfo: policyIssueSchema,
  PolicyChangeResponse: policyChangeResponseSchema,
} as const;
