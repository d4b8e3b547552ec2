import { compactVerify, createLocalJWKSet, errors as joseErrors } from 'jose';
import type { CryptoKey, JSONWebKeySet, KeyObject } from 'jose';
import { JoinguardError, digest, inputError, reject, uuidV7 } from '@joinguard/core';
import { PURPOSES, RECORD_KINDS, TEES, VERDICTS, canonicalJson, compactSign } from '@joinguard/protocol';
import type { AuditRecord, RecordDraft, SignedRecord } from '@joinguard/protocol';

/** `typ` of record JWSs, so that a record is never mistaken for an attestation result signed by the same key. */
export const RECORD_JWS_TYPE = 'joinguard-record+jws';
/** `prev` of the first record of a log. */
export const GENESIS_PREV = '0'.repeat(64);

export interface RecordSigner {
  kid: string;
  /** ES256 unless said otherwise */
  alg?: 'ES256' | 'ES384' | 'EdDSA' | 'PS256';
  privateKey: CryptoKey | KeyObject;
}

const LOG_RE = /^[A-Za-z0-9_-]{1,64}$/;
const ID_RE = /^[A-Za-z0-9_-]{1,128}$/;
const NODE_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const RFC3339_RE = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$/;

function badDraft(field: string, message: string): JoinguardError {
  return inputError('STORE_BAD_DRAFT', `record draft: ${field} ${message}`, { field });
}

export function checkLogName(log: unknown): asserts log is string {
  if (typeof log !== 'string' || !LOG_RE.test(log)) throw badDraft('log', 'must match ^[A-Za-z0-9_-]{1,64}$');
}

export function checkNodeName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length > 253 || !NODE_RE.test(name)) {
    throw inputError('STORE_BAD_NODE_NAME', `node name ${JSON.stringify(name)} is not a DNS-1123 subdomain`, { name });
  }
}

const SETTING_RE = /^[a-z][a-z0-9-]{0,62}$/;

/** A pinned setting: a short lowercase name (a valid KV key too) and a value of at most 4 KiB of text. */
export function checkSetting(name: unknown, value: unknown): asserts name is string {
  if (typeof name !== 'string' || !SETTING_RE.test(name)) throw inputError('STORE_BAD_SETTING', `setting name ${JSON.stringify(name)} must match ${SETTING_RE.source}`, { name });
  if (typeof value !== 'string' || value.length === 0 || value.length > 4096) throw inputError('STORE_BAD_SETTING', `setting ${name} must be a non-empty string of at most 4096 characters`, { name });
}

/** Checks a draft and fixes its id and time; everything else the store fills in. */
export function prepareDraft(draft: RecordDraft, now: Date): { id: string; time: string } {
  if (typeof draft !== 'object' || draft === null) throw badDraft('draft', 'must be an object');
  if (!(RECORD_KINDS as readonly unknown[]).includes(draft.kind)) throw badDraft('kind', `must be one of ${RECORD_KINDS.join(', ')}`);
  checkLogName(draft.log);
  if (draft.id !== undefined && (typeof draft.id !== 'string' || !ID_RE.test(draft.id))) throw badDraft('id', 'must match ^[A-Za-z0-9_-]{1,128}$');
  if (draft.node !== undefined) {
    try {
      checkNodeName(draft.node);
    } catch {
      throw badDraft('node', 'must be a DNS-1123 subdomain');
    }
  }
  if (draft.tee !== undefined && !(TEES as readonly unknown[]).includes(draft.tee)) throw badDraft('tee', `must be one of ${TEES.join(', ')}`);
  if (draft.verdict !== undefined && !(VERDICTS as readonly unknown[]).includes(draft.verdict)) throw badDraft('verdict', 'must be pass or fail');
  if (draft.purpose !== undefined && !(PURPOSES as readonly unknown[]).includes(draft.purpose)) throw badDraft('purpose', `must be one of ${PURPOSES.join(', ')}`);
  if (typeof draft.body !== 'object' || draft.body === null || Array.isArray(draft.body)) throw badDraft('body', 'must be a JSON object');
  // That the body is plain JSON is checked once, by the canonicalisation that signs it (signRecord), with the
  // same error and path: a second walk over a whole evidence bundle here would double that cost.
  let time: string;
  if (draft.time === undefined) time = now.toISOString();
  else {
    if (typeof draft.time !== 'string' || !RFC3339_RE.test(draft.time) || Number.isNaN(Date.parse(draft.time))) throw badDraft('time', 'must be an RFC 3339 date-time');
    // One textual form (UTC, milliseconds) so that time ranges compare correctly as strings and numbers.
    time = new Date(draft.time).toISOString();
  }
  return { id: draft.id ?? uuidV7(), time };
}

