import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { inputError, wrapError } from '@joinguard/core';
import type { Policy } from './types.js';

/**
 * SHA-256 (hex) of the RFC 8785 (JCS) canonical JSON of the parsed policy. Key order, white space,
 * YAML versus JSON and number spelling do not change it, so a record's digest names the policy's meaning.
 */
export function policyDigest(policy: Policy): string {
  let text: string | undefined;
  try {
    text = canonicalize(policy);
  } catch (e) {
    throw wrapError('POLICY_INVALID', 'the policy cannot be canonicalized (RFC 8785)', e);
  }
  if (text === undefined) throw inputError('POLICY_INVALID', 'the policy cannot be canonicalized (RFC 8785): not a JSON value');
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
