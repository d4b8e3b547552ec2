import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, errors as joseErrors } from 'jose';
import type { CryptoKey, JSONWebKeySet, JWK, JWTVerifyGetKey, KeyObject } from 'jose';
import { JoinguardError, inputError, reject, wrapError } from '@joinguard/core';
import { assertJsonValue } from './jcs.js';
import { compactSign, jwkThumbprintSync } from './jws.js';
import { TEES, VERDICTS, PURPOSES } from './types.js';
import type { AttestationResultClaims } from './types.js';

/** `typ` of result JWTs, so that a record JWS or any other token signed by the same key is never taken for a result. */
export const RESULT_JWT_TYPE = 'joinguard-result+jwt';
export const RESULT_ALGORITHMS = ['ES256', 'ES384', 'EdDSA', 'PS256'] as const;
export type ResultAlgorithm = (typeof RESULT_ALGORITHMS)[number];
/** Results are short Bearer tokens; anything longer is not one of ours. */
const MAX_RESULT_CHARS = 16 * 1024;

export type SigningKeyInput = CryptoKey | KeyObject;

/** RFC 7638 SHA-256 thumbprint (base64url) of a public JWK: `bindings.teeKeyThumbprint` and our key ids. */
export async function jwkThumbprint(jwk: JWK): Promise<string> {
  return jwkThumbprintSync(jwk);
}

function claimsProblem(c: Record<string, unknown>): string | undefined {
  const str = (v: unknown) => typeof v === 'string' && v.length > 0;
  const int = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  if (!str(c.sub)) return 'sub';
  if (!str(c.jti)) return 'jti';
  if (!int(c.iat)) return 'iat';
  if (!int(c.exp)) return 'exp';
  if (!(VERDICTS as readonly unknown[]).includes(c.verdict)) return 'verdict';
  if (!(TEES as readonly unknown[]).includes(c.tee)) return 'tee';
  if (c.purpose !== undefined && !(PURPOSES as readonly unknown[]).includes(c.purpose)) return 'purpose';
  const tcb = c.tcb as Record<string, unknown> | undefined;
  if (typeof tcb !== 'object' || tcb === null || !str(tcb.status)) return 'tcb';
  if (typeof c.measurements !== 'object' || c.measurements === null || Array.isArray(c.measurements)) return 'measurements';
  const b = c.bindings as Record<string, unknown> | undefined;
  // A failed appraisal may have no teeKey to name (evidence that could not be decoded); a passing one always has.
  if (typeof b !== 'object' || b === null) return 'bindings';
  if (b.teeKeyThumbprint === undefined ? c.verdict === 'pass' : !str(b.teeKeyThumbprint)) return 'bindings';
  if (b.kubeletKeySha256 !== undefined && !/^[0-9a-f]{64}$/.test(String(b.kubeletKeySha256))) return 'bindings.kubeletKeySha256';
  const p = c.policy as Record<string, unknown> | undefined;
  if (typeof p !== 'object' || p === null || !str(p.id) || !/^[0-9a-f]{64}$/.test(String(p.digest))) return 'policy';
  return undefined;
}

/** Signs attestation-result claims as a compact JWT (ES256 unless `alg` says otherwise). */
export async function signResult(
  claims: AttestationResultClaims,
  key: SigningKeyInput,
  kid: string,
  opts: { alg?: ResultAlgorithm } = {},
): Promise<string> {
  const payload = claims as unknown as Record<string, unknown>;
  assertJsonValue(payload);
  const problem = claimsProblem(payload);
  if (problem !== undefined) {
    throw inputError('PROTOCOL_RESULT_BAD_CLAIMS', `attestation result claim ${problem} is missing or malformed`, { claim: problem });
  }
  if (claims.exp <= claims.iat) {
    throw inputError('PROTOCOL_RESULT_BAD_CLAIMS', `attestation result exp ${claims.exp} is not after iat ${claims.iat}`, { claim: 'exp' });
  }
  const alg = opts.alg ?? 'ES256';
  try {
    return compactSign(Buffer.from(JSON.stringify(payload), 'utf8'), { alg, kid, typ: RESULT_JWT_TYPE }, key);
  } catch (e) {
    throw new JoinguardError('PROTOCOL_RESULT_SIGN_FAILED', `cannot sign the attestation result with ${alg}: ${(e as Error).message}`, { alg, kid }, { kind: 'internal', cause: e });
  }
}

export interface VerifyResultOptions {
  now: Date;
  audience?: string | string[];
  issuer?: string | string[];
  /** seconds of clock skew tolerated on exp/nbf/iat; default 0 */
  clockToleranceSec?: number;
  algorithms?: readonly ResultAlgorithm[];
  /** results older than this (by iat) are refused even if exp allows them */
  maxAgeSec?: number;
}

