import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { DeliverPolicy, DiscardPolicy, RetentionPolicy, StorageType, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { JetStreamClient, JetStreamManager, StoredMsg } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { KV } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import type { ObjectStore } from '@nats-io/obj';
import type { JSONWebKeySet } from 'jose';
import { BoundedMap, JoinguardError, inputError } from '@joinguard/core';
import { isSha256Hex } from '@joinguard/protocol';
import type { AuditRecord, NodeState, RecordDraft, RecordPage, RecordQuery, SignedRecord } from '@joinguard/protocol';
import { verifyEntries } from './chain.js';
import type { ChainEntry } from './chain.js';
import { makeNodeState } from './node-state.js';
import { encodeCursor, matchesQuery, normalizeQuery } from './query.js';
import { GENESIS_PREV, buildRecord, checkLogName, checkNodeName, checkSetting, decodeRecordJws, decodeStoredJws, jwsPayloadHash, prepareDraft, signRecord } from './records.js';
import type { RecordSigner } from './records.js';
import type { ChainVerification, NodeStateInput, RecordStore } from './store.js';
import { blobsToWrite, nonceKey, serialize } from './util.js';

export interface JetStreamStoreOptions {
  /** NATS URL(s); ignored when `connection` is given */
  servers?: string | string[];
  /** an existing connection, left open by close() */
  connection?: NatsConnection;
  signer: RecordSigner;
  stream?: string;
  /** records of log L go to subject `<subjectPrefix>.L` */
  subjectPrefix?: string;
  /** stream and bucket replicas: 3 in production, 1 in tests */
  replicas?: number;
  nonceBucket?: string;
  /** lifetime of replay entries; must cover the longest challenge ttl */
  nonceTtlMs?: number;
  nodeBucket?: string;
  /** values replicas must agree on (pinSetting) */
  settingsBucket?: string;
  /** record id → stream sequence, for get() */
  indexBucket?: string;
  /** object store of the blobs records name by SHA-256 */
  blobBucket?: string;
  /** largest blob accepted (default 64 MiB) */
  maxBlobBytes?: number;
  /** refuse message deletion and purges on the stream (default true) */
  denyDelete?: boolean;
  now?: () => Date;
  maxRetries?: number;
}

/**
 * The stream, subjects and buckets of one deployment, all named by its prefix (the verifier's
 * `store.prefix`), so that two deployments on one NATS share nothing.
 */
export function jetStreamNames(prefix: string): Required<Pick<JetStreamStoreOptions, 'stream' | 'subjectPrefix' | 'nonceBucket' | 'nodeBucket' | 'indexBucket' | 'settingsBucket' | 'blobBucket'>> {
  return {
    stream: `${prefix.toUpperCase()}_RECORDS`,
    subjectPrefix: `${prefix}.records`,
    nonceBucket: `${prefix}-nonces`,
    nodeBucket: `${prefix}-nodes`,
    indexBucket: `${prefix}-record-ids`,
    settingsBucket: `${prefix}-settings`,
    blobBucket: `${prefix}-blobs`,
  };
}

const WRONG_LAST_SEQUENCE = 10071;

function apiCode(e: unknown): number | undefined {
  const c = (e as { code?: unknown })?.code;
  return typeof c === 'number' ? c : typeof c === 'string' && /^[0-9]+$/.test(c) ? Number(c) : undefined;
}

function io(e: unknown, what: string): JoinguardError {
  if (e instanceof JoinguardError) return e;
  return new JoinguardError('STORE_IO', `jetstream store: ${what} failed: ${(e as Error).message}`, { apiCode: apiCode(e) }, { kind: 'internal', cause: e });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** After losing a compare-and-set race to another replica: a short, jittered, slowly growing wait. */
const conflictBackoff = (attempt: number) => sleep(Math.floor(Math.random() * Math.min(50, 2 * (attempt + 1))));

/**
 * The replicated store. Records live in one stream, one subject per log; the chain cannot fork because each
 * append is published with Nats-Expected-Last-Subject-Sequence = the head it was built on, and a replica that
 * lost the race re-reads the head, re-signs and retries. Queries scan the stream with an ordered consumer and
 * filter in memory (no secondary index yet); get() uses a KV index id → stream sequence. Nonces and node
 * state are KV buckets; the nonce bucket's TTL forgets replay entries once their nonce has expired anyway.
 */
export class JetStreamRecordStore implements RecordStore {
  private readonly queues = new Map<string, Promise<unknown>>();
  /** Digests of the blobs this store wrote lately: a repeated blob is neither checked nor sent again. */
  private readonly knownBlobs = new BoundedMap<string, true>(4096);

  private constructor(
    private readonly nc: NatsConnection,
    private readonly ownsConnection: boolean,
    private readonly jsm: JetStreamManager,
    private readonly js: JetStreamClient,
    private readonly nonces: KV,
    private readonly nodes: KV,
    private readonly index: KV,
    private readonly settings: KV,
    private readonly blobs: ObjectStore,
    private readonly maxBlobBytes: number,
    private readonly signer: RecordSigner,
    private readonly stream: string,
    private readonly prefix: string,
    private readonly nonceTtlMs: number,
    private readonly now: () => Date,
    private readonly maxRetries: number,
  ) {}

  static async open(opts: JetStreamStoreOptions): Promise<JetStreamRecordStore> {
    const stream = opts.stream ?? 'JOINGUARD_RECORDS';
    const prefix = opts.subjectPrefix ?? 'joinguard.records';
    const replicas = opts.replicas ?? 1;
    const nonceTtlMs = opts.nonceTtlMs ?? 15 * 60 * 1000;
    let nc: NatsConnection;
    try {
      nc = opts.connection ?? (await connect({ servers: opts.servers ?? '127.0.0.1:4222' }));
    } catch (e) {
      throw io(e, `connecting to ${String(opts.servers)}`);
    }
    try {
      const jsm = await jetstreamManager(nc);
      const existing = await jsm.streams.info(stream).catch(() => null);
      if (existing === null) {
        await jsm.streams.add({
          name: stream,
          subjects: [`${prefix}.*`],
          storage: StorageType.File,
          retention: RetentionPolicy.Limits,
          discard: DiscardPolicy.New,
          num_replicas: replicas,
          deny_delete: opts.denyDelete ?? true,
          deny_purge: opts.denyDelete ?? true,
          allow_direct: true,
          duplicate_window: 2 * 60 * 1_000_000_000,
        });
      }
      const kvm = new Kvm(nc);
      const nonces = await kvm.create(opts.nonceBucket ?? 'joinguard-nonces', { replicas, ttl: nonceTtlMs, history: 1 });
      const nodes = await kvm.create(opts.nodeBucket ?? 'joinguard-nodes', { replicas, history: 5 });
      const index = await kvm.create(opts.indexBucket ?? 'joinguard-record-ids', { replicas, history: 1 });
      const settings = await kvm.create(opts.settingsBucket ?? 'joinguard-settings', { replicas, history: 1 });
      const blobs = await new Objm(nc).create(opts.blobBucket ?? 'joinguard-blobs', { replicas, storage: StorageType.File });
      return new JetStreamRecordStore(
        nc,
        opts.connection === undefined,
        jsm,
        jetstream(nc),
        nonces,
        nodes,
        index,
        settings,
        blobs,
        opts.maxBlobBytes ?? 64 * 1024 * 1024,
        opts.signer,
        stream,
        prefix,
        nonceTtlMs,
        opts.now ?? (() => new Date()),
        opts.maxRetries ?? 50,
      );
    } catch (e) {
      if (opts.connection === undefined) await nc.close().catch(() => undefined);
      throw io(e, `setting up stream ${stream}`);
    }
  }

  private subject(log: string): string {
    return `${this.prefix}.${log}`;
  }

  /** The log a stored message's subject files it under. */
  private logOf(subject: string): string {
    return subject.slice(this.prefix.length + 1);
  }

  async append(draft: RecordDraft): Promise<SignedRecord> {
    const fixed = prepareDraft(draft, this.now());
    const subject = this.subject(draft.log);
    const blobs = blobsToWrite(draft.blobs, this.maxBlobBytes, this.knownBlobs);
    if (draft.id !== undefined && (await this.index.get(fixed.id).catch(() => null))?.operation === 'PUT') {
      throw inputError('STORE_DUPLICATE_ID', `a record with id ${fixed.id} already exists`, { id: fixed.id });
    }
    // Blobs first: once a record is in the stream, whatever it names is there too (an append that fails after
    // this leaves an unnamed blob, which is harmless and is named by the retry).
    for (const b of blobs) await this.putBlob(b.sha256, b.data);
    return serialize(this.queues, draft.log, async () => {
      let transient = 0;
      let headMissing = false;
      for (let attempt = 0; attempt < this.maxRetries; attempt++) {
        let head: { seq: number; jws: string; msgId: string | undefined } | null;
        try {
          const m = await this.jsm.streams.getMessage(this.stream, { last_by_subj: subject });
          head = m === null ? null : { seq: m.seq, jws: m.string(), msgId: m.header.get('Nats-Msg-Id') || undefined };
        } catch (e) {
          throw io(e, `reading the head of log ${draft.log}`);
        }
        if (head === null && (await this.jsm.direct.getMessage(this.stream, { seq: 1, next_by_subj: subject }).catch(() => null)) !== null) {
          // Either another replica appended the first record between our two reads (read the head again), or,
          // when a second read still finds no head although records exist, the newest message of the subject was
          // deleted (seen on nats-server 2.9). Building on an empty head would fork the chain at seq 1: refuse.
          if (!headMissing) {
            headMissing = true;
            continue;
          }
          throw new JoinguardError('STORE_HEAD_UNREADABLE', `log ${draft.log} holds records but the server reports no last record (was the newest one deleted?); refusing to fork the chain`, { log: draft.log }, { kind: 'internal' });
        }
        headMissing = false;
        const headRecord = head === null ? undefined : chainHead(draft.log, head);
        // An earlier attempt whose acknowledgement was lost may already have landed.
        if (head !== null && headRecord?.id === fixed.id) return { record: headRecord, jws: head.jws };
        const record = buildRecord(draft, fixed, (headRecord?.seq ?? 0) + 1, head === null ? GENESIS_PREV : jwsPayloadHash(head.jws));
        const { jws } = signRecord(record, this.signer);
        const maxPayload = this.nc.info?.max_payload ?? 1024 * 1024;
        if (jws.length > maxPayload - 1024) {
          throw inputError('STORE_RECORD_TOO_LARGE', `record is ${jws.length} bytes signed, more than the NATS max_payload (${maxPayload}) allows; store large evidence as a blob and keep its digest`, {
            size: jws.length,
            max: maxPayload,
          });
        }
        // Heals the one index entry a crash between publish and index write can leave missing (see get()).
        const healHead = head !== null && headRecord !== undefined ? this.index.put(headRecord.id, String(head.seq)).catch(() => undefined) : undefined;
        let ack;
        let duplicate: StoredMsg | null = null;
        try {
          ack = await this.js.publish(subject, jws, { msgID: record.id, expect: { lastSubjectSequence: head?.seq ?? 0 } });
          await healHead;
          if (ack.duplicate) duplicate = await this.jsm.streams.getMessage(this.stream, { seq: ack.seq });
        } catch (e) {
          if (apiCode(e) === WRONG_LAST_SEQUENCE) {
            // Another replica appended first: back off a little (jittered) and build on the new head.
            await conflictBackoff(attempt);
            continue;
          }
          if (++transient > 3) throw io(e, `appending to log ${draft.log}`);
          await sleep(50 * transient);
          continue;
        }
        // Outside the retries: what the stream holds under this id does not change by publishing again.
        if (duplicate !== null) return earlierAttempt(draft.log, record.id, duplicate);
        await this.index.put(record.id, String(ack.seq)).catch(() => undefined);
        return { record, jws };
      }
      throw new JoinguardError('STORE_CONFLICT', `jetstream store: log ${draft.log} kept moving; gave up after ${this.maxRetries} attempts`, { log: draft.log }, { kind: 'internal' });
    });
  }

  /** Stores a blob unless it is there already (another replica may have stored the same content). */
  private async putBlob(sha256: string, data: Uint8Array): Promise<void> {
    try {
      const info = await this.blobs.info(sha256);
      if (info === null || info.deleted || info.size !== data.byteLength) await this.blobs.putBlob({ name: sha256 }, data);
    } catch (e) {
      throw io(e, `storing blob ${sha256}`);
    }
    this.knownBlobs.set(sha256, true);
  }

  async getBlob(sha256: string): Promise<Uint8Array | undefined> {
    if (!isSha256Hex(sha256)) return undefined;
    try {
      return (await this.blobs.getBlob(sha256)) ?? undefined;
    } catch (e) {
      throw io(e, `reading blob ${sha256}`);
    }
  }

  /** Messages of the stream matching `filter`, from stream sequence `startSeq` on, in order. */
  private async *scan(filter: string, startSeq: number): AsyncGenerator<{ seq: number; subject: string; jws: string; msgId: string | undefined }> {
    let first;
    try {
      first = await this.jsm.direct.getMessage(this.stream, { seq: Math.max(1, startSeq), next_by_subj: filter });
    } catch (e) {
      throw io(e, 'scanning records');
    }
    if (first === null) return;
    const consumer = await this.js.consumers.get(this.stream, {
      filter_subjects: filter,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: first.seq,
    });
    const msgs = await consumer.consume({ max_messages: 256 });
    try {
      for await (const m of msgs) {
        // append() publishes each record with its id as Nats-Msg-Id; the header stays with the stored message.
        yield { seq: m.seq, subject: m.subject, jws: m.string(), msgId: m.headers?.get('Nats-Msg-Id') || undefined };
        if (m.info.pending === 0) break;
      }
    } finally {
      await msgs.close().catch(() => undefined);
    }
  }

  async get(id: string): Promise<SignedRecord | undefined> {
    if (typeof id !== 'string' || !/^[A-Za-z0-9_-]{1,128}$/.test(id)) return undefined;
    try {
      const e = await this.index.get(id);
      if (e !== null && e.operation === 'PUT') {
        const m = await this.jsm.streams.getMessage(this.stream, { seq: Number(e.string()) });
        if (m !== null) {
          const record = decodeStoredJws(m.string(), { id: m.header.get('Nats-Msg-Id') || id, log: this.logOf(m.subject) });
          if (record.id === id) return { record, jws: m.string() };
        }
      }
    } catch (e) {
      throw io(e, `reading record ${id}`);
    }
    // The index entry is written after the publish, so a crash in between leaves one unindexed record, and it
    // is the head of its log (the next append to that log indexes its head). So only heads need a look, and
    // an unknown id costs one lookup per log, never a scan of the stream.
    for (const log of await this.logs()) {
      const m = await this.jsm.streams.getMessage(this.stream, { last_by_subj: this.subject(log) }).catch(() => null);
      if (m === null) continue;
      const msgId = m.header.get('Nats-Msg-Id') || undefined;
      let record: AuditRecord;
      try {
        record = decodeStoredJws(m.string(), { id: msgId, log });
      } catch (e) {
        // A head that does not decode is refused to whoever asks for it by the id it is kept under; it is not
        // the record any other id names (one it holds could not be read anyway), so their lookups go on.
        if (msgId === id) throw e;
        continue;
      }
      if (record.id === id) {
        await this.index.put(id, String(m.seq)).catch(() => undefined);
        return { record, jws: m.string() };
      }
    }
    return undefined;
  }

  async query(q?: RecordQuery): Promise<RecordPage> {
    const n = normalizeQuery(q);
    const filter = n.log !== undefined ? this.subject(n.log) : `${this.prefix}.*`;
    const records: SignedRecord[] = [];
    let lastSeq = 0;
    let full = false;
    for await (const m of this.scan(filter, n.after + 1)) {
      const record = decodeStoredJws(m.jws, { id: m.msgId, log: this.logOf(m.subject) });
      if (!matchesQuery(record, n)) continue;
      if (records.length === n.limit) {
        full = true;
        break;
      }
      records.push({ record, jws: m.jws });
      lastSeq = m.seq;
    }
    const page: RecordPage = { records };
    if (full) page.nextCursor = encodeCursor(lastSeq);
    return page;
  }

  async verifyChain(log: string, keys: JSONWebKeySet): Promise<ChainVerification> {
    checkLogName(log);
    const subject = this.subject(log);
    const scan = this.scan(subject, 1);
    async function* entries(): AsyncGenerator<ChainEntry> {
      for await (const m of scan) {
        yield { jws: m.jws, id: m.msgId, crossCheck: () => (m.subject === subject ? undefined : `stored on subject ${m.subject}, not ${subject}`) };
      }
    }
    return verifyEntries(log, entries(), keys);
  }

  async logs(): Promise<string[]> {
    try {
      const info = await this.jsm.streams.info(this.stream, { subjects_filter: `${this.prefix}.*` });
      const subjects = Object.keys(info.state.subjects ?? {});
      return subjects.map((s) => s.slice(this.prefix.length + 1)).sort();
    } catch (e) {
      throw io(e, 'listing logs');
    }
  }

  async consumeNonce(nonce: string, expiresAt: Date): Promise<boolean> {
    const now = this.now().getTime();
    const exp = expiresAt.getTime();
    if (!(exp > now)) return false;
    if (exp - now > this.nonceTtlMs) {
      throw inputError('STORE_NONCE_TTL_TOO_LONG', `nonce lives ${exp - now} ms, longer than the replay bucket keeps entries (${this.nonceTtlMs} ms); raise nonceTtlMs`, {
        ttlMs: exp - now,
        bucketTtlMs: this.nonceTtlMs,
      });
    }
    try {
      await this.nonces.create(nonceKey(nonce), String(exp));
      return true;
    } catch (e) {
      if (apiCode(e) === WRONG_LAST_SEQUENCE) return false;
      throw io(e, 'recording a nonce');
    }
  }

  async getNode(name: string): Promise<NodeState | undefined> {
    checkNodeName(name);
    try {
      const e = await this.nodes.get(name);
      return e === null || e.operation !== 'PUT' ? undefined : (e.json() as NodeState);
    } catch (e) {
      throw io(e, `reading node ${name}`);
    }
  }

  async putNode(name: string, state: NodeStateInput): Promise<NodeState> {
    const s = makeNodeState(name, state);
    try {
      await this.nodes.put(name, JSON.stringify(s));
    } catch (e) {
      throw io(e, `writing node ${name}`);
    }
    return s;
  }

  async updateNode(name: string, update: (current: NodeState | undefined) => NodeStateInput): Promise<NodeState> {
    checkNodeName(name);
    for (let attempt = 0; attempt < this.maxRetries; attempt++) {
      let entry;
      try {
        entry = await this.nodes.get(name);
      } catch (e) {
        throw io(e, `reading node ${name}`);
      }
      const current = entry === null || entry.operation !== 'PUT' ? undefined : (entry.json() as NodeState);
      const next = makeNodeState(name, update(current));
      try {
        // Compare-and-set on the KV revision: a concurrent writer makes this fail, and we start from its state.
        if (entry === null) await this.nodes.create(name, JSON.stringify(next));
        else await this.nodes.update(name, JSON.stringify(next), entry.revision);
        return next;
      } catch (e) {
        if (apiCode(e) !== WRONG_LAST_SEQUENCE) throw io(e, `writing node ${name}`);
        await conflictBackoff(attempt);
      }
    }
    throw new JoinguardError('STORE_CONFLICT', `jetstream store: node ${name} kept changing; gave up after ${this.maxRetries} attempts`, { name }, { kind: 'internal' });
  }

  async pinSetting(name: string, value: string): Promise<string> {
    checkSetting(name, value);
    try {
      // create() refuses a key that exists: the first replica's value stays, the others read it.
      await this.settings.create(name, value).catch((e: unknown) => {
        if (apiCode(e) !== WRONG_LAST_SEQUENCE) throw e;
      });
      const e = await this.settings.get(name);
      if (e === null || e.operation !== 'PUT') throw new Error(`setting ${name} was not kept`);
      return e.string();
    } catch (e) {
      throw io(e, `pinning setting ${name}`);
    }
  }

  async listNodes(): Promise<NodeState[]> {
    const out: NodeState[] = [];
    try {
      const keys = await this.nodes.keys();
      const names: string[] = [];
      for await (const k of keys) names.push(k);
      names.sort();
      for (const k of names) {
        const s = await this.getNode(k);
        if (s !== undefined) out.push(s);
      }
    } catch (e) {
      throw io(e, 'listing nodes');
    }
    return out;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.queues.values()]);
    if (this.ownsConnection) await this.nc.close().catch(() => undefined);
  }
}

