// The heads an auditor keeps of each log (`joinguard audit verify --save-heads FILE`, checked later with
// `--heads FILE`). A hash chain shows an edited, reordered or missing record inside a log, but a log cut short
// at its end, or removed whole, is still a valid chain; only a head kept outside the store shows it.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { inputError, readInputFile } from '@joinguard/core';
import type { ChainVerification } from '@joinguard/store';

/** The newest record of a log as an audit saw it verified: seq, the SHA-256 of its payload, its id. */
export interface LogHead {
  log: string;
  seq: number;
  hash: string;
  id: string;
}

/** A verified record at one seq of a log: what a saved head is compared with. */
export interface LogPoint {
  hash: string;
  id: string;
}

/** A saved head checked against the log as it is now. */
export interface HeadCheck {
  log: string;
  seq: number;
  hash: string;
  ok: boolean;
  code?: string;
  reason?: string;
}

/** The store's rule for log names (STORE_BAD_DRAFT otherwise). */
const LOG_RE = /^[A-Za-z0-9_-]{1,64}$/;
const HASH_RE = /^[0-9a-f]{64}$/;
const MAX_HEADS_BYTES = 1024 * 1024;

function malformed(path: string, why: string): never {
  throw inputError('AUDIT_HEADS_MALFORMED', `heads file ${path} is not a heads file: ${why}`, { path });
}

/**
 * A heads file as `--save-heads` writes it, `{"heads": [{log, seq, hash, id}, …]}` (the JSON of `audit
 * verify --json` has the same member and does as well). One head per log.
 */
export function readHeads(path: string): LogHead[] {
  const text = Buffer.from(readInputFile(path, 'heads file', MAX_HEADS_BYTES)).toString('utf8');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw inputError('AUDIT_HEADS_MALFORMED', `heads file ${path} is not JSON: ${(e as Error).message}`, { path });
  }
  const heads = (doc as { heads?: unknown } | null)?.heads;
  if (typeof doc !== 'object' || doc === null || !Array.isArray(heads)) malformed(path, 'it has no "heads" array');
  const seen = new Set<string>();
  return heads.map((h: unknown, i) => {
    const x = (typeof h === 'object' && h !== null ? h : {}) as Record<string, unknown>;
    if (typeof x.log !== 'string' || !LOG_RE.test(x.log)) malformed(path, `heads[${i}].log must be a log name (${LOG_RE.source})`);
    if (!Number.isSafeInteger(x.seq) || (x.seq as number) < 1) malformed(path, `heads[${i}].seq must be a positive integer`);
    if (typeof x.hash !== 'string' || !HASH_RE.test(x.hash)) malformed(path, `heads[${i}].hash must be 64 lowercase hex digits`);
    if (x.id !== undefined && typeof x.id !== 'string') malformed(path, `heads[${i}].id must be a string`);
    if (seen.has(x.log)) malformed(path, `log ${x.log} has more than one head`);
    seen.add(x.log);
    return { log: x.log, seq: x.seq as number, hash: x.hash, id: (x.id as string | undefined) ?? '' };
  });
}

/** Writes the heads so that the file is either the old one or the whole new one, never a part. */
export function writeHeads(path: string, heads: LogHead[], now: Date): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${now.getTime()}.tmp`);
  const data = JSON.stringify({ savedAt: now.toISOString(), heads }, null, 2) + '\n';
  try {
    const fd = openSync(tmp, 'wx', 0o644);
    try {
      writeSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw inputError('AUDIT_HEADS_UNWRITABLE', `cannot write heads file ${path}: ${(e as Error).message}`, { path });
  }
}

/**
 * A saved head still holds when its log holds a record at that seq whose hash is the saved one; later records
 * may follow. A log with fewer records (or none: a log that disappeared) was cut short: STORE_CHAIN_TRUNCATED.
 * Another record at that seq means the log was rewritten from there on: STORE_CHAIN_FORKED. Where the chain
 * itself breaks at or before the saved seq, that break is the finding and the head cannot be confirmed.
 */
export function checkHead(saved: LogHead, chain: ChainVerification, at: LogPoint | undefined): HeadCheck {
  const head = { log: saved.log, seq: saved.seq, hash: saved.hash };
  const fail = (code: string, reason: string): HeadCheck => ({ ...head, ok: false, code, reason });
  if (!chain.ok && chain.firstBadSeq !== undefined && chain.firstBadSeq <= saved.seq) {
    return fail(chain.code ?? 'AUDIT_CHAIN_BROKEN', `the chain of log ${saved.log} breaks at seq ${chain.firstBadSeq}, before the saved head at seq ${saved.seq} could be confirmed`);
  }
  if (chain.count < saved.seq) {
    return fail(
      'STORE_CHAIN_TRUNCATED',
      chain.count === 0
        ? `log ${saved.log} holds no records, but a head at seq ${saved.seq} was saved: the log is gone`
        : `log ${saved.log} ends at seq ${chain.count}, but a head at seq ${saved.seq} was saved: records ${chain.count + 1}–${saved.seq} are gone`,
    );
  }
  if (at === undefined) return fail('AUDIT_HEAD_UNREAD', `the record at seq ${saved.seq} of log ${saved.log} was not read back`);
  if (at.hash !== saved.hash) {
    return fail('STORE_CHAIN_FORKED', `the record at seq ${saved.seq} of log ${saved.log} (${at.id}) hashes to ${at.hash}, not to the saved ${saved.hash}${saved.id ? ` (${saved.id})` : ''}: the log was rewritten`);
  }
  // The same hash is the same record, id included: a saved id that differs means the heads file does not
  // describe this record (edited, or saved from another store), and confirms nothing.
  if (saved.id !== undefined && saved.id !== at.id) {
    return fail('AUDIT_HEAD_MISMATCH', `the saved head of log ${saved.log} at seq ${saved.seq} names record ${saved.id}, but the record with its hash is ${at.id}: the heads file does not describe this log`);
  }
  return { ...head, ok: true };
}
