import { inputError } from '@joinguard/core';
import { TEES, VERDICTS, assertJsonValue } from '@joinguard/protocol';
import type { NodeState } from '@joinguard/protocol';
import { checkNodeName } from './records.js';
import type { NodeStateInput } from './store.js';

const SHA256_HEX_RE = /^[0-9a-f]{64}$/;
const RFC3339_RE = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$/;

/** Validates and completes a node state before either backend stores it. */
export function makeNodeState(name: string, input: NodeStateInput): NodeState {
  checkNodeName(name);
  const bad = (field: string, why: string): never => {
    throw inputError('STORE_BAD_NODE_STATE', `node ${name}: ${field} ${why}`, { name, field });
  };
  if (typeof input !== 'object' || input === null) bad('state', 'must be an object');
  if (typeof input.revoked !== 'boolean') bad('revoked', 'must be a boolean');
  if (input.lastVerdict !== undefined && !(VERDICTS as readonly unknown[]).includes(input.lastVerdict)) bad('lastVerdict', 'must be pass or fail');
  if (input.tee !== undefined && !(TEES as readonly unknown[]).includes(input.tee)) bad('tee', 'is not a known tee');
  // What a node is pinned to is compared with what its evidence proves: a digest in any other spelling would
  // never match it.
  if (input.pinnedAkSha256 !== undefined && !(typeof input.pinnedAkSha256 === 'string' && SHA256_HEX_RE.test(input.pinnedAkSha256))) bad('pinnedAkSha256', 'must be a lowercase hex SHA-256');
  for (const f of ['lastVerifiedAt', 'revokedAt', 'pinnedAkAt'] as const) {
    const v = input[f];
    if (v !== undefined && (typeof v !== 'string' || !RFC3339_RE.test(v))) bad(f, 'must be an RFC 3339 date-time');
  }
  const state: NodeState = { ...input, name };
  assertJsonValue(state);
  return state;
}
