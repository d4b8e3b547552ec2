import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { JSONWebKeySet } from 'jose';
import { inputError, isJoinguardError, reject, type JoinguardError } from '@joinguard/core';
import { allKeys, evidenceOfRecord, isSha256Hex, type AuditRecord, type KeyRing, type RecordPage, type RecordQuery, type SignedRecord } from '@joinguard/protocol';
import { decodeRecordJws, openRecord, verifyEntries, type ChainEntry, type ChainVerification, type RecordStore } from '@joinguard/store';
import { readPolicy, recordedPolicy } from '@joinguard/verifier';
import { policyDigest, type Policy } from '@joinguard/policy';
import { appraise, recordedPin, trustFlags, trustFrom, type TrustOpts } from '../appraise.js';
import { openStoreFile } from '../store-file.js';
import { runCommand, usage } from '../output.js';
import { checkHead, readHeads, writeHeads, type HeadCheck, type LogHead, type LogPoint } from './audit-heads.js';

interface SourceOptions {
  url?: string;
  token?: string;
  store?: string;
  keys?: string;
  jwks?: string;
  json?: boolean;
}

/** Where records come from: a running verifier (auditor token) or, offline, a SQLite store file. */
interface RecordSource {
  query(q: RecordQuery): Promise<RecordPage>;
  get(id: string): Promise<SignedRecord | undefined>;
  keys(): Promise<JSONWebKeySet>;
  logs(): Promise<string[]>;
  /**
   * The store checks its own index columns against the signed records too; over HTTP only the JWS chain is seen.
   * With the verification come the verified records at the seqs in `at` and the last verified one (the head).
   */
  verifyChain(log: string, keys: JSONWebKeySet, at: ReadonlySet<number>): Promise<VerifiedChain>;
  /** What a record names by SHA-256 (its event log); undefined when the source does not have it. */
  blob(sha256: string): Promise<Uint8Array | undefined>;
  close(): Promise<void>;
}

interface VerifiedChain {
  chain: ChainVerification;
  /** by seq: verified records, among those asked for and the last verified one */
  points: Map<number, LogPoint>;
}

/** Largest blob read over HTTP: an event log is at most a few MiB (the evidence schema's bound). */
const MAX_HTTP_BLOB_BYTES = 64 * 1024 * 1024;

/** GET with the auditor's token; a verifier that cannot be reached is AUDIT_UNREACHABLE. */
async function httpGet(url: string, token: string | undefined): Promise<Response> {
  try {
    return await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  } catch (e) {
    throw inputError('AUDIT_UNREACHABLE', `cannot reach ${url}: ${(e as Error).message}`, { url });
  }
}

type ErrorBody = { code?: string; message?: string; details?: unknown } | undefined;

/** A refusal by the verifier, with its code and details (serverCode, serverDetails) kept. */
function httpFailure(url: string, status: number, body: ErrorBody) {
  const details = typeof body?.details === 'object' && body.details !== null && !Array.isArray(body.details) ? { serverDetails: body.details as Record<string, unknown> } : {};
  return inputError('AUDIT_HTTP', `${url} answered ${status}${body?.code ? ` ${body.code}: ${body.message}` : ''}`, { status, ...(typeof body?.code === 'string' ? { serverCode: body.code } : {}), ...details });
}

async function httpBlob(url: string, token: string | undefined): Promise<Uint8Array | undefined> {
  const res = await httpGet(url, token);
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  if (!res.ok) throw httpFailure(url, res.status, (await res.json().catch(() => undefined)) as ErrorBody);
  const declared = Number(res.headers.get('content-length') ?? 0);
  if (declared > MAX_HTTP_BLOB_BYTES) {
    await res.body?.cancel();
    throw inputError('AUDIT_HTTP', `${url} announces ${declared} bytes, more than the ${MAX_HTTP_BLOB_BYTES} a blob may have`, { size: declared });
  }
  const data = new Uint8Array(await res.arrayBuffer());
  if (data.byteLength > MAX_HTTP_BLOB_BYTES) throw inputError('AUDIT_HTTP', `${url} sent more than the ${MAX_HTTP_BLOB_BYTES} bytes a blob may have`, {});
  return data;
}

