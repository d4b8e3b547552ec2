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

  it('keeps a log whose text is not exactly the standard encoding of its bytes as the blob of its text, and gives it back as it came', async () => {
    // "QR==" and "QQ==" both decode to "A": the record must hold the text that came. A big one (unpadded
    // base64 of 1.5 MB) must not stay inline either, or the record could not be a JetStream message.
    const big = randomBytes(1_500_000).toString('base64').replace(/=+$/, '') + 'Q';
    for (const text of ['QR==', 'QQ', 'Q Q==', '@@@@', big]) {
      const kept = recordedEvidence(bundle(text));
      const textSha = createHash('sha256').update(text, 'utf8').digest('hex');
      expect(kept.evidenceBlobs, text.slice(0, 8)).toEqual({ texts: { eventLog: textSha } });
      expect(kept.evidence.eventLog).toBeUndefined();
      expect(JSON.stringify(kept.evidence).length).toBeLessThan(1000);
      expect(kept.blobs.map((b) => b.sha256)).toEqual([textSha]);
      const stored = Buffer.from(kept.blobs[0]!.data);
      const back = await evidenceOfRecord({ evidence: kept.evidence, evidenceBlobs: kept.evidenceBlobs }, async (name) => (name === textSha ? stored : undefined));
      expect(back).toEqual({ evidence: bundle(text) });
    }
    // An empty log is kept inline: there is nothing to name.
    expect(recordedEvidence(bundle('')).evidenceBlobs).toBeUndefined();
    expect(recordedEvidence(bundle('')).evidence.eventLog).toBe('');
  });

  it('keeps the IMA log as the blob of its text', async () => {
    const ima = `10 ${'ab'.repeat(20)} ima-ng sha256:${'cd'.repeat(32)} /usr/bin/bash\n`.repeat(2000);
    const ev = { ...bundle(log.toString('base64')), imaLog: ima } as unknown as Evidence;
    const kept = recordedEvidence(ev);
    const imaSha = createHash('sha256').update(ima, 'utf8').digest('hex');
    expect(kept.evidenceBlobs).toEqual({ eventLog: sha, texts: { imaLog: imaSha } });
    expect(kept.evidence.imaLog).toBeUndefined();
    const blobs = new Map(kept.blobs.map((b) => [b.sha256, Buffer.from(b.data)]));
    expect(await evidenceOfRecord({ evidence: kept.evidence, evidenceBlobs: kept.evidenceBlobs }, async (n) => blobs.get(n))).toEqual({ evidence: ev });
    // A text blob altered, missing or named in the wrong place is reported, as for the other blobs.
    const body = { evidence: kept.evidence, evidenceBlobs: kept.evidenceBlobs };
    const gap = async (b: Record<string, unknown>, get: (s: string) => Promise<Uint8Array | undefined>) => {
      const r = await evidenceOfRecord(b, get);
      return 'gap' in r ? r.gap.code : 'ok';
    };
    expect(await gap(body, async (n) => (n === imaSha ? Buffer.from(ima.slice(1)) : blobs.get(n)))).toBe('RECORD_BLOB_ALTERED');
    expect(await gap(body, async (n) => (n === imaSha ? undefined : blobs.get(n)))).toBe('RECORD_BLOB_MISSING');
    expect(await gap({ ...body, evidenceBlobs: { texts: { hardware: imaSha } } }, async (n) => blobs.get(n))).toBe('RECORD_BLOB_REF_INVALID');
    expect(await gap({ ...body, evidenceBlobs: { eventLog: sha, texts: { eventLog: imaSha } } }, async (n) => blobs.get(n))).toBe('RECORD_BLOB_REF_INVALID');
    expect(await gap({ ...body, evidenceBlobs: { texts: [] } }, async (n) => blobs.get(n))).toBe('RECORD_BLOB_REF_INVALID');
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

  describe('certificates', () => {
    const pem = `-----BEGIN CERTIFICATE-----\n${randomBytes(900).toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`;
    const der = randomBytes(1200).toString('base64');
    const withCerts = (certs: Record<string, string>) => ({ ...bundle(log.toString('base64')), hardware: { report: 'AA==', certs } }) as unknown as Evidence;
    const shaOf = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');
    const store = (kept: ReturnType<typeof recordedEvidence>) => new Map(kept.blobs.map((b) => [b.sha256, Buffer.from(b.data)]));

    it('names certificates and CRLs by the SHA-256 of their text and gives them back as they came; per-appraisal entries stay inline', async () => {
      const ev = withCerts({ vcek: pem, ask: der, crl: der.slice(0, 400), tdQuote: 'AAEC' });
      const kept = recordedEvidence(ev);
      expect(kept.evidenceBlobs).toEqual({ eventLog: sha, certs: { vcek: shaOf(pem), ask: shaOf(der), crl: shaOf(der.slice(0, 400)) } });
      expect((kept.evidence.hardware as { certs?: unknown }).certs).toEqual({ tdQuote: 'AAEC' });
      const blobs = store(kept);
      expect(blobs.get(shaOf(pem))!.toString('utf8')).toBe(pem);
      const back = await evidenceOfRecord({ evidence: kept.evidence, evidenceBlobs: kept.evidenceBlobs }, async (n) => blobs.get(n));
      expect(back).toEqual({ evidence: ev });
      // The evidence given in is not changed.
      expect(ev.hardware.certs).toEqual({ vcek: pem, ask: der, crl: der.slice(0, 400), tdQuote: 'AAEC' });
    });

    it('leaves no certs member when every entry is a blob, and puts it back', async () => {
      const ev = withCerts({ vcek: der });
      const kept = recordedEvidence(ev);
      expect(kept.evidence.hardware).toEqual({ report: 'AA==' });
      expect(await evidenceOfRecord({ evidence: kept.evidence, evidenceBlobs: kept.evidenceBlobs }, async (n) => store(kept).get(n))).toEqual({ evidence: ev });
    });

    it('keeps certificates by digest beside a log kept as its text, and a bundle with neither as it is', async () => {
      const ev = { ...withCerts({ vlek: der }), eventLog: 'QR==' } as Evidence;
      const kept = recordedEvidence(ev);
      expect(kept.evidenceBlobs).toEqual({ certs: { vlek: shaOf(der) }, texts: { eventLog: shaOf('QR==') } });
      expect(kept.evidence.eventLog).toBeUndefined();
      expect(await evidenceOfRecord({ evidence: kept.evidence, evidenceBlobs: kept.evidenceBlobs }, async (n) => store(kept).get(n))).toEqual({ evidence: ev });
      const plain = { ...withCerts({ tdQuote: 'AAEC' }), eventLog: '' } as Evidence;
      const same = recordedEvidence(plain);
      expect(same.evidenceBlobs).toBeUndefined();
      expect(same.evidence).toBe(plain);
    });

    it('reports a missing or altered certificate and refs that are not digests of known entries', async () => {
      const kept = recordedEvidence(withCerts({ vcek: pem }));
      const blobs = store(kept);
      const body = { evidence: kept.evidence, evidenceBlobs: kept.evidenceBlobs };
      const gap = async (b: Record<string, unknown>, get: (s: string) => Promise<Uint8Array | undefined>) => {
        const r = await evidenceOfRecord(b, get);
        return 'gap' in r ? `${r.gap.code} ${r.gap.message}` : 'ok';
      };
      expect(await gap(body, async (n) => (n === sha ? log : undefined))).toMatch(/^RECORD_BLOB_MISSING .*certificate hardware\.certs\.vcek/);
      expect(await gap(body, async (n) => (n === sha ? log : Buffer.from(pem.replace('A', 'B'))))).toMatch(/^RECORD_BLOB_ALTERED .*certificate hardware\.certs\.vcek/);
      const refs = (certs: unknown) => ({ ...body, evidenceBlobs: { eventLog: sha, certs } });
      expect(await gap(refs([shaOf(pem)]), async (n) => blobs.get(n))).toMatch(/^RECORD_BLOB_REF_INVALID/);
      expect(await gap(refs({ vcek: 'x' }), async (n) => blobs.get(n))).toMatch(/^RECORD_BLOB_REF_INVALID/);
      expect(await gap(refs({ tdQuote: shaOf(pem) }), async (n) => blobs.get(n))).toMatch(/^RECORD_BLOB_REF_INVALID/);
      expect(await gap({ ...body, evidenceBlobs: {} }, async (n) => blobs.get(n))).toMatch(/^RECORD_BLOB_REF_INVALID/);
      expect(await gap({ evidence: { ...kept.evidence, hardware: 7 }, evidenceBlobs: kept.evidenceBlobs }, async (n) => blobs.get(n))).toMatch(/^RECORD_NO_EVIDENCE/);
      expect(await gap(body, async (n) => blobs.get(n))).toBe('ok');
    });

    it("remembers a certificate's digest like a log's, never taking one for the other", () => {
      const text = randomBytes(1500).toString('base64');
      const asCert = recordedEvidence(withCerts({ vcek: text }));
      const before = recordedEvidenceMemoUsage();
      const again = recordedEvidence(withCerts({ vcek: text }));
      expect(recordedEvidenceMemoUsage()).toEqual(before);
      expect(again.evidenceBlobs?.certs).toEqual({ vcek: shaOf(text) });
      expect(Buffer.from(again.blobs.find((b) => b.sha256 === shaOf(text))!.data).toString('utf8')).toBe(text);
      // The same text as an event log is named by the digest of its decoded bytes.
      const asLog = recordedEvidence(bundle(text));
      expect(asLog.evidenceBlobs?.eventLog).toBe(createHash('sha256').update(Buffer.from(text, 'base64')).digest('hex'));
      expect(asCert.evidenceBlobs?.certs?.vcek).toBe(shaOf(text));
    });
  });
});
