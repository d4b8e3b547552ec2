import { BoundedMap, digest } from '@joinguard/core';
import { isSha256Hex } from './schemas.js';
import type { BlobInput, Evidence } from './types.js';

/**
 * How an appraisal record keeps its evidence: the bundle as received, except the parts every appraisal of a
 * node (or of a host) repeats, which are named by the SHA-256 of their bytes (`evidenceBlobs`) and stored once
 * per digest as blobs:
 * - the event log (`evidenceBlobs.eventLog`, the digest of its decoded bytes): a node sends the same log at
 *   every re-attestation and real logs are tens of kilobytes, more than the rest of a record; a NATS message
 *   could not even carry the largest ones;
 * - the certificates and CRL of `hardware.certs` (`evidenceBlobs.certs.<name>`, the digest of the text as it
 *   came, PEM or base64): the VCEK and its chain belong to the host, the same for every node on it.
 * - an event log that is not the standard base64 of its bytes, and the IMA log (`evidenceBlobs.texts.<field>`,
 *   the digest of the text as it came, UTF-8): such a log fails its appraisal, but must still be recorded, and
 *   kept inline it could make the record larger than a JetStream message may be.
 * The digests are inside the signed record, so the blobs are as tamper-evident as the record itself.
 */
export interface RecordedEvidence {
  evidence: Record<string, unknown>;
  evidenceBlobs?: EvidenceBlobRefs;
  blobs: BlobInput[];
}

export interface EvidenceBlobRefs {
  eventLog?: string;
  certs?: Record<string, string>;
  texts?: Partial<Record<TextField, string>>;
}

/** Top-level evidence fields that may be kept as the blob of their text. */
const TEXT_FIELDS = ['eventLog', 'imaLog'] as const;
type TextField = (typeof TEXT_FIELDS)[number];

/** The entries of `hardware.certs` kept as blobs: certificates and CRLs, never per-appraisal data (tdQuote). */
export const CERT_BLOB_NAMES: readonly string[] = ['vcek', 'vlek', 'ask', 'asvk', 'ark', 'chain', 'crl'];

// The nodes of a pool send the same log, and the nodes of a host the same certificates, at every
// re-attestation: the digest of a text seen lately is remembered (at most 256 texts and 8 Mi characters of
// them), so a repeated one costs a lookup instead of a decoding, a re-encoding and a hash. Its bytes are made
// again only if the store asks for them. A text has a digest per kind: a log's is over its decoded bytes, a
// certificate's over the text itself.
const DIGEST_MEMO_MAX_CHARS = 8 * 1024 * 1024;
type TextKind = 'log' | 'cert';
const digestMemo = new BoundedMap<string, Partial<Record<TextKind, string>>>(256, DIGEST_MEMO_MAX_CHARS);
const BYTES_OF: Record<TextKind, (text: string) => Buffer> = {
  log: (text) => Buffer.from(text, 'base64'),
  // PEM or base64, a certificate is kept as the text that came, so it comes back as it came.
  cert: (text) => Buffer.from(text, 'utf8'),
};

/** For tests: how much the digest memo holds. */
export function recordedEvidenceMemoUsage(): { entries: number; chars: number } {
  return { entries: digestMemo.size, chars: digestMemo.cost };
}

/** A blob whose digest is known: its bytes are made when first read, which the store does only for a digest it does not hold yet. */
function lazyBlob(sha256: string, make: () => Uint8Array): BlobInput {
  let data: Uint8Array | undefined;
  return {
    sha256,
    get data(): Uint8Array {
      return (data ??= make());
    },
  };
}

/** An event log or a certificate as a blob; undefined for a log that stays inline (see below). */
function textBlob(text: string, kind: 'cert'): BlobInput;
function textBlob(text: string, kind: TextKind): BlobInput | undefined;
function textBlob(text: string, kind: TextKind): BlobInput | undefined {
  const seen = digestMemo.get(text);
  const known = seen?.[kind];
  if (known !== undefined) return lazyBlob(known, () => BYTES_OF[kind](text));
  const data = BYTES_OF[kind](text);
  // Only a log whose text is exactly the standard encoding of its bytes: anything else (stray characters,
  // unusual padding, which evidence that failed its appraisal may hold) is kept as it came, inline.
  if (kind === 'log' && data.toString('base64') !== text) return undefined;
  const sha256 = digest('sha256', data, 'hex');
  // A very large text would push out everything else.
  if (text.length <= DIGEST_MEMO_MAX_CHARS / 4) digestMemo.set(text, { ...seen, [kind]: sha256 }, text.length);
  return { sha256, data };
}