async function httpJson(url: string, token: string | undefined): Promise<unknown> {
  const res = await httpGet(url, token);
  const body = (await res.json().catch(() => undefined)) as ErrorBody;
  if (res.status === 404 && body?.code === 'NOT_FOUND') return undefined;
  if (!res.ok) throw httpFailure(url, res.status, body);
  if (body === undefined) throw inputError('AUDIT_HTTP', `${url} did not answer JSON: is it a joinguard verifier?`, { status: res.status });
  return body;
}

/**
 * A record as the verifier signed it: the payload of its JWS, not the `record` member beside it (which a
 * server, a proxy or a response serializer could change without the signature showing it).
 */
function signedRecord(x: unknown, url: string): SignedRecord {
  const jws = (x as { jws?: unknown } | null)?.jws;
  if (typeof jws !== 'string') throw inputError('AUDIT_HTTP', `${url} answered something that is not a signed record`, {});
  return { record: decodeRecordJws(jws), jws };
}

async function openSource(o: SourceOptions): Promise<RecordSource> {
  if (o.url && o.store) throw usage('give either --url (a running verifier) or --store (a store file), not both');
  if (o.url) {
    const base = o.url.replace(/\/+$/, '');
    const token = o.token ?? process.env.JOINGUARD_TOKEN;
    const params = (q: RecordQuery) => {
      const p = new URLSearchParams();
      for (const [k, v] of Object.entries(q)) if (v !== undefined) p.set(k, String(v));
      return p.toString();
    };
    const source: RecordSource = {
      query: async (q) => {
        const url = `${base}/v1/records?${params(q)}`;
        const page = (await httpJson(url, token)) as { records?: unknown; nextCursor?: unknown } | undefined;
        if (!page || !Array.isArray(page.records)) throw inputError('AUDIT_HTTP', `${url} answered something that is not a page of records`, {});
        return { records: page.records.map((r) => signedRecord(r, url)), ...(typeof page.nextCursor === 'string' ? { nextCursor: page.nextCursor } : {}) };
      },
      get: async (id) => {
        const url = `${base}/v1/records/${encodeURIComponent(id)}`;
        const r = await httpJson(url, token);
        return r === undefined ? undefined : signedRecord(r, url);
      },
      keys: async () => {
        if (o.jwks) return readJwks(o.jwks);
        const url = `${base}/v1/keys/all`;
        const j = (await httpJson(url, token)) as JSONWebKeySet | undefined;
        if (!j || !Array.isArray(j.keys)) throw inputError('AUDIT_HTTP', `${url} answered something that is not a JWKS`, {});
        return j;
      },
      logs: async () => ['appraisals', 'key-releases', 'revocations', 'policy', 'csr-decisions', 'ak-pins'],
      verifyChain: (log, keys, at) => verifyLogEntries(source, log, keys, at),
      // The name is checked before it goes into a URL; what comes back is checked against it by the caller.
      blob: async (sha256) => (isSha256Hex(sha256) ? httpBlob(`${base}/v1/blobs/${sha256}`, token) : undefined),
      close: async () => undefined,
    };
    return source;
  }
  if (o.store) {
    const store: RecordStore = await openStoreFile(o.store);
    const source: RecordSource = {
      query: (q) => store.query(q),
      get: (id) => store.get(id),
      keys: async () => {
        if (o.jwks) return readJwks(o.jwks);
        if (o.keys) return readKeyRing(o.keys);
        throw usage('offline verification needs the verifier keys: --keys DIR (the verifier signing-keys folder) or --jwks FILE');
      },
      logs: () => store.logs(),
      // The store's own walk (which also sees its index columns) hands out no hashes: the verified records
      // wanted are read back once more.
      verifyChain: async (log, keys, at) => {
        const chain = await store.verifyChain(log, keys);
        const seqs = [...at, chain.count].filter((seq) => seq >= 1 && seq <= chain.count);
        return { chain, points: await verifiedPoints(source, log, keys, seqs, chain.headHash === undefined ? undefined : { seq: chain.count, hash: chain.headHash }) };
      },
      blob: (sha256) => store.getBlob(sha256),
      close: () => store.close(),
    };
    return source;
  }
  throw usage('give --url URL (with --token or JOINGUARD_TOKEN) or --store FILE');
}

function readJwks(path: string): JSONWebKeySet {
  try {
    const j = JSON.parse(readFileSync(path, 'utf8')) as JSONWebKeySet;
    if (!Array.isArray(j.keys)) throw new Error('no "keys" array');
    return j;
  } catch (e) {
    throw inputError('INPUT_UNREADABLE', `JWKS ${path} cannot be read: ${(e as Error).message}`, { path });
  }
}

