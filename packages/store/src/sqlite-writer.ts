import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Database as Db } from 'better-sqlite3';
import type { BlobInput } from '@joinguard/protocol';

/** A records row as the writer inserts it (the columns of the records table but `pos`). */
export interface RecordRow {
  id: string;
  log: string;
  seq: number;
  kind: string;
  time: string;
  time_ms: number;
  node: string | null;
  tee: string | null;
  verdict: string | null;
  purpose: string | null;
  hash: string;
  jws: string;
}

/**
 * Every write the SQLite store makes. Reads stay on the caller's connection; writes go through one of these,
 * either on that connection (in-memory stores) or in a thread of their own, so that the fsync of a commit
 * never stops the event loop that is appraising the next requests.
 */
export interface SqliteWriter {
  /**
   * Inserts `rows` if the log's head is still `expectedLast`, with the blobs they name (kept if already there)
   * in the same transaction; fsynced (synchronous=FULL) before it resolves.
   */
  insertIfHead(log: string, expectedLast: number, rows: RecordRow[], blobs: BlobInput[]): Promise<boolean>;
  /** true when the nonce was not yet recorded; deletes entries expired at `gcBefore` first, when given. */
  addNonce(key: string, expiresMs: number, gcBefore: number | null): Promise<boolean>;
  putNode(name: string, state: string): Promise<boolean>;
  /** Writes `state` only if the stored state is still `expected` (null: no state yet). */
  casNode(name: string, expected: string | null, state: string): Promise<boolean>;
  /** Inserts the setting unless one of that name exists; true when inserted. */
  pinSetting(name: string, value: string): Promise<boolean>;
  close(): Promise<void>;
}

type Ops = { [K in Exclude<keyof SqliteWriter, 'close'>]: (...args: Parameters<SqliteWriter[K]>) => boolean };

/**
 * The write statements, over one connection. Self-contained on purpose (it refers to nothing outside its
 * body), because its source text is also what the writer thread runs.
 */
export function writeOps(db: Db): Ops {
  const last = db.prepare('SELECT seq FROM records WHERE log = ? ORDER BY seq DESC LIMIT 1');
  const insert = db.prepare(
    `INSERT INTO records (id, log, seq, kind, time, time_ms, node, tee, verdict, purpose, hash, jws)
     VALUES (@id, @log, @seq, @kind, @time, @time_ms, @node, @tee, @verdict, @purpose, @hash, @jws)`,
  );
  const blobAdd = db.prepare('INSERT OR IGNORE INTO blobs (sha256, data) VALUES (?, ?)');
  const nonceGc = db.prepare('DELETE FROM nonces WHERE expires_ms <= ?');
  const nonceAdd = db.prepare('INSERT OR IGNORE INTO nonces (key, expires_ms) VALUES (?, ?)');
  const nodeGet = db.prepare('SELECT state FROM nodes WHERE name = ?');
  const settingAdd = db.prepare('INSERT OR IGNORE INTO settings (name, value) VALUES (?, ?)');
  const nodePut = db.prepare('INSERT INTO nodes (name, state) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET state = excluded.state');
  const insertTx = db.transaction((log: string, expectedLast: number, rows: unknown[], blobs: BlobInput[]) => {
    const head = last.get(log) as { seq: number } | undefined;
    if ((head === undefined ? 0 : head.seq) !== expectedLast) return false;
    // Posted to the writer thread, a Buffer arrives as a plain Uint8Array; the driver binds Buffers as BLOBs.
    for (const b of blobs) blobAdd.run(b.sha256, Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength));
    for (const row of rows) insert.run(row);
    return true;
  });
  const casTx = db.transaction((name: string, expected: string | null, state: string) => {
    const row = nodeGet.get(name) as { state: string } | undefined;
    if ((row === undefined ? null : row.state) !== expected) return false;
    nodePut.run(name, state);
    return true;
  });
  return {
    // IMMEDIATE takes the write lock up front, so two processes cannot both read the same head. Only record
    // batches are fsynced: their fsync of the append-only WAL also covers the nonce and node frames before them.
    insertIfHead(log, expectedLast, rows, blobs) {
      db.pragma('synchronous = FULL');
      try {
        return insertTx.immediate(log, expectedLast, rows, blobs);
      } finally {
        db.pragma('synchronous = NORMAL');
      }
    },
    addNonce(key, expiresMs, gcBefore) {
      if (gcBefore !== null) nonceGc.run(gcBefore);
      return nonceAdd.run(key, expiresMs).changes === 1;
    },
    putNode(name, state) {
      nodePut.run(name, state);
      return true;
    },
    casNode(name, expected, state) {
      return casTx.immediate(name, expected, state);
    },
    pinSetting(name, value) {
      return settingAdd.run(name, value).changes === 1;
    },
  };
}

