import { digest, inputError } from '@joinguard/core';
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

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Whether `s` can name a blob: a lowercase hex SHA-256 (what getBlob accepts; anything else is not found). */
export function isBlobName(s: unknown): s is string {
  return typeof s === 'string' && SHA256_HEX.test(s);
}

/**
 * The blobs of a draft the store still has to write, one per digest, each checked against its bytes (a record
 * must never name content the store keeps under another digest); those `known` to be stored already are left
 * out unread. `maxBytes` bounds each one.
 */
export function blobsToWrite(blobs: BlobInput[] | undefined, maxBytes: number, known: KnownBlobs): BlobInput[] {
  if (blobs === undefined || blobs.length === 0) return [];
  const seen = new Map<string, BlobInput>();
  for (const b of blobs) {
    const sha256 = b.sha256;
    if (typeof sha256 === 'string' && known.has(sha256)) continue;
    if (!isBlobName(sha256)) throw inputError('STORE_BLOB_INVALID', `blob name ${JSON.stringify(String(sha256).slice(0, 80))} is not a lowercase hex SHA-256`, {});
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

/** Digests known to be stored (bounded, oldest forgotten first), so a repeated blob is not sent again. */
export class KnownBlobs {
  private readonly known = new Set<string>();
  constructor(private readonly max = 4096) {}
  has(sha256: string): boolean {
    return this.known.has(sha256);
  }
  add(sha256: string): void {
    if (this.known.has(sha256)) return;
    if (this.known.size >= this.max) this.known.delete(this.known.values().next().value as string);
    this.known.add(sha256);
  }
}
