import { inputError } from '@joinguard/core';
import { PURPOSES, RECORD_KINDS, TEES, VERDICTS } from '@joinguard/protocol';
import type { AuditRecord, RecordQuery } from '@joinguard/protocol';
import { checkLogName, checkNodeName } from './records.js';
import { DEFAULT_QUERY_LIMIT, MAX_QUERY_LIMIT } from './store.js';

export interface NormalizedQuery {
  node?: string;
  fromMs?: number;
  toMs?: number;
  verdict?: string;
  tee?: string;
  purpose?: string;
  kind?: string;
  log?: string;
  limit: number;
  /** backend position after which to continue (exclusive); 0 from the start */
  after: number;
}

function badQuery(field: string, message: string): never {
  throw inputError('STORE_BAD_QUERY', `record query: ${field} ${message}`, { field });
}

/**
 * Cursors are opaque to clients but just a backend position (SQLite row position, JetStream stream sequence),
 * so a page boundary stays put while records are appended.
 */
export function encodeCursor(position: number): string {
  return Buffer.from(`c1:${position}`, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): number {
  const m =
    typeof cursor === 'string' && cursor.length <= 64 && /^[A-Za-z0-9_-]+$/.test(cursor)
      ? /^c1:([0-9]{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'))
      : null;
  if (m === null) throw inputError('STORE_BAD_CURSOR', 'record query: cursor is not a cursor from this store', { cursor });
  return Number(m[1]);
}

function oneOf(field: string, v: unknown, allowed: readonly string[]): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !allowed.includes(v)) badQuery(field, `must be one of ${allowed.join(', ')}`);
  return v;
}

function time(field: string, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const t = typeof v === 'string' ? Date.parse(v) : NaN;
  if (Number.isNaN(t)) badQuery(field, 'must be an RFC 3339 date-time');
  return t;
}

export function normalizeQuery(q: RecordQuery = {}): NormalizedQuery {
  const out: NormalizedQuery = { limit: DEFAULT_QUERY_LIMIT, after: 0 };
  if (q.node !== undefined) {
    try {
      checkNodeName(q.node);
    } catch {
      badQuery('node', 'must be a DNS-1123 subdomain');
    }
    out.node = q.node;
  }
  if (q.log !== undefined) {
    try {
      checkLogName(q.log);
    } catch {
      badQuery('log', 'must match ^[A-Za-z0-9_-]{1,64}$');
    }
    out.log = q.log;
  }
  const fromMs = time('from', q.from);
  const toMs = time('to', q.to);
  if (fromMs !== undefined) out.fromMs = fromMs;
  if (toMs !== undefined) out.toMs = toMs;
  const verdict = oneOf('verdict', q.verdict, VERDICTS);
  const tee = oneOf('tee', q.tee, TEES);
  const purpose = oneOf('purpose', q.purpose, PURPOSES);
  const kind = oneOf('kind', q.kind, RECORD_KINDS);
  if (verdict !== undefined) out.verdict = verdict;
  if (tee !== undefined) out.tee = tee;
  if (purpose !== undefined) out.purpose = purpose;
  if (kind !== undefined) out.kind = kind;
  if (q.limit !== undefined) {
    if (!Number.isSafeInteger(q.limit) || q.limit < 1 || q.limit > MAX_QUERY_LIMIT) badQuery('limit', `must be an integer from 1 to ${MAX_QUERY_LIMIT}`);
    out.limit = q.limit;
  }
  if (q.cursor !== undefined) out.after = decodeCursor(q.cursor);
  return out;
}

/** The in-memory form of the filters, for backends that scan. */
export function matchesQuery(r: AuditRecord, q: NormalizedQuery): boolean {
  if (q.node !== undefined && r.node !== q.node) return false;
  if (q.log !== undefined && r.log !== q.log) return false;
  if (q.verdict !== undefined && r.verdict !== q.verdict) return false;
  if (q.tee !== undefined && r.tee !== q.tee) return false;
  if (q.purpose !== undefined && r.purpose !== q.purpose) return false;
  if (q.kind !== undefined && r.kind !== q.kind) return false;
  if (q.fromMs !== undefined || q.toMs !== undefined) {
    const t = Date.parse(r.time);
    if (q.fromMs !== undefined && !(t >= q.fromMs)) return false;
    if (q.toMs !== undefined && !(t < q.toMs)) return false;
  }
  return true;
}
