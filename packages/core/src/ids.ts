import { randomFillSync } from 'node:crypto';

// Random bytes are drawn 4 KiB at a time, as node:crypto's randomUUID does: one call into the CSPRNG per 409 ids.
const pool = Buffer.alloc(4096);
let used = pool.length;

/**
 * A UUID of version 7 (RFC 9562 §5.7): the Unix time in milliseconds in its first 48 bits, then 74 random bits.
 * Record ids are these, so that ids made one after another sort together: each new id lands at the end of the
 * store's unique index on ids instead of on a random page of it, one page write per commit instead of one per
 * record. They are as unguessable as version 4 ids for all that matters here (ids are not secrets; records
 * are read with credentials).
 */
export function uuidV7(nowMs: number = Date.now()): string {
  if (used + 10 > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  const b = Buffer.allocUnsafe(16);
  b.writeUIntBE(Math.max(0, Math.min(nowMs, 2 ** 48 - 1)), 0, 6);
  pool.copy(b, 6, used, used + 10);
  used += 10;
  b[6] = (b[6]! & 0x0f) | 0x70;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
