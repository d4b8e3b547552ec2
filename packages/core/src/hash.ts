import * as crypto from 'node:crypto';
import { createHash, type BinaryToTextEncoding } from 'node:crypto';

type OneShot = {
  (alg: string, data: Uint8Array | string, enc: 'buffer'): Buffer;
  (alg: string, data: Uint8Array | string, enc: BinaryToTextEncoding): string;
};
/** crypto.hash (Node ≥ 20.12): one call into OpenSSL, about half the cost of createHash for small inputs. */
const oneShot = (crypto as unknown as { hash?: OneShot }).hash;

/**
 * The `alg` digest (a node:crypto name: sha256, sha384, …) of `data`, or of the parts one after the other:
 * as bytes, or as text in `enc`. Strings are hashed as UTF-8.
 */
export function digest(alg: string, data: Uint8Array | string | (Uint8Array | string)[]): Buffer;
export function digest(alg: string, data: Uint8Array | string | (Uint8Array | string)[], enc: BinaryToTextEncoding): string;
export function digest(alg: string, data: Uint8Array | string | (Uint8Array | string)[], enc?: BinaryToTextEncoding): Buffer | string {
  if (Array.isArray(data)) {
    const h = createHash(alg);
    for (const part of data) h.update(part);
    return enc ? h.digest(enc) : h.digest();
  }
  if (oneShot) return enc ? oneShot(alg, data, enc) : oneShot(alg, data, 'buffer');
  const h = createHash(alg).update(data);
  return enc ? h.digest(enc) : h.digest();
}
