import { createHash } from 'node:crypto';
import { inputError, isJoinguardError } from '@joinguard/core';
import { assertJsonValue, canonicalJson } from '@joinguard/protocol';
import type { Policy } from './types.js';

/** Why protocol's RFC 8785 canonicalization refuses `e`'s value, and where. */
function problem(e: unknown): { path: string; message: string; code?: string } {
  if (isJoinguardError(e)) return { path: typeof e.details.path === 'string' ? e.details.path : '$', message: e.message, code: e.code };
  return { path: '$', message: e instanceof Error ? e.message : String(e) };
}

/**
 * Where `policy` holds what RFC 8785 cannot canonicalize (a string with a lone UTF-16 surrogate, which
 * YAML and JSON escapes can spell), or undefined. Such a policy would have no digest and could never be
 * written into a policy-change record, so checkPolicy refuses it.
 */
export function canonicalizationProblem(policy: unknown): { path: string; message: string } | undefined {
  try {
    assertJsonValue(policy);
    return undefined;
  } catch (e) {
    const { path, message } = problem(e);
    return { path, message };
  }
}

/**
 * SHA-256 (hex) of the RFC 8785 (JCS) canonical JSON of the parsed policy. Key order, white space,
 * YAML versus JSON and number spelling do not change it, so a record's digest names the policy's meaning.
 * The canonical form is protocol's, the one records are written in: a policy that has a digest can be recorded.
 */
export function policyDigest(policy: Policy): string {
  let text: string;
  try {
    text = canonicalJson(policy);
  } catch (e) {
    const p = problem(e);
    throw inputError('POLICY_INVALID', `the policy cannot be canonicalized (RFC 8785): ${p.message}`, { path: p.path, ...(p.code ? { cause: p.code } : {}) });
  }
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
