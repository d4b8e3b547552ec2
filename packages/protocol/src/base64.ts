import { inputError } from '@joinguard/core';

const B64URL_RE = /^[A-Za-z0-9_-]*$/;
const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

export function toB64url(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
}

/**
 * Strict unpadded base64url decoding (Node's decoder silently skips bad characters). `code` is the caller's
 * error code, so that a malformed nonce and a malformed key are told apart.
 */
export function fromB64url(s: string, code: string, what: string): Uint8Array {
  if (typeof s !== 'string' || !B64URL_RE.test(s) || s.length % 4 === 1) {
    throw inputError(code, `${what} is not unpadded base64url`, { length: typeof s === 'string' ? s.length : undefined });
  }
  return new Uint8Array(Buffer.from(s, 'base64url'));
}

/**
 * Strict standard base64 (padding optional), as used for binary evidence. `charsetChecked`: the caller has
 * matched `s` against the evidence schema's base64 pattern (B64_RE) already, so only the length is checked.
 */
export function fromB64(s: string, code: string, what: string, charsetChecked = false): Uint8Array {
  if (typeof s !== 'string' || (!charsetChecked && !B64_RE.test(s)) || unpaddedLength(s) % 4 === 1) {
    throw inputError(code, `${what} is not base64`, { length: typeof s === 'string' ? s.length : undefined });
  }
  return new Uint8Array(Buffer.from(s, 'base64'));
}

function unpaddedLength(s: string): number {
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 0x3d) end--;
  return end;
}

/** Length of the base64 text (padded) for `bytes` bytes: used for maxLength limits in the schemas. */
export function b64Length(bytes: number): number {
  return Math.ceil(bytes / 3) * 4;
}