/**
 * Verifies a result JWT against published verifier keys. Throws PROTOCOL_RESULT_MALFORMED,
 * PROTOCOL_RESULT_UNKNOWN_KEY, PROTOCOL_RESULT_BAD_SIGNATURE, PROTOCOL_RESULT_EXPIRED,
 * PROTOCOL_RESULT_BAD_CLAIM (aud, iss, nbf, iat, typ), PROTOCOL_RESULT_ALG_NOT_ALLOWED or
 * PROTOCOL_RESULT_BAD_CLAIMS (the payload is not a joinguard result).
 */
export async function verifyResult(jwt: string, jwks: JSONWebKeySet, opts: VerifyResultOptions): Promise<AttestationResultClaims> {
  if (typeof jwt !== 'string' || jwt.length === 0 || jwt.length > MAX_RESULT_CHARS) {
    throw reject('PROTOCOL_RESULT_MALFORMED', `attestation result must be a compact JWT of at most ${MAX_RESULT_CHARS} characters`, {
      length: typeof jwt === 'string' ? jwt.length : undefined,
    });
  }
  let kid: unknown;
  try {
    kid = decodeProtectedHeader(jwt).kid;
  } catch (e) {
    throw reject('PROTOCOL_RESULT_MALFORMED', `attestation result header cannot be decoded: ${(e as Error).message}`, {});
  }
  if (typeof kid !== 'string' || kid.length === 0) {
    throw reject('PROTOCOL_RESULT_MALFORMED', 'attestation result header has no kid', {});
  }
  if (!Array.isArray(jwks?.keys) || !jwks.keys.some((k) => k.kid === kid)) {
    throw reject('PROTOCOL_RESULT_UNKNOWN_KEY', `attestation result is signed by key ${kid}, which is not among the ${jwks?.keys?.length ?? 0} trusted verifier keys`, {
      kid,
      trusted: Array.isArray(jwks?.keys) ? jwks.keys.map((k) => k.kid) : [],
    });
  }
  const keySet: JWTVerifyGetKey = createLocalJWKSet(jwks);
  let payload: Record<string, unknown>;
  try {
    const r = await jwtVerify(jwt, keySet, {
      currentDate: opts.now,
      algorithms: [...(opts.algorithms ?? RESULT_ALGORITHMS)],
      typ: RESULT_JWT_TYPE,
      requiredClaims: ['sub', 'jti', 'iat', 'exp'],
      ...(opts.audience !== undefined ? { audience: opts.audience } : {}),
      ...(opts.issuer !== undefined ? { issuer: opts.issuer } : {}),
      ...(opts.clockToleranceSec !== undefined ? { clockTolerance: opts.clockToleranceSec } : {}),
      ...(opts.maxAgeSec !== undefined ? { maxTokenAge: opts.maxAgeSec } : {}),
    });
    payload = r.payload;
  } catch (e) {
    throw mapJoseError(e, kid, opts.now);
  }
  const problem = claimsProblem(payload);
  if (problem !== undefined) {
    throw reject('PROTOCOL_RESULT_BAD_CLAIMS', `attestation result claim ${problem} is missing or malformed`, { claim: problem, kid });
  }
  return payload as unknown as AttestationResultClaims;
}

function mapJoseError(e: unknown, kid: string, now: Date): JoinguardError {
  if (e instanceof joseErrors.JWTExpired) {
    return reject('PROTOCOL_RESULT_EXPIRED', `attestation result expired at ${new Date(Number(e.payload.exp) * 1000).toISOString()} (now ${now.toISOString()})`, {
      exp: e.payload.exp,
      now: now.toISOString(),
      kid,
    });
  }
  if (e instanceof joseErrors.JWTClaimValidationFailed) {
    return reject('PROTOCOL_RESULT_BAD_CLAIM', `attestation result claim ${e.claim} check failed: ${e.reason} (${e.message})`, {
      claim: e.claim,
      reason: e.reason,
      kid,
    });
  }
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) {
    return reject('PROTOCOL_RESULT_BAD_SIGNATURE', `attestation result signature does not verify with key ${kid}`, { kid });
  }
  if (e instanceof joseErrors.JWKSNoMatchingKey || e instanceof joseErrors.JWKSMultipleMatchingKeys) {
    return reject('PROTOCOL_RESULT_UNKNOWN_KEY', `no single trusted verifier key matches kid ${kid} and the token's algorithm: ${e.message}`, { kid });
  }
  if (e instanceof joseErrors.JOSEAlgNotAllowed || e instanceof joseErrors.JOSENotSupported) {
    return reject('PROTOCOL_RESULT_ALG_NOT_ALLOWED', `attestation result algorithm is not accepted: ${e.message}`, { kid });
  }
  if (e instanceof joseErrors.JWSInvalid || e instanceof joseErrors.JWTInvalid || e instanceof joseErrors.JWKInvalid) {
    return reject('PROTOCOL_RESULT_MALFORMED', `attestation result is not a valid JWT: ${e.message}`, { kid });
  }
  return wrapError('PROTOCOL_RESULT_MALFORMED', 'attestation result cannot be verified', e, { kid });
}
