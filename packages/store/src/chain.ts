import type { JSONWebKeySet } from 'jose';
import { JoinguardError } from '@joinguard/core';
import { GENESIS_PREV, decodeRecordJws, openRecord } from './records.js';
import type { ChainVerification } from './store.js';
import type { AuditRecord } from '@joinguard/protocol';

/** One stored entry of a log, in storage order, as a backend hands it to the chain check. */
export interface ChainEntry {
  jws: string;
  /** the id the backend keeps the entry under (an index column, a message header), beside the JWS, unverified */
  id?: string;
  /**
   * What the backend keeps beside the JWS (index columns, position); compared with the signed record so
   * that an edited column is caught even though the JWS is intact. `hash` is the record's (the SHA-256 of its
   * payload, already computed by the signature check). Returns a reason when they disagree.
   */
  crossCheck?: (record: AuditRecord, hash: string) => string | undefined;
}

/**
 * Walks a log from seq 1: each record must verify under `keys`, carry the log's name, the next seq, and
 * `prev` = SHA-256 of the previous record's canonical bytes. A removed record shows as a seq gap, a reordered
 * one as a seq or prev mismatch, an edited one as a bad signature (or a column that disagrees with it).
 * Truncation of the newest records is not visible from the chain alone; compare `count` with a head you
 * keep elsewhere (e.g. the last seq in a published result) to detect it.
 */
export async function verifyEntries(log: string, entries: AsyncIterable<ChainEntry> | Iterable<ChainEntry>, keys: JSONWebKeySet): Promise<ChainVerification> {
  let expected = 1;
  let prev = GENESIS_PREV;
  const head = () => (expected > 1 ? { headHash: prev } : {});
  const fail = (at: ChainEntry, code: string, reason: string): ChainVerification => {
    // A gap's record is missing: the entry at hand is the next one, which is not the bad one.
    const id = code === 'STORE_CHAIN_SEQ_GAP' ? undefined : nameOf(at);
    return { ok: false, log, count: expected - 1, ...head(), firstBadSeq: expected, ...(id === undefined ? {} : { firstBadId: id }), code, reason };
  };
  for await (const entry of entries) {
    let record: AuditRecord;
    let hash: string;
    try {
      ({ record, hash } = await openRecord(entry.jws, keys));
    } catch (e) {
      const code = e instanceof JoinguardError ? e.code.replace(/^STORE_RECORD_/, 'STORE_CHAIN_') : 'STORE_CHAIN_MALFORMED';
      return fail(entry, code, `record at position ${expected} of log ${log}: ${(e as Error).message}`);
    }
    if (record.log !== log) return fail(entry, 'STORE_CHAIN_WRONG_LOG', `record ${record.id} at position ${expected} belongs to log ${record.log}, not ${log}`);
    if (record.seq !== expected) {
      return fail(
        entry,
        record.seq > expected ? 'STORE_CHAIN_SEQ_GAP' : 'STORE_CHAIN_SEQ_ORDER',
        record.seq > expected
          ? `record seq ${expected} of log ${log} is missing (next stored record has seq ${record.seq})`
          : `record seq ${record.seq} of log ${log} appears again or out of order where seq ${expected} was expected`,
      );
    }
    if (record.prev !== prev) return fail(entry, 'STORE_CHAIN_PREV_MISMATCH', `record seq ${expected} of log ${log} has prev ${record.prev}, but the previous record hashes to ${prev}`);
    const why = entry.crossCheck?.(record, hash);
    if (why !== undefined) return fail(entry, 'STORE_CHAIN_INDEX_MISMATCH', `record seq ${expected} of log ${log}: ${why}`);
    prev = hash;
    expected++;
  }
  return { ok: true, log, count: expected - 1, ...head() };
}

/** The id an entry is kept under, or else the one its payload claims (unverified: to find the record with). */
function nameOf(entry: ChainEntry): string | undefined {
  if (typeof entry.id === 'string' && entry.id !== '') return entry.id;
  try {
    const id: unknown = decodeRecordJws(entry.jws).id;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}
