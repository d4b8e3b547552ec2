import { digest, inputError, type BoundedMap } from '@joinguard/core';
import { isSha256Hex } from '@joinguard/protocol';
import type { BlobInput } from '@joinguard/protocol';

/** Runs `fn` after every earlier task queued under `key`, so one process never races itself on a log head. */
export function serialize<T>(queues: Map<string, Promise<unknown>>, key: string, fn: () => Promise<T>): Promise<T> {
  const prev = queues.get(key) ?? Promise.resolve();
  const next = prev.then(fn, fn);
  const tail = next.catch(() => undefined);
  queues.set(key, tail);
  void tail.then(() => {
    if (queues.get(key) === tail) queues.delete(key);
  });
  return next;
}

/** Nonces are stored by digest: fixed length, a safe alphabet for KV keys, and no attacker-chosen text. */
export function nonceKey(nonce: string): string {
  return digest('sha256', nonce, 'hex');
}

/**
 * The blobs of a draft the store still has to write, one per digest, each checked against its bytes (a record
 * must never name content the store keeps under another digest); those `known` to be stored already are left
 * out unread. `maxBytes` bounds each one.
 */
export function blobsToWrite(blobs: BlobInput[] | undefined, maxBytes: number, known: BoundedMap<string, true>): BlobInput[] {
  if (blobs === undefined || blobs.length === 0) return [];
  const seen = new Map<string, BlobInput>();
  for (const b of blobs) {
    const sha256 = b.sha256;
    if (typeof sha256 === 'string' && known.has(sha256)) continue;
    if (!isSha256Hex(sha256)) throw inputError('STORE_BLOB_INVALID', `blob name ${JSON.stringify(String(sha256).slice(0, 80))} is not a lowercase hex SHA-256`, {});
    if (seen.has(sha256)) continue;
    // Read once: `data` may be computed on demand.
    const data = b.data;
    if (!(data instanceof Uint8Array)) throw inputError('STORE_BLOB_INVALID', `blob ${sha256} has no bytes`, { sha256 });
    if (data.byteLength > maxBytes) {
      throw inputError('STORE_BLOB_TOO_LARGE', `blob ${sha256} is ${data.byteLength} bytes, more than the ${maxBytes} allowed`, { sha256, size: data.byteLength, max: maxBytes });
    }
    const actual = digest('sha256', data, 'hex');
    if (actual !== sha256) throw inputError('STORE_BLOB_DIGEST_MISMATCH', `blob named ${sha256} has SHA-256 ${actual}`, { sha256, actual });
    seen.set(sha256, { sha256, data });
  }
  return [...seen.values()];
}
