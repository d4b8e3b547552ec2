import { digest, inputError } from '@joinguard/core';
import { canonicalJson } from './jcs.js';

/**
 * d = SHA-512(nonce ‖ SHA-256(JCS(runtimeData))), the 64 bytes that bind the runtime data (TEE key, kubelet
 * key, node name) to this challenge: REPORT_DATA on bare SNP/TDX, NV 0x01400002 / `user-data` on Azure.
 * `nonce` is the decoded nonce bytes (the b64url text of the challenge, decoded), not its text.
 */
export function bindingDigest(nonce: Uint8Array, runtimeData: unknown): Uint8Array {
  if (!(nonce instanceof Uint8Array) || nonce.length === 0) {
    throw inputError('PROTOCOL_BINDING_BAD_NONCE', 'binding digest: the nonce must be non-empty bytes', {});
  }
  const runtimeDigest = digest('sha256', canonicalJson(runtimeData));
  return new Uint8Array(digest('sha512', Buffer.concat([nonce, runtimeDigest])));
}

/** vTPM quote extraData = SHA-256(d): 32 bytes fit every TPM's TPM2B_DATA limit, where 64 may not. */
export function tpmExtraData(d: Uint8Array): Uint8Array {
  if (!(d instanceof Uint8Array) || d.length !== 64) {
    throw inputError('PROTOCOL_BINDING_BAD_DIGEST', `tpm extraData: the binding digest must be 64 bytes, got ${d?.length}`, { length: d?.length });
  }
  return new Uint8Array(digest('sha256', d));
}