function readKeyRing(dir: string): JSONWebKeySet {
  const path = join(dir, 'keyring.json');
  try {
    return allKeys(JSON.parse(readFileSync(path, 'utf8')) as KeyRing);
  } catch (e) {
    throw inputError('INPUT_UNREADABLE', `key ring ${path} cannot be read: ${(e as Error).message}`, { path });
  }
}

function withSource<T>(o: SourceOptions, f: (s: RecordSource) => Promise<T>): Promise<T> {
  return openSource(o).then(async (s) => {
    try {
      return await f(s);
    } finally {
      await s.close();
    }
  });
}

/** A stored record as read back for the audit: its JWS, or why the source could not hand it out. */
type LogEntry = { jws: string } | { unreadable: JoinguardError };

/**
 * A source refuses a page holding a record whose JWS does not decode (the store's query decodes every record
 * it returns; a verifier answers with the store's STORE_RECORD_MALFORMED). That is the evidence being bad, not
 * the audit's input, and it must not hide the rest of the report.
 */
function isUnreadableRecord(e: unknown): e is JoinguardError {
  return isJoinguardError(e) && (e.code === 'STORE_RECORD_MALFORMED' || (e.code === 'AUDIT_HTTP' && e.details.serverCode === 'STORE_RECORD_MALFORMED'));
}

/**
 * The id under which the source keeps the record it could not hand out, as the store's refusal names it
 * (offline directly, over HTTP in the verifier's reply); only when it names a record of this log.
 */
function unreadableId(e: JoinguardError, log: string): string | undefined {
  const d = (e.code === 'AUDIT_HTTP' ? e.details.serverDetails : e.details) as { id?: unknown; log?: unknown } | undefined;
  return d?.log === log && typeof d.id === 'string' && /^[A-Za-z0-9_-]{1,128}$/.test(d.id) ? d.id : undefined;
}

/**
 * Every record of a log in storage order, page by page. A page the source cannot hand out is read again one
 * record at a time, up to the record that spoils it, which ends the log as `unreadable` (no cursor leads past
 * it). Any other failure (an unreachable verifier, a refused token) is thrown.
 */
async function* readLog(s: RecordSource, log: string): AsyncGenerator<LogEntry> {
  let cursor: string | undefined;
  let limit = 1000;
  while (true) {
    let page: RecordPage;
    try {
      page = await s.query({ log, limit, ...(cursor ? { cursor } : {}) });
    } catch (e) {
      if (!isUnreadableRecord(e)) throw e;
      if (limit > 1) {
        limit = 1;
        continue;
      }
      yield { unreadable: e };
      return;
    }
    for (const r of page.records) yield { jws: r.jws };
    if (!page.nextCursor) return;
    cursor = page.nextCursor;
  }
}