/**
 * The record a log's newest message holds, for an append to chain onto. A message that does not decode, or
 * that is not a record of this log with an id and a seq, would give the new record a wrong seq (a second seq 1,
 * or one counted from another log's) and an unknown `prev`: refused as STORE_HEAD_UNREADABLE, naming the
 * message as it is kept. Internal, like the other head failures: the store is damaged, not the draft.
 */
function chainHead(log: string, head: { seq: number; jws: string; msgId: string | undefined }): AuditRecord {
  let record: AuditRecord | undefined;
  let why: string;
  let cause: unknown;
  try {
    record = decodeRecordJws(head.jws);
    why = 'its payload lacks a string id, a positive integer seq or this log';
  } catch (e) {
    if (!(e instanceof JoinguardError)) throw e;
    why = e.message;
    cause = e;
  }
  if (record !== undefined && typeof record.id === 'string' && Number.isSafeInteger(record.seq) && record.seq >= 1 && record.log === log) return record;
  const named = head.msgId === undefined ? 'without an id' : head.msgId;
  throw new JoinguardError(
    'STORE_HEAD_UNREADABLE',
    `log ${log}: its last stored message (${named}, stream seq ${head.seq}) is not a record to chain onto: ${why}; refusing to append after it`,
    { log, streamSeq: head.seq, ...(head.msgId === undefined ? {} : { id: head.msgId }) },
    { kind: 'internal', cause },
  );
}

/**
 * What a publish found already stored under the record's id (Nats-Msg-Id, within the duplicate window): the
 * record an earlier attempt published whose acknowledgement was lost, or else another message, in which case
 * the id is taken and this record was not stored.
 */
function earlierAttempt(log: string, id: string, m: StoredMsg): SignedRecord {
  const jws = m.string();
  let record: AuditRecord | undefined;
  try {
    record = decodeRecordJws(jws);
  } catch {
    record = undefined;
  }
  if (record !== undefined && record.id === id && record.log === log) return { record, jws };
  throw inputError('STORE_DUPLICATE_ID', `a record with id ${id} already exists (the stream holds another message under that id, at stream seq ${m.seq})`, { id });
}

export function openJetStreamStore(opts: JetStreamStoreOptions): Promise<JetStreamRecordStore> {
  return JetStreamRecordStore.open(opts);
}