/** Writes on the caller's own connection (used for ':memory:' databases, which a thread cannot share). */
export function inlineWriter(db: Db): SqliteWriter {
  const ops = writeOps(db);
  const call = <K extends keyof Ops>(op: K, ...args: Parameters<Ops[K]>): Promise<boolean> => {
    try {
      return Promise.resolve((ops[op] as (...a: unknown[]) => boolean)(...args));
    } catch (e) {
      return Promise.reject(e);
    }
  };
  return {
    insertIfHead: (...a) => call('insertIfHead', ...a),
    addNonce: (...a) => call('addNonce', ...a),
    putNode: (...a) => call('putNode', ...a),
    casNode: (...a) => call('casNode', ...a),
    pinSetting: (...a) => call('pinSetting', ...a),
    close: () => Promise.resolve(),
  };
}

// `__name` stands in for the helper a bundler adds when it keeps function names.
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const __name = (f) => f;
const Database = require(workerData.driver);
const db = new Database(workerData.path, { timeout: workerData.timeoutMs });
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
const ops = (${writeOps.toString()})(db);
parentPort.on('message', (batch) => {
  const replies = [];
  let closing = false;
  for (const { id, op, args } of batch) {
    if (op === 'close') {
      closing = true;
      replies.push({ id, ok: true });
      continue;
    }
    try {
      replies.push({ id, ok: true, value: ops[op](...args) });
    } catch (e) {
      replies.push({ id, ok: false, message: String(e && e.message), code: e && e.code });
    }
  }
  if (closing) {
    try { db.close(); } catch {}
  }
  parentPort.postMessage(replies);
  if (closing) parentPort.close();
});
`;

interface Waiting {
  resolve: (v: boolean) => void;
  reject: (e: Error) => void;
}

/** Writes on a connection of a worker thread: the caller's event loop goes on while a commit waits for fsync. */
export function threadWriter(path: string, timeoutMs: number): SqliteWriter {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(THREAD_SOURCE, { eval: true, workerData: { driver, path, timeoutMs } });
  const waiting = new Map<number, Waiting>();
  let nextId = 1;
  let broken: Error | undefined;
  // The thread keeps the process alive only while a write is in flight.
  worker.unref();
  const failAll = (e: Error) => {
    broken ??= e;
    for (const w of waiting.values()) w.reject(e);
    waiting.clear();
  };
  worker.on('message', (replies: { id: number; ok: boolean; value?: boolean; message?: string; code?: string }[]) => {
    for (const m of replies) {
      const w = waiting.get(m.id);
      if (w === undefined) continue;
      waiting.delete(m.id);
      if (m.ok) w.resolve(m.value === true);
      else w.reject(Object.assign(new Error(m.message), { code: m.code }));
    }
    if (waiting.size === 0) worker.unref();
  });
  worker.on('error', (e) => failAll(e));
  worker.on('exit', (code) => failAll(new Error(`the sqlite writer thread exited (code ${code})`)));
  // What one event-loop turn asks for goes over in one message (in order), and comes back in one.
  let outbox: { id: number; op: string; args: unknown[] }[] = [];
  const flush = () => {
    const batch = outbox;
    outbox = [];
    if (broken) return;
    worker.postMessage(batch);
  };
  const send = (op: string, args: unknown[]): Promise<boolean> => {
    if (broken) return Promise.reject(broken);
    return new Promise<boolean>((resolve, reject) => {
      const id = nextId++;
      if (waiting.size === 0) worker.ref();
      waiting.set(id, { resolve, reject });
      if (outbox.push({ id, op, args }) === 1) setImmediate(flush);
    });
  };
  return {
    insertIfHead: (...a) => send('insertIfHead', a),
    addNonce: (...a) => send('addNonce', a),
    putNode: (...a) => send('putNode', a),
    casNode: (...a) => send('casNode', a),
    pinSetting: (...a) => send('pinSetting', a),
    async close() {
      if (!broken) await send('close', []).catch(() => undefined);
      await worker.terminate();
    },
  };
}
