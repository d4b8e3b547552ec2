import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { evidenceOfRecord, recordedEvidence, recordedEvidenceMemoUsage, type Evidence } from '../src/index.js';

const log = randomBytes(3000);
const sha = createHash('sha256').update(log).digest('hex');
const bundle = (eventLog: string) => ({ nonce: 'n', tee: 'snp', runtimeData: { nodeName: 'w-0', purpose: 'join' }, hardware: { report: 'AA==' }, tpm: {}, eventLog }) as unknown as Evidence;

describe('recordedEvidence / evidenceOfRecord', () => {
  it('names the event log by the SHA-256 of its bytes and gives it back as it came', async () => {
    const ev = bundle(log.toString('base64'));
    const kept = recordedEvidence(ev);
    expect(kept.evidenceBlobs).toEqual({ eventLog: sha });
    expect(kept.evidence.eventLog).toBeUndefined();
    expect(kept.evidence.runtimeData).toEqual(ev.runtimeData);
    expect(kept.blobs).toHaveLength(1);
    expect(Buffer.from(kept.blobs[0]!.data).equals(log)).toBe(true);
    const back = await evidenceOfRecord({ evidence: kept.evidence, evidenceBlobs: kept.evidenceBlobs }, async (name) => (name === sha ? log : undefined));
    expect(back).toEqual({ evidence: ev });
  });

  it('keeps inline a log whose text is not exactly the standard encoding of its bytes, and an empty one', () => {
    // "QR==" and "QQ==" both decode to "A": the record must hold the text that came.
    for (const text of ['QR==', 'QQ', 'Q Q==', '', '@@@@']) {
      const kept = recordedEvidence(bundle(text));
      expect(kept.evidenceBlobs, text).toBeUndefined();
      expect(kept.blobs).toEqual([]);
      expect(kept.evidence.eventLog).toBe(text);
    }
  });

  it('reports a missing, altered or misnamed log, and a record without evidence', async () => {
    const kept = recordedEvidence(bundle(log.toString('base64')));
    const body = { evidence: kept.evidence, evidenceBlobs: kept.evidenceBlobs };
    const gap = async (b: Record<string, unknown>, get: (s: string) => Promise<Uint8Array | undefined>) => {
      const r = await evidenceOfRecord(b, get);
      return 'gap' in r ? r.gap.code : 'ok';
    };
    expect(await gap(body, async () => undefined)).toBe('RECORD_BLOB_MISSING');
    expect(await gap(body, async () => new Uint8Array(randomBytes(3000)))).toBe('RECORD_BLOB_ALTERED');
    expect(await gap({ ...body, evidenceBlobs: { eventLog: sha.toUpperCase() } }, async () => log)).toBe('RECORD_BLOB_REF_INVALID');
    expect(await gap({ ...body, evidenceBlobs: null }, async () => log)).toBe('RECORD_BLOB_REF_INVALID');
    expect(await gap({ evidenceBlobs: kept.evidenceBlobs }, async () => log)).toBe('RECORD_NO_EVIDENCE');
    expect(await gap({ evidence: [] }, async () => log)).toBe('RECORD_NO_EVIDENCE');
    // A record from before blobs: the inline evidence as it is.
    expect(await gap({ evidence: bundle('QQ==') }, async () => undefined)).toBe('ok');
  });

  it('remembers the digest of a log it saw lately (bounded), and decodes its bytes again only when asked', () => {
    const text = randomBytes(4000).toString('base64');
    const first = recordedEvidence(bundle(text));
    const before = recordedEvidenceMemoUsage();
    const again = recordedEvidence(bundle(text));
    expect(recordedEvidenceMemoUsage()).toEqual(before);
    expect(again.evidenceBlobs).toEqual(first.evidenceBlobs);
    expect(again.blobs[0]!.sha256).toBe(first.blobs[0]!.sha256);
    expect(Buffer.from(again.blobs[0]!.data).equals(Buffer.from(text, 'base64'))).toBe(true);
    // A text that only looks alike is not taken for it.
    const other = recordedEvidence(bundle(text.slice(0, -4) + 'AAAA'));
    expect(other.evidenceBlobs?.eventLog).not.toBe(first.evidenceBlobs?.eventLog);
    for (let i = 0; i < 300; i++) recordedEvidence(bundle(randomBytes(64).toString('base64')));
    expect(recordedEvidenceMemoUsage().entries).toBeLessThanOrEqual(256);
    // Very large logs are not kept in the memo (they would push everything else out).
    const huge = randomBytes(3 * 1024 * 1024).toString('base64');
    const n = recordedEvidenceMemoUsage();
    expect(recordedEvidence(bundle(huge)).evidenceBlobs?.eventLog).toBe(createHash('sha256').update(Buffer.from(huge, 'base64')).digest('hex'));
    expect(recordedEvidenceMemoUsage()).toEqual(n);
  });
});