/** The payload of a JWS, unverified (to name a record, never to trust it); undefined when it is not a record. */
function decodedRecord(jws: string): AuditRecord | undefined {
  try {
    const r = decodeRecordJws(jws);
    return typeof r === 'object' && r !== null && !Array.isArray(r) ? r : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The chain check of a log read through the source's queries (over HTTP), keeping the verified records at the
 * seqs in `at` and the last one as they pass. A record the source cannot hand out breaks the chain there.
 */
async function verifyLogEntries(s: RecordSource, log: string, keys: JSONWebKeySet, at: ReadonlySet<number>): Promise<VerifiedChain> {
  const points = new Map<number, LogPoint>();
  let last: { seq: number; point: LogPoint } | undefined;
  let unreadable: JoinguardError | undefined;
  const keep = (record: AuditRecord, hash: string): undefined => {
    last = { seq: record.seq, point: { hash, id: record.id } };
    if (at.has(record.seq)) points.set(record.seq, last.point);
    return undefined;
  };
  async function* entries(): AsyncGenerator<ChainEntry> {
    for await (const entry of readLog(s, log)) {
      if ('unreadable' in entry) {
        unreadable = entry.unreadable;
        return;
      }
      yield { jws: entry.jws, crossCheck: keep };
    }
  }
  let chain = await verifyEntries(log, entries(), keys);
  if (chain.ok && unreadable) {
    const id = unreadableId(unreadable, log);
    chain = {
      ...chain,
      ok: false,
      firstBadSeq: chain.count + 1,
      ...(id === undefined ? {} : { firstBadId: id }),
      code: 'STORE_CHAIN_MALFORMED',
      reason: `record at position ${chain.count + 1} of log ${log} cannot be read: ${unreadable.message}`,
    };
  }
  if (last) points.set(last.seq, last.point);
  return { chain, points };
}

/**
 * The records at the given seqs of a log whose chain verified up to them, read again and checked again: their
 * hashes and ids. The store's chain walk goes by seq and its queries by the order rows were written, which
 * need not agree (a row deleted and written back): records are found by their seq, not their position. The
 * walk's last record is known by its hash (`head`): another one at that seq, even one validly signed, is not it.
 */
async function verifiedPoints(s: RecordSource, log: string, keys: JSONWebKeySet, seqs: number[], head: { seq: number; hash: string } | undefined): Promise<Map<number, LogPoint>> {
  const points = new Map<number, LogPoint>();
  const wanted = new Set(seqs);
  for await (const entry of readLog(s, log)) {
    if (points.size === wanted.size) break;
    // One that does not decode is not a record of the verified chain (which the walk already judged).
    if (!('jws' in entry)) continue;
    const seq = decodedRecord(entry.jws)?.seq;
    if (typeof seq !== 'number' || !wanted.has(seq) || points.has(seq)) continue;
    const opened = await openRecord(entry.jws, keys).catch(() => undefined);
    if (!opened || opened.record.seq !== seq || opened.record.log !== log) continue;
    if (seq === head?.seq && opened.hash !== head.hash) continue;
    points.set(seq, { hash: opened.hash, id: opened.record.id });
  }
  const missing = seqs.filter((seq) => !points.has(seq));
  if (missing.length > 0) {
    throw reject('AUDIT_LOG_CHANGED', `log ${log} changed while it was verified: its record at seq ${missing[0]} is no longer the one verified`, { log, seq: missing[0] });
  }
  return points;
}

/** A policy --reappraise can judge records by, and where it came from (a policy record's id, or a file). */
interface KnownPolicy {
  policy: Policy;
  from: string;
}

/**
 * Every policy the verifier put in force, by digest: the documents its policy-change records carry (the
 * policy log, whose chain this same command verifies), plus the files given with --policy (or, without
 * any, the default policy). A record is re-appraised under the policy whose digest it recorded, so records
 * of different node pools, and from before and after a policy change, are each judged by their own.
 */
async function knownPolicies(s: RecordSource, files: string[] | undefined, now: Date): Promise<Map<string, KnownPolicy>> {
  const known = new Map<string, KnownPolicy>();
  for await (const entry of readLog(s, 'policy')) {
    // A record that does not decode breaks the policy log's chain, which this same command reports.
    const rec = 'jws' in entry ? decodedRecord(entry.jws) : undefined;
    if (!rec) continue;
    // A document this version cannot load: the records under it are reported as skipped, with the digest.
    const recorded = recordedPolicy(rec);
    if (recorded && !known.has(recorded.digest)) known.set(recorded.digest, { policy: recorded.policy, from: `policy record ${rec.id}` });
  }
  for (const file of files?.length ? files : [undefined]) {
    const policy = readPolicy(file, now);
    known.set(policyDigest(policy), { policy, from: file ?? 'the default policy' });
  }
  return known;
}

const sourceFlags = (c: Command): Command =>
  c
    .option('--url <url>', 'a running verifier (auditor credentials in --token or JOINGUARD_TOKEN)')
    .option('--token <token>', 'auditor bearer token')
    .option('--store <file>', 'offline: the verifier SQLite store file')
    .option('--keys <dir>', 'offline: the verifier signing-keys folder (keyring.json)')
    .option('--jwks <file>', 'verifier public keys as a JWKS file')
    .option('--json', 'print JSON');

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('query and re-verify the signed, hash-chained decision records');

  sourceFlags(audit.command('list').description('list records (oldest first), with filters and paging'))
    .option('--node <name>')
    .option('--from <time>', 'RFC 3339, inclusive')
    .option('--to <time>', 'RFC 3339, exclusive')
    .option('--verdict <v>', 'pass | fail')
    .option('--tee <tee>')
    .option('--purpose <p>', 'unlock | join | reattest')
    .option('--kind <k>', 'appraisal | key-release | csr-decision | revocation | policy-change | ak-unpin')
    .option('--log <log>')
    .option('--limit <n>', 'page size', (v) => Number(v))
    .option('--cursor <c>', 'next page, from a previous nextCursor')
    .action((o: SourceOptions & RecordQuery) =>
      runCommand(o, async () => {
        const q: RecordQuery = {};
        for (const k of ['node', 'from', 'to', 'verdict', 'tee', 'purpose', 'kind', 'log', 'limit', 'cursor'] as const) {
          if (o[k] !== undefined) (q as Record<string, unknown>)[k] = o[k];
        }
        const page = await withSource(o, (s) => s.query(q));
        const lines = page.records.map((r) => `${r.record.time}  ${r.record.kind.padEnd(12)} ${(r.record.node ?? '-').padEnd(24)} ${(r.record.verdict ?? '-').padEnd(5)} ${r.record.id}`);
        return { json: { records: page.records.map((r) => r.record), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) }, text: lines.join('\n') + (page.nextCursor ? `\n(more: --cursor ${page.nextCursor})` : '') };
      }),
    );

  sourceFlags(audit.command('show').argument('<id>').description('show one record with its JWS'))
    .action((id: string, o: SourceOptions) =>
      runCommand(o, async () => {
        const r = await withSource(o, (s) => s.get(id));
        if (!r) throw inputError('NOT_FOUND', `no record ${id}`, { id });
        return { json: r, text: JSON.stringify(r.record, null, 2) };
      }),
    );

  trustFlags(
    sourceFlags(audit.command('verify').description('re-check every log: signatures, sequence and hash links; --reappraise re-runs stored evidence'))
      .option('--reappraise', 're-run the verification of every stored appraisal and compare verdicts')
      .option('--policy <file...>', 'policies for --reappraise besides those in the policy log (the default policy when absent); each record is judged by the policy whose digest it recorded')
      .option('--heads <file>', 'heads saved by an earlier --save-heads: each log named there must still hold its record at that seq with that hash (a log cut short or gone fails with STORE_CHAIN_TRUNCATED, one rewritten with STORE_CHAIN_FORKED)')
      .option('--save-heads <file>', 'once everything verified, write the head of every log (log, seq, hash, id) to this file, atomically, for a later --heads'),
  )
    .action((o: SourceOptions & TrustOpts & { reappraise?: boolean; policy?: string[]; heads?: string; saveHeads?: string }) =>
      runCommand(o, async () => {
        // A heads file that cannot be used is the auditor's input, refused before anything is read.
        const saved = o.heads === undefined ? [] : readHeads(o.heads);
        const report = await withSource(o, async (s) => {
          const keys = await s.keys();
          const chains: ChainVerification[] = [];
          const heads: LogHead[] = [];
          const headChecks: HeadCheck[] = [];
          // A log with a saved head is verified even when the source no longer lists it: that is how a log
          // removed whole shows.
          const logs = [...new Set([...(await s.logs()), ...saved.map((h) => h.log)])];
          for (const log of logs) {
            const mine = saved.find((h) => h.log === log);
            const { chain: c, points } = await s.verifyChain(log, keys, new Set(mine ? [mine.seq] : []));
            // A broken chain names its bad record (firstBadId): offline by the store's own id for it, which a
            // record whose JWS does not decode has too; over HTTP by the id its payload claims, or, for one
            // that does not decode, by the store's id the verifier's refusal names.
            chains.push(c);
            const head = points.get(c.count);
            if (c.ok && c.count > 0 && head) heads.push({ log, seq: c.count, ...head });
            if (mine) headChecks.push(checkHead(mine, c, points.get(mine.seq)));
          }
          const reappraisals: Array<{ id: string; node?: string; recorded?: string; now: string; same: boolean; policy?: string; policyFrom?: string; code?: string; reason?: string }> = [];
          if (o.reappraise) {
            const policies = await knownPolicies(s, o.policy, new Date());
            const trust = trustFrom(o);
            for await (const entry of readLog(s, 'appraisals')) {
              // What does not decode is not evidence to re-run; the chain of its log names it.
              const rec = 'jws' in entry ? decodedRecord(entry.jws) : undefined;
              if (!rec) continue;
              const recordedPolicy = rec.body.policy as { digest?: string } | undefined;
              const who = { id: rec.id, ...(rec.node ? { node: rec.node } : {}) };
              const recorded = rec.verdict ? { recorded: rec.verdict } : {};
              // The evidence as it came: an event log kept by digest is fetched back and checked against it.
              const got = await evidenceOfRecord(rec.body, (sha256) => s.blob(sha256));
              if ('gap' in got) {
                reappraisals.push({ ...who, ...recorded, now: 'missing', same: false, code: got.gap.code, reason: got.gap.message });
                continue;
              }
              const evidence = got.evidence;
              const known = typeof recordedPolicy?.digest === 'string' ? policies.get(recordedPolicy.digest) : undefined;
              if (!known) {
                reappraisals.push({
                  ...who,
                  ...recorded,
                  now: 'skipped',
                  same: false,
                  reason: `recorded under policy digest ${recordedPolicy?.digest}, which is neither in the policy log nor given with --policy`,
                });
                continue;
              }
              // A pinning policy judged the AK against the node's pin of the time, which the record's own check names.
              const pinned = recordedPin(rec.body.checks);
              const out = await appraise(evidence, { now: new Date(rec.time), policy: known.policy, trust, ...(pinned !== undefined ? { pinnedAkSha256: pinned } : {}) });
              const same = out.appraisal.verdict === rec.verdict;
              // A verdict that differs names the first check that failed now (e.g. a VCEK no longer found).
              const failed = same ? undefined : out.appraisal.checks.find((c) => c.outcome === 'fail');
              reappraisals.push({
                ...who,
                ...recorded,
                now: out.appraisal.verdict,
                same,
                policy: recordedPolicy!.digest!,
                policyFrom: known.from,
                ...(failed ? { ...(failed.code ? { code: failed.code } : {}), reason: `${failed.name}${failed.code ? ` [${failed.code}]` : ''}: ${failed.message ?? 'failed'}` } : {}),
              });
            }
          }
          return { chains, heads, headChecks, reappraisals };
        });
        const broken = report.chains.filter((c) => !c.ok);
        const lost = report.headChecks.filter((h) => !h.ok);
        const differing = report.reappraisals.filter((r) => !r.same);
        const verified = broken.length === 0 && lost.length === 0 && differing.length === 0;
        const json = {
          verified,
          chains: report.chains,
          heads: report.heads,
          ...(o.heads !== undefined ? { headChecks: report.headChecks } : {}),
          ...(o.reappraise ? { reappraisals: report.reappraisals } : {}),
          // Written only once everything verified (a failure to write is AUDIT_HEADS_UNWRITABLE, printed instead).
          ...(o.saveHeads !== undefined ? { headsSaved: verified } : {}),
        };
        if (!verified) {
          // The heads are not saved: a store that failed the audit must not become the next audit's reference.
          // The file keeps the heads of the last audit that passed, and the message says so.
          const first = broken[0];
          const gone = lost[0];
          const unsaved = o.saveHeads !== undefined ? ` (heads not saved to ${o.saveHeads})` : '';
          const details = json as unknown as Record<string, unknown>;
          if (first) {
            throw reject(first.code ?? 'AUDIT_CHAIN_BROKEN', `log ${first.log} breaks at seq ${first.firstBadSeq}${first.firstBadId ? ` (record ${first.firstBadId})` : ''}: ${first.reason}${unsaved}`, details);
          }
          if (gone) throw reject(gone.code ?? 'AUDIT_HEAD_LOST', `log ${gone.log} at seq ${gone.seq}: ${gone.reason}${unsaved}`, details);
          throw reject('AUDIT_REAPPRAISAL_DIFFERS', `${differing.length} stored appraisal(s) do not give the recorded verdict again${unsaved}`, details);
        }
        if (o.saveHeads !== undefined) writeHeads(o.saveHeads, report.heads, new Date());
        const headOf = new Map(report.heads.map((h) => [h.log, h]));
        const text = [
          ...report.chains.map((c) => {
            const h = headOf.get(c.log);
            return `${c.log}: ${c.count} records, chain intact${h ? ` (head seq ${h.seq}, hash ${h.hash}, record ${h.id})` : ''}`;
          }),
          ...(o.heads !== undefined ? [`${report.headChecks.length} saved heads of ${o.heads} still in place`] : []),
          ...(o.saveHeads !== undefined ? [`heads saved to ${o.saveHeads}`] : []),
          ...(o.reappraise ? [`reappraised ${report.reappraisals.length} appraisals: all verdicts reproduced`] : []),
        ].join('\n');
        return { json, text };
      }),
    );
}
