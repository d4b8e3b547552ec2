import Database from 'better-sqlite3';
import type { Database as Db, Statement } from 'better-sqlite3';
import type { JSONWebKeySet } from 'jose';
import { BoundedMap, JoinguardError, inputError } from '@joinguard/core';
import { isSha256Hex } from '@joinguard/protocol';
import type { AuditRecord, BlobInput, NodeState, RecordDraft, RecordPage, RecordQuery, SignedRecord } from '@joinguard/protocol';
import { verifyEntries } from './chain.js';
import type { ChainEntry } from './chain.js';
import { makeNodeState } from './node-state.js';
import { encodeCursor, normalizeQuery } from './query.js';
import { GENESIS_PREV, buildRecord, checkLogName, checkNodeName, checkSetting, decodeStoredJws, prepareDraft, signRecord } from './records.js';
import type { RecordSigner } from './records.js';
import type { ChainVerification, NodeStateInput, RecordStore } from './store.js';
import { blobsToWrite, nonceKey } from './util.js';
import { inlineWriter, threadWriter } from './sqlite-writer.js';
import type { RecordRow, SqliteWriter } from './sqlite-writer.js';

export interface SqliteStoreOptions {
  /** database file; ':memory:' for throw-away stores */
  path: string;
  signer: RecordSigner;
  now?: () => Date;
  /** how long a writer waits for another process holding the write lock */
  busyTimeoutMs?: number;
  /** optimistic retries when another process appended to the same log meanwhile */
  maxRetries?: number;
  maxRecordBytes?: number;
  /** where writes run: a thread of their own (default for files), or this connection (always for ':memory:') */
  writer?: 'thread' | 'inline';
}