export function buildRecord(draft: RecordDraft, fixed: { id: string; time: string }, seq: number, prev: string): AuditRecord {
  const r: AuditRecord = { v: 1, id: fixed.id, kind: draft.kind, log: draft.log, seq, time: fixed.time, body: draft.body, prev };
  if (draft.node !== undefined) r.node = draft.node;
  if (draft.tee !== undefined) r.tee = draft.tee;
  if (draft.verdict !== undefined) r.verdict = draft.verdict;
  if (draft.purpose !== undefined) r.purpose = draft.purpose;
  return r;
}

/** hex SHA-256 of JCS(record): the next record's `prev`. */
export function recordHash(record: AuditRecord): string {
  return digest('sha256', canonicalJson(record), 'hex');
}

function payloadHash(payload: Uint8Array): string {
  return digest('sha256', payload, 'hex');
}

/** The hash of a record the store wrote itself, from its JWS (the next record's `prev`), without re-serialising. */
export function jwsPayloadHash(jws: string): string {
  return payloadHash(Buffer.from(jws.split('.')[1] ?? '', 'base64url'));
}

/**
 * Signs a record as a compact JWS over JCS(record) and returns it with the record's hash (the SHA-256 of that
 * same payload, the next record's `prev`), so the large record is serialised once.
 */
export function signRecord(record: AuditRecord, signer: RecordSigner): { jws: string; hash: string } {
  const alg = signer.alg ?? 'ES256';
  try {
    const payload = Buffer.from(canonicalJson(record), 'utf8');
    return { jws: compactSign(payload, { alg, kid: signer.kid, typ: RECORD_JWS_TYPE }, signer.privateKey), hash: payloadHash(payload) };
  } catch (e) {
    if (e instanceof JoinguardError) throw e;
    throw new JoinguardError('STORE_SIGN_FAILED', `cannot sign record ${record.log}/${record.seq} with ${alg}: ${(e as Error).message}`, { kid: signer.kid }, { kind: 'internal', cause: e });
  }
}

/** What a JSON value is, to say why it is not a record: `null`, `array`, or its `typeof`. */
function jsonType(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

/**
 * The record inside a JWS the store wrote itself, without checking the signature (for serving queries).
 * Only its shape is checked: a payload that is not a JSON object (`null`, an array, a number, a string) is
 * STORE_RECORD_MALFORMED like one that is not JSON, so that no caller reads the members of a non-record.
 */
export function decodeRecordJws(jws: string): AuditRecord {
  const parts = jws.split('.');
  if (parts.length !== 3) throw reject('STORE_RECORD_MALFORMED', 'stored record is not a compact JWS', { parts: parts.length });
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
  } catch (e) {
    throw reject('STORE_RECORD_MALFORMED', `stored record payload is not JSON: ${(e as Error).message}`, {});
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    const type = jsonType(payload);
    throw reject('STORE_RECORD_MALFORMED', `stored record payload is JSON but not an object (it is ${type === 'array' ? 'an array' : type})`, { payloadType: type });
  }
  return payload as AuditRecord;
}

/** Where a backend keeps a stored entry, beside its JWS (unverified): to name one that does not decode. */
export interface StoredAt {
  /** the id it is kept under (SQLite's records.id, JetStream's Nats-Msg-Id header) */
  id?: string;
  log?: string;
  /** the seq kept beside it (SQLite's records.seq); JetStream keeps none */
  seq?: number;
}

