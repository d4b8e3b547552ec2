import { BoundedMap, digest } from '@joinguard/core';
import { isSha256Hex } from './schemas.js';
import type { BlobInput, Evidence } from './types.js';

/**
 * How an appraisal record keeps its evidence: the bundle as received, except its event log, which is named
 * by the SHA-256 of its bytes (`evidenceBlobs.eventLog`) and stored once per digest as a blob. A node sends
 * the same log at every re-attestation and real logs are tens of kilobytes, more than the rest of a record;
 * a NATS message could not even carry the largest ones. The digest is inside the signed record, so the blob
 * is as tamper-evident as the record itself.
 */
export interface RecordedEvidence {
  evidence: Record<string, unknown>;
  evidenceBlobs?: { eventLog: string };
  blobs: BlobInput[];
}

// The nodes of a pool send the same log at every re-attestation: the digest of a log text seen lately is
// remembered (at most 256 texts and 8 Mi characters of them), so a repeated log costs a lookup instead of a
// decoding, a re-encoding and a hash. Its bytes are decoded again only if the store asks for them.
const DIGEST_MEMO_MAX_CHARS = 8 * 1024 * 1024;
const digestMemo = new BoundedMap<string, string>(256, DIGEST_MEMO_MAX_CHARS);

/** For tests: how much the digest memo holds. */
export function recordedEvidenceMemoUsage(): { entries: number; chars: number } {
  return { entries: digestMemo.size, chars: digestMemo.cost };
}

export function recordedEvidence(evidence: Evidence): RecordedEvidence {
  const { eventLog, ...rest } = evidence;
  if (typeof eventLog !== 'string' || eventLog.length === 0) return { evidence: evidence as unknown as Record<string, unknown>, blobs: [] };
  const known = digestMemo.get(eventLog);
  if (known !== undefined) {
    let data: Uint8Array | undefined;
    const blob = {
      sha256: known,
      // Read by the store only when it does not hold this digest yet.
      get data(): Uint8Array {
        return (data ??= Buffer.from(eventLog, 'base64'));
      },
    };
    return { evidence: rest, evidenceBlobs: { eventLog: known }, blobs: [blob] };
  }
  const data = Buffer.from(eventLog, 'base64');
  // Only a log whose text is exactly the standard encoding of its bytes: anything else (stray characters,
  // unusual padding, which evidence that failed its appraisal may hold) is kept as it came, inline.
  if (data.toString('base64') !== eventLog) return { evidence: evidence as unknown as Record<string, unknown>, blobs: [] };
  const sha256 = digest('sha256', data, 'hex');
  // A very large log would push out everything else.
  if (eventLog.length <= DIGEST_MEMO_MAX_CHARS / 4) digestMemo.set(eventLog, sha256, eventLog.length);
  return { evidence: rest, evidenceBlobs: { eventLog: sha256 }, blobs: [{ sha256, data }] };
}

/** Why a record's evidence cannot be put together again. */
export type EvidenceGap = { code: 'RECORD_NO_EVIDENCE' | 'RECORD_BLOB_MISSING' | 'RECORD_BLOB_ALTERED' | 'RECORD_BLOB_REF_INVALID'; message: string };

/**
 * The evidence of an appraisal record as the verifier received it: the inline bundle, with its event log
 * fetched back by digest (and checked against it) when the record names one.
 */
export async function evidenceOfRecord(body: Record<string, unknown>, getBlob: (sha256: string) => Promise<Uint8Array | undefined>): Promise<{ evidence: Evidence } | { gap: EvidenceGap }> {
  const evidence = body.evidence;
  if (evidence === null || typeof evidence !== 'object' || Array.isArray(evidence)) return { gap: { code: 'RECORD_NO_EVIDENCE', message: 'the record holds no evidence' } };
  const refs = body.evidenceBlobs;
  if (refs === undefined) return { evidence: evidence as Evidence };
  const name = (refs as { eventLog?: unknown } | null)?.eventLog;
  if (!isSha256Hex(name)) {
    return { gap: { code: 'RECORD_BLOB_REF_INVALID', message: 'the record names its event log by something other than a SHA-256' } };
  }
  const data = await getBlob(name);
  if (data === undefined) return { gap: { code: 'RECORD_BLOB_MISSING', message: `the event log the record names (blob ${name}) is not in the store` } };
  if (digest('sha256', data, 'hex') !== name) return { gap: { code: 'RECORD_BLOB_ALTERED', message: `blob ${name} does not hash to its name: the stored event log was altered` } };
  return { evidence: { ...(evidence as Evidence), eventLog: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64') } };
}