const NONCE_GC_INTERVAL_MS = 10_000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS records (
  pos     INTEGER PRIMARY KEY AUTOINCREMENT,
  id      TEXT    NOT NULL UNIQUE,
  log     TEXT    NOT NULL,
  seq     INTEGER NOT NULL,
  kind    TEXT    NOT NULL,
  time    TEXT    NOT NULL,
  time_ms INTEGER NOT NULL,
  node    TEXT,
  tee     TEXT,
  verdict TEXT,
  purpose TEXT,
  hash    TEXT    NOT NULL,
  jws     TEXT    NOT NULL,
  UNIQUE (log, seq)
);
CREATE INDEX IF NOT EXISTS records_node    ON records (node, pos);
CREATE INDEX IF NOT EXISTS records_time    ON records (time_ms, pos);
CREATE INDEX IF NOT EXISTS records_verdict ON records (verdict, pos);
CREATE INDEX IF NOT EXISTS records_tee     ON records (tee, pos);
CREATE INDEX IF NOT EXISTS records_purpose ON records (purpose, pos);
CREATE INDEX IF NOT EXISTS records_kind    ON records (kind, pos);
CREATE TABLE IF NOT EXISTS nonces (
  key        TEXT    PRIMARY KEY,
  expires_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS nonces_expiry ON nonces (expires_ms);
CREATE TABLE IF NOT EXISTS blobs (
  sha256 TEXT PRIMARY KEY,
  data   BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS nodes (
  name  TEXT PRIMARY KEY,
  state TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS settings (
  name  TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
`;

const CHAIN_PAGE = 500;
/** Largest group commit: bounds the time the write lock is held and the work lost to a conflict retry. */
const MAX_BATCH = 256;

interface Pending {
  draft: RecordDraft;
  fixed: { id: string; time: string };
  /** the draft's blobs not known to be stored yet, checked against their digests */
  blobs: BlobInput[];
  resolve: (r: SignedRecord) => void;
  reject: (e: unknown) => void;
}

interface Row extends RecordRow {
  pos: number;
}

function io(e: unknown, what: string): JoinguardError {
  if (e instanceof JoinguardError) return e;
  return new JoinguardError('STORE_IO', `sqlite store: ${what} failed: ${(e as Error).message}`, { sqliteCode: (e as { code?: string }).code }, { kind: 'internal', cause: e });
}

/** The embedded store: one SQLite file in WAL mode; appends group-committed, each batch one fsynced transaction. */
export class SqliteRecordStore implements RecordStore {
  private readonly db: Db;
  private readonly signer: RecordSigner;
  private readonly now: () => Date;
  private readonly maxRetries: number;
  private readonly maxRecordBytes: number;
  private readonly st: Record<'last' | 'byId' | 'chain' | 'logs' | 'nodeGet' | 'nodeList' | 'blob' | 'setting', Statement>;
  /** Digests of the blobs this store wrote lately: a repeated blob is neither checked nor sent again. */
  private readonly knownBlobs = new BoundedMap<string, true>(4096);
  private readonly writer: SqliteWriter;
  private readonly pending = new Map<string, Pending[]>();
  private lastNonceGc = 0;
  private readonly draining = new Map<string, Promise<void>>();

  constructor(opts: SqliteStoreOptions) {
    this.signer = opts.signer;
    this.now = opts.now ?? (() => new Date());
    this.maxRetries = opts.maxRetries ?? 50;
    this.maxRecordBytes = opts.maxRecordBytes ?? 64 * 1024 * 1024;
    try {
      this.db = new Database(opts.path, { timeout: opts.busyTimeoutMs ?? 10_000 });
      // WAL: a crash mid-write rolls back to the last commit on the next open, so no torn record can appear.
      // This connection only reads; how writes are made durable is said in sqlite-writer.ts.
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('foreign_keys = ON');
      this.db.exec(SCHEMA);
      this.st = {
        last: this.db.prepare('SELECT seq, hash FROM records WHERE log = ? ORDER BY seq DESC LIMIT 1'),
        byId: this.db.prepare('SELECT jws, log, seq FROM records WHERE id = ?'),
        chain: this.db.prepare(`SELECT * FROM records WHERE log = ? AND seq > ? ORDER BY seq LIMIT ${CHAIN_PAGE}`),
        logs: this.db.prepare('SELECT DISTINCT log FROM records ORDER BY log'),
        nodeGet: this.db.prepare('SELECT state FROM nodes WHERE name = ?'),
        nodeList: this.db.prepare('SELECT state FROM nodes ORDER BY name'),
        blob: this.db.prepare('SELECT data FROM blobs WHERE sha256 = ?'),
        setting: this.db.prepare('SELECT value FROM settings WHERE name = ?'),
      };
    } catch (e) {
      throw io(e, `opening ${opts.path}`);
    }
    const inline = opts.path === ':memory:' || opts.writer === 'inline';
    try {
      this.writer = inline ? inlineWriter(this.db) : threadWriter(opts.path, opts.busyTimeoutMs ?? 10_000);
    } catch (e) {
      this.db.close();
      throw io(e, `starting the writer of ${opts.path}`);
    }
  }

  /**
   * Appends waiting on the same log are committed together (group commit): one fsync for the batch, and no
   * caller is answered before the transaction holding its record has committed.
   */
  async append(draft: RecordDraft): Promise<SignedRecord> {
    const fixed = prepareDraft(draft, this.now());
    const blobs = blobsToWrite(draft.blobs, this.maxRecordBytes, this.knownBlobs);
    if (!this.db.open) throw new JoinguardError('STORE_CLOSED', 'sqlite store is closed', {}, { kind: 'internal' });
    return new Promise<SignedRecord>((resolve, reject) => {
      const queue = this.pending.get(draft.log) ?? [];
      queue.push({ draft, fixed, blobs, resolve, reject });
      this.pending.set(draft.log, queue);
      if (!this.draining.has(draft.log)) this.draining.set(draft.log, this.drain(draft.log));
    });
  }

  private async drain(log: string): Promise<void> {
    // Let the appends of every request the event loop is handling in this turn join the batch: its fsync blocks
    // the loop, so one fsync per turn rather than one per record.
    await new Promise<void>((resolve) => setImmediate(resolve));
    for (;;) {
      const queue = this.pending.get(log);
      if (queue === undefined || queue.length === 0) {
        // Same synchronous step as the emptiness check, so a later append() starts a new drain.
        this.pending.delete(log);
        this.draining.delete(log);
        return;
      }
      const batch = queue.splice(0, MAX_BATCH);
      try {
        await this.commitBatch(log, batch);
      } catch (e) {
        batch.forEach((p) => p.reject(io(e, 'appending records')));
      }
    }
  }

  private async commitBatch(log: string, batch: Pending[]): Promise<void> {
    for (let attempt = 0; attempt < this.maxRetries; attempt++) {
      let head: { seq: number; hash: string } | undefined;
      try {
        head = this.st.last.get(log) as typeof head;
      } catch (e) {
        batch.forEach((p) => p.reject(io(e, 'reading the log head')));
        return;
      }
      let seq = head?.seq ?? 0;
      let prev = head?.hash ?? GENESIS_PREV;
      const rows: RecordRow[] = [];
      const blobs = new Map<string, BlobInput>();
      const built: { p: Pending; signed: SignedRecord }[] = [];
      for (const p of batch) {
        const record = buildRecord(p.draft, p.fixed, seq + 1, prev);
        let jws: string;
        let hash: string;
        try {
          ({ jws, hash } = signRecord(record, this.signer));
        } catch (e) {
          p.reject(e);
          continue;
        }
        if (jws.length > this.maxRecordBytes) {
          p.reject(
            inputError('STORE_RECORD_TOO_LARGE', `record is ${jws.length} bytes signed, more than the ${this.maxRecordBytes} allowed; store large evidence as a blob and keep its digest`, {
              size: jws.length,
              max: this.maxRecordBytes,
            }),
          );
          continue;
        }
        rows.push({
          id: record.id,
          log: record.log,
          seq: record.seq,
          kind: record.kind,
          time: record.time,
          time_ms: Date.parse(record.time),
          node: record.node ?? null,
          tee: record.tee ?? null,
          verdict: record.verdict ?? null,
          purpose: record.purpose ?? null,
          hash,
          jws,
        });
        for (const b of p.blobs) blobs.set(b.sha256, b);
        built.push({ p, signed: { record, jws } });
        seq++;
        prev = hash;
      }
      if (rows.length === 0) return;
      let inserted: boolean;
      try {
        inserted = await this.writer.insertIfHead(log, head?.seq ?? 0, rows, [...blobs.values()]);
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code === 'SQLITE_CONSTRAINT_UNIQUE' && /records\.id/.test((e as Error).message)) {
          if (built.length > 1) {
            // One draft reuses an id: commit them one by one so only that one is refused.
            for (const b of built) await this.commitBatch(log, [b.p]);
          } else {
            const id = built[0]!.signed.record.id;
            built[0]!.p.reject(inputError('STORE_DUPLICATE_ID', `a record with id ${id} already exists`, { id }));
          }
          return;
        }
        if (code === 'SQLITE_CONSTRAINT_UNIQUE') continue;
        built.forEach((b) => b.p.reject(io(e, 'appending records')));
        return;
      }
      if (inserted) {
        for (const sha256 of blobs.keys()) this.knownBlobs.set(sha256, true);
        built.forEach((b) => b.p.resolve(b.signed));
        return;
      }
      batch = built.map((b) => b.p);
    }
    batch.forEach((p) =>
      p.reject(new JoinguardError('STORE_CONFLICT', `sqlite store: log ${log} kept moving; gave up after ${this.maxRetries} attempts`, { log }, { kind: 'internal' })),
    );
  }

  async get(id: string): Promise<SignedRecord | undefined> {
    if (typeof id !== 'string' || id.length > 128) return undefined;
    let row: { jws: string; log: string; seq: number } | undefined;
    try {
      row = this.st.byId.get(id) as typeof row;
    } catch (e) {
      throw io(e, 'reading a record');
    }
    return row === undefined ? undefined : { record: decodeStoredJws(row.jws, { id, log: row.log, seq: row.seq }), jws: row.jws };
  }

  async query(q?: RecordQuery): Promise<RecordPage> {
    const n = normalizeQuery(q);
    const where = ['pos > @after'];
    const params: Record<string, string | number> = { after: n.after, limit: n.limit + 1 };
    for (const f of ['node', 'verdict', 'tee', 'purpose', 'kind', 'log'] as const) {
      const v = n[f];
      if (v !== undefined) {
        where.push(`${f} = @${f}`);
        params[f] = v;
      }
    }
    if (n.fromMs !== undefined) {
      where.push('time_ms >= @fromMs');
      params.fromMs = n.fromMs;
    }
    if (n.toMs !== undefined) {
      where.push('time_ms < @toMs');
      params.toMs = n.toMs;
    }
    let rows: { pos: number; id: string; log: string; seq: number; jws: string }[];
    try {
      rows = this.db.prepare(`SELECT pos, id, log, seq, jws FROM records WHERE ${where.join(' AND ')} ORDER BY pos LIMIT @limit`).all(params) as typeof rows;
    } catch (e) {
      throw io(e, 'querying records');
    }
    const more = rows.length > n.limit;
    const page = rows.slice(0, n.limit);
    const out: RecordPage = { records: page.map((r) => ({ record: decodeStoredJws(r.jws, { id: r.id, log: r.log, seq: r.seq }), jws: r.jws })) };
    if (more) out.nextCursor = encodeCursor(page[page.length - 1]!.pos);
    return out;
  }

  async verifyChain(log: string, keys: JSONWebKeySet): Promise<ChainVerification> {
    checkLogName(log);
    // Pages rather than one open iterator: signature checks are async, and an open iterator would keep the
    // connection busy for appends interleaved with the audit.
    const page = this.st.chain;
    async function* entries(): AsyncGenerator<ChainEntry> {
      let after = Number.MIN_SAFE_INTEGER;
      while (true) {
        let rows: Row[];
        try {
          rows = page.all(log, after) as Row[];
        } catch (e) {
          throw io(e, 'reading the chain');
        }
        for (const row of rows) yield { jws: row.jws, id: row.id, crossCheck: (r: AuditRecord, hash: string) => crossCheck(row, r, hash) };
        if (rows.length < CHAIN_PAGE) return;
        after = rows[rows.length - 1]!.seq;
      }
    }
    return verifyEntries(log, entries(), keys);
  }

  async logs(): Promise<string[]> {
    return (this.st.logs.all() as { log: string }[]).map((r) => r.log);
  }

  async getBlob(sha256: string): Promise<Uint8Array | undefined> {
    if (!isSha256Hex(sha256)) return undefined;
    let row: { data: Buffer } | undefined;
    try {
      row = this.st.blob.get(sha256) as typeof row;
    } catch (e) {
      throw io(e, 'reading a blob');
    }
    return row === undefined ? undefined : new Uint8Array(row.data.buffer, row.data.byteOffset, row.data.byteLength);
  }

  async consumeNonce(nonce: string, expiresAt: Date): Promise<boolean> {
    const now = this.now().getTime();
    const exp = expiresAt.getTime();
    if (!(exp > now)) return false;
    try {
      // Expired entries are harmless (a replay of an expired nonce fails its expiry check first), so they
      // are swept at most every NONCE_GC_INTERVAL_MS instead of costing a second commit on every attest.
      const gc = now - this.lastNonceGc >= NONCE_GC_INTERVAL_MS;
      if (gc) this.lastNonceGc = now;
      return await this.writer.addNonce(nonceKey(nonce), exp, gc ? now : null);
    } catch (e) {
      throw io(e, 'recording a nonce');
    }
  }

  async getNode(name: string): Promise<NodeState | undefined> {
    checkNodeName(name);
    const row = this.st.nodeGet.get(name) as { state: string } | undefined;
    return row === undefined ? undefined : (JSON.parse(row.state) as NodeState);
  }

  async putNode(name: string, state: NodeStateInput): Promise<NodeState> {
    const s = makeNodeState(name, state);
    try {
      await this.writer.putNode(name, JSON.stringify(s));
    } catch (e) {
      throw io(e, 'writing node state');
    }
    return s;
  }

  async updateNode(name: string, update: (current: NodeState | undefined) => NodeStateInput): Promise<NodeState> {
    checkNodeName(name);
    for (let attempt = 0; attempt < this.maxRetries; attempt++) {
      const row = this.st.nodeGet.get(name) as { state: string } | undefined;
      const next = makeNodeState(name, update(row === undefined ? undefined : (JSON.parse(row.state) as NodeState)));
      let written: boolean;
      try {
        // Compare-and-set against the state `update` saw: another writer in between makes us start again.
        written = await this.writer.casNode(name, row?.state ?? null, JSON.stringify(next));
      } catch (e) {
        throw io(e, 'writing node state');
      }
      if (written) return next;
    }
    throw new JoinguardError('STORE_CONFLICT', `sqlite store: node ${name} kept changing; gave up after ${this.maxRetries} attempts`, { name }, { kind: 'internal' });
  }

  async listNodes(): Promise<NodeState[]> {
    return (this.st.nodeList.all() as { state: string }[]).map((r) => JSON.parse(r.state) as NodeState);
  }

  async pinSetting(name: string, value: string): Promise<string> {
    checkSetting(name, value);
    try {
      await this.writer.pinSetting(name, value);
    } catch (e) {
      throw io(e, `writing setting ${name}`);
    }
    return (this.st.setting.get(name) as { value: string }).value;
  }

  async close(): Promise<void> {
    while (this.draining.size > 0) await Promise.allSettled([...this.draining.values()]);
    await this.writer.close();
    if (this.db.open) this.db.close();
  }
}

/** Index columns are a copy of signed fields; a copy that disagrees would mislead queries. */
function crossCheck(row: Row, r: AuditRecord, hash: string): string | undefined {
  const pairs: [string, unknown, unknown][] = [
    ['id', row.id, r.id],
    ['seq', row.seq, r.seq],
    ['kind', row.kind, r.kind],
    ['time', row.time, r.time],
    ['time_ms', row.time_ms, Date.parse(r.time)],
    ['node', row.node, r.node ?? null],
    ['tee', row.tee, r.tee ?? null],
    ['verdict', row.verdict, r.verdict ?? null],
    ['purpose', row.purpose, r.purpose ?? null],
    ['hash', row.hash, hash],
  ];
  for (const [col, stored, signed] of pairs) {
    if (stored !== signed) return `column ${col} holds ${JSON.stringify(stored)} but the signed record says ${JSON.stringify(signed)}`;
  }
  return undefined;
}

export function openSqliteStore(opts: SqliteStoreOptions): SqliteRecordStore {
  return new SqliteRecordStore(opts);
}
