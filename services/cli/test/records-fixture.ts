// A SQLite store file with a few signed records in several logs, and the signing-keys folder that verifies
// them, made without a verifier, for `joinguard audit …` tests that tamper with files; and a verifier that
// serves such a file to an auditor.
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import Database from 'better-sqlite3';
import { emptyKeyRing, generateSigningKey, rotateKey, type RecordDraft, type SignedRecord, type SigningKey } from '@joinguard/protocol';
import { openSqliteStore } from '@joinguard/store';
import { defaultConfig, hashToken, startVerifier, type RunningVerifier } from '@joinguard/verifier';
import { buildCli } from './support.js';

/** One log's chain in `audit verify --json`. */
export interface Chain {
  log: string;
  ok: boolean;
  count: number;
  firstBadSeq?: number;
  firstBadId?: string;
  code?: string;
}

export interface RecordsFixture {
  store: string;
  keysDir: string;
  key: SigningKey;
  /** what was appended, by log, oldest first */
  made: Record<string, SignedRecord[]>;
}

/** appraisals: 3 (each with a body of `bodyBytes` characters), key-releases: 2, revocations: 1. */
export async function makeRecords(dir: string, opts: { bodyBytes?: number } = {}): Promise<RecordsFixture> {
  const key = await generateSigningKey();
  const keysDir = join(dir, 'signing-keys');
  mkdirSync(keysDir, { recursive: true });
  writeFileSync(join(keysDir, 'keyring.json'), JSON.stringify(rotateKey(emptyKeyRing(), key.publicJwk, new Date(), 900)));
  const store = join(dir, 'records.sqlite');
  const made = await appendRecords(store, key, [
    ...[1, 2, 3].map((i): RecordDraft => ({ kind: 'appraisal', log: 'appraisals', node: `node-${i}`, verdict: 'pass', body: { n: i, padding: 'x'.repeat(opts.bodyBytes ?? 16) } })),
    ...[1, 2].map((i): RecordDraft => ({ kind: 'key-release', log: 'key-releases', node: `node-${i}`, verdict: 'pass', body: { n: i } })),
    { kind: 'revocation', log: 'revocations', node: 'node-3', body: { reason: 'decommissioned' } },
  ]);
  return { store, keysDir, key, made };
}

/** Appends drafts to a store file (signed by `key`), as the verifier would. */
export async function appendRecords(path: string, key: SigningKey, drafts: RecordDraft[]): Promise<Record<string, SignedRecord[]>> {
  const s = openSqliteStore({ path, signer: { kid: key.kid, privateKey: key.privateKey } });
  const made: Record<string, SignedRecord[]> = {};
  try {
    for (const d of drafts) (made[d.log] ??= []).push(await s.append(d));
  } finally {
    await s.close();
  }
  return made;
}

let copies = 0;

/** A copy of a store file, in `dir`, with `sql` run on it: the tampering of a test. */
export function tamperedCopy(store: string, dir: string, ...sql: string[]): string {
  const to = join(dir, `copy-${++copies}.sqlite`);
  copyFileSync(store, to);
  const db = new Database(to);
  try {
    for (const q of sql) db.prepare(q).run();
  } finally {
    db.close();
  }
  return to;
}

/** SHA-256 of a JWS's payload: the hash of that record, which the next one names as `prev`. */
export const payloadHash = (jws: string): string => createHash('sha256').update(Buffer.from(jws.split('.')[1]!, 'base64url')).digest('hex');

export interface AuditedVerifier {
  v: RunningVerifier;
  /** `--url URL --token T --jwks FILE`: the fixture's key and the verifier's own (it records its policy at start) */
  args: string[];
}

/** A verifier serving `store` (a fixture's file) to an auditor token. */
export async function startAuditedVerifier(dir: string, store: string, key: SigningKey): Promise<AuditedVerifier> {
  const token = 'fixture-auditor-token-0123456789';
  const tokensFile = join(dir, 'tokens.yaml');
  writeFileSync(tokensFile, `tokens:\n  - name: audit\n    sha256: ${hashToken(token)}\n    roles: [auditor]\n`);
  const base = defaultConfig(join(dir, 'verifier-data'));
  const v = await startVerifier({ ...base, listen: { host: '127.0.0.1', port: 0 }, store: { kind: 'sqlite', path: store }, auth: { tokensFile, mtlsRoles: {} }, logLevel: 'silent' });
  const own = (await (await fetch(`${v.url}/v1/keys/all`, { headers: { authorization: `Bearer ${token}` } })).json()) as { keys: object[] };
  const jwks = join(dir, 'online-jwks.json');
  writeFileSync(jwks, JSON.stringify({ keys: [key.publicJwk, ...own.keys] }));
  return { v, args: ['--url', v.url, '--token', token, '--jwks', jwks] };
}

/**
 * For a test file: builds the CLI and makes the records in a fresh folder (named by `prefix`) before its
 * tests, hands both to `set`, and removes the folder after them.
 */
export function useRecordsFixture(prefix: string, set: (dir: string, fx: RecordsFixture) => void, opts: { bodyBytes?: number } = {}): void {
  let dir: string | undefined;
  beforeAll(async () => {
    buildCli();
    dir = mkdtempSync(join(tmpdir(), prefix));
    set(dir, await makeRecords(dir, opts));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
}