/**
 * decodeRecordJws for an entry a backend hands out: a JWS that does not decode is STORE_RECORD_MALFORMED
 * naming the entry by what the backend keeps beside it (details id, log, seq), so that whoever is refused
 * a page or a record (an auditor over HTTP) can name the record the chain breaks at.
 */
export function decodeStoredJws(jws: string, at: StoredAt): AuditRecord {
  try {
    return decodeRecordJws(jws);
  } catch (e) {
    if (!(e instanceof JoinguardError)) throw e;
    const where = [at.id === undefined ? 'without an id' : at.id, at.log === undefined ? '' : ` of log ${at.log}`, at.seq === undefined ? '' : ` at seq ${at.seq}`].join('');
    const named = Object.fromEntries(Object.entries(at).filter(([, v]) => v !== undefined));
    throw reject(e.code, `stored record ${where}: ${e.message}`, { ...e.details, ...named });
  }
}

export interface OpenedRecord {
  record: AuditRecord;
  /** hex SHA-256 of the payload (= JCS(record)) */
  hash: string;
}

/**
 * Verifies a record JWS against the verifier keys and returns the record. Throws STORE_RECORD_BAD_SIGNATURE,
 * STORE_RECORD_UNKNOWN_KEY or STORE_RECORD_MALFORMED (not canonical, not a record).
 */
export async function openRecord(jws: string, keys: JSONWebKeySet): Promise<OpenedRecord> {
  if (typeof jws !== 'string') throw reject('STORE_RECORD_MALFORMED', 'record is not a string', {});
  let payload: Uint8Array;
  let kid: string | undefined;
  try {
    const r = await compactVerify(jws, createLocalJWKSet(keys));
    if (r.protectedHeader.typ !== RECORD_JWS_TYPE) {
      throw reject('STORE_RECORD_MALFORMED', `record JWS has typ ${String(r.protectedHeader.typ)}, expected ${RECORD_JWS_TYPE}`, {});
    }
    payload = r.payload;
    kid = r.protectedHeader.kid;
  } catch (e) {
    if (e instanceof JoinguardError) throw e;
    if (e instanceof joseErrors.JWSSignatureVerificationFailed) throw reject('STORE_RECORD_BAD_SIGNATURE', 'record signature does not verify', {});
    if (e instanceof joseErrors.JWKSNoMatchingKey) throw reject('STORE_RECORD_UNKNOWN_KEY', 'record is signed by a key not in the given key set', {});
    throw reject('STORE_RECORD_MALFORMED', `record is not a valid JWS: ${(e as Error).message}`, {});
  }
  let record: AuditRecord;
  const text = Buffer.from(payload).toString('utf8');
  try {
    record = JSON.parse(text) as AuditRecord;
  } catch (e) {
    throw reject('STORE_RECORD_MALFORMED', `record payload is not JSON: ${(e as Error).message}`, { kid });
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) {
    const type = jsonType(record);
    throw reject('STORE_RECORD_MALFORMED', `record payload is JSON but not an object (it is ${type === 'array' ? 'an array' : type})`, { kid, payloadType: type });
  }
  // A signature over non-canonical bytes would let two different texts stand for one record.
  if (canonicalJson(record) !== text) {
    throw reject('STORE_RECORD_MALFORMED', 'record payload is not in canonical (RFC 8785) form', { kid });
  }
  if (record.v !== 1 || typeof record.log !== 'string' || !Number.isSafeInteger(record.seq) || typeof record.prev !== 'string' || typeof record.id !== 'string') {
    throw reject('STORE_RECORD_MALFORMED', 'record payload lacks v, id, log, seq or prev', { kid });
  }
  return { record, hash: payloadHash(payload) };
}

/** Convenience for API clients: verify one served record. */
export async function verifyRecord(signed: SignedRecord, keys: JSONWebKeySet): Promise<AuditRecord> {
  const { record } = await openRecord(signed.jws, keys);
  return record;
}