export function recordedEvidence(evidence: Evidence): RecordedEvidence {
  const blobs: BlobInput[] = [];
  const refs: EvidenceBlobRefs = {};
  let kept = evidence as unknown as Record<string, unknown>;
  const addBlob = (blob: BlobInput) => {
    // One blob per digest, even where two entries hold the same content.
    if (!blobs.some((b) => b.sha256 === blob.sha256)) blobs.push(blob);
  };
  const asText = (field: TextField, text: string) => {
    const blob = textBlob(text, 'cert');
    const { [field]: _inBlob, ...rest } = kept;
    kept = rest;
    (refs.texts ??= {})[field] = blob.sha256;
    addBlob(blob);
  };
  const { eventLog, imaLog } = evidence as { eventLog?: unknown; imaLog?: unknown };
  if (typeof eventLog === 'string' && eventLog.length > 0) {
    const blob = textBlob(eventLog, 'log');
    if (blob) {
      const { eventLog: _inBlob, ...rest } = kept;
      kept = rest;
      refs.eventLog = blob.sha256;
      addBlob(blob);
    } else asText('eventLog', eventLog);
  }
  if (typeof imaLog === 'string' && imaLog.length > 0) asText('imaLog', imaLog);
  const certs = evidence.hardware?.certs;
  if (certs !== null && typeof certs === 'object') {
    const inline: Record<string, string> = {};
    const named: Record<string, string> = {};
    for (const [name, text] of Object.entries(certs)) {
      if (CERT_BLOB_NAMES.includes(name) && typeof text === 'string' && text.length > 0) {
        const blob = textBlob(text, 'cert');
        named[name] = blob.sha256;
        addBlob(blob);
      } else inline[name] = text;
    }
    if (Object.keys(named).length > 0) {
      refs.certs = named;
      const { certs: _all, ...hardware } = evidence.hardware;
      kept = { ...kept, hardware: Object.keys(inline).length > 0 ? { ...hardware, certs: inline } : hardware };
    }
  }
  return blobs.length > 0 ? { evidence: kept, evidenceBlobs: refs, blobs } : { evidence: kept, blobs };
}

/** Why a record's evidence cannot be put together again. */
export type EvidenceGap = { code: 'RECORD_NO_EVIDENCE' | 'RECORD_BLOB_MISSING' | 'RECORD_BLOB_ALTERED' | 'RECORD_BLOB_REF_INVALID'; message: string };

/**
 * The evidence of an appraisal record as the verifier received it: the inline bundle, with its event log and
 * certificates fetched back by digest (and checked against it) where the record names them.
 */
export async function evidenceOfRecord(body: Record<string, unknown>, getBlob: (sha256: string) => Promise<Uint8Array | undefined>): Promise<{ evidence: Evidence } | { gap: EvidenceGap }> {
  const evidence = body.evidence;
  if (evidence === null || typeof evidence !== 'object' || Array.isArray(evidence)) return { gap: { code: 'RECORD_NO_EVIDENCE', message: 'the record holds no evidence' } };
  const refs = body.evidenceBlobs;
  if (refs === undefined) return { evidence: evidence as Evidence };
  const invalid = (what: string): { gap: EvidenceGap } => ({ gap: { code: 'RECORD_BLOB_REF_INVALID', message: `the record names ${what} by something other than a SHA-256` } });
  if (refs === null || typeof refs !== 'object' || Array.isArray(refs)) return invalid('its blobs');
  const { eventLog: logRef, certs: certRefs, texts: textRefs } = refs as { eventLog?: unknown; certs?: unknown; texts?: unknown };
  // Records from before certificate blobs name their event log only, and always do.
  if (logRef === undefined && certRefs === undefined && textRefs === undefined) return invalid('its event log');
  const fetched = async (name: string, what: string): Promise<Buffer | EvidenceGap> => {
    const data = await getBlob(name);
    if (data === undefined) return { code: 'RECORD_BLOB_MISSING', message: `the ${what} the record names (blob ${name}) is not in the store` };
    if (digest('sha256', data, 'hex') !== name) return { code: 'RECORD_BLOB_ALTERED', message: `blob ${name} does not hash to its name: the stored ${what} was altered` };
    return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  };
  const out = { ...(evidence as Evidence) };
  if (logRef !== undefined) {
    if (!isSha256Hex(logRef)) return invalid('its event log');
    const got = await fetched(logRef, 'event log');
    if (!Buffer.isBuffer(got)) return { gap: got };
    out.eventLog = got.toString('base64');
  }
  if (textRefs !== undefined) {
    if (textRefs === null || typeof textRefs !== 'object' || Array.isArray(textRefs)) return invalid('its logs');
    for (const [field, ref] of Object.entries(textRefs)) {
      if (!(TEXT_FIELDS as readonly string[]).includes(field) || !isSha256Hex(ref) || (field === 'eventLog' && logRef !== undefined)) return invalid(`the text of ${JSON.stringify(field)}`);
      const got = await fetched(ref, field === 'eventLog' ? 'event log' : 'IMA log');
      if (!Buffer.isBuffer(got)) return { gap: got };
      (out as Record<string, unknown>)[field] = got.toString('utf8');
    }
  }
  if (certRefs !== undefined) {
    if (certRefs === null || typeof certRefs !== 'object' || Array.isArray(certRefs)) return invalid('its certificates');
    const hardware = out.hardware;
    if (hardware === null || typeof hardware !== 'object') return { gap: { code: 'RECORD_NO_EVIDENCE', message: 'the record names certificates of hardware evidence it does not hold' } };
    const certs: Record<string, string> = { ...(hardware.certs ?? {}) };
    for (const [name, ref] of Object.entries(certRefs)) {
      if (!CERT_BLOB_NAMES.includes(name) || !isSha256Hex(ref)) return invalid(`certificate ${JSON.stringify(name)}`);
      const got = await fetched(ref, `certificate hardware.certs.${name}`);
      if (!Buffer.isBuffer(got)) return { gap: got };
      certs[name] = got.toString('utf8');
    }
    out.hardware = { ...hardware, certs };
  }
  return { evidence: out };
}
