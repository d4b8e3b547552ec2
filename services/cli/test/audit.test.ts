
import { newKeyPair } from '@joinguard/core';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSimCvm, type SimCvm } from '@joinguard/simcvm';
import type { AttestResponse, AuditRecord, SignedRecord, TeeKeyJwk } from '@joinguard/protocol';
import { defaultConfig, hashToken, startVerifier, type RunningVerifier, type VerifierConfig } from '@joinguard/verifier';
import { buildCli, cli, cliAsync, errCode, type CliRun } from './support.js';

/*
 * `joinguard audit list | show | verify`, spawned as a process, against the records of a real verifier: one
 * started here in-process (simulated SNP CVM with a software vTPM, its test root trusted by configuration)
 * that appraises, releases a key, refuses one and revokes a node. Every command runs offline against the
 * SQLite file (`--store FILE [--keys DIR]`) and online against the running verifier with an auditor token
 * (`--url URL --token T`). Then records are tampered with in copies of the file and in the live store.
 */

const AUDITOR = 'audit-cli-auditor-token-0123456789';
const ADMIN = 'audit-cli-admin-token-0123456789';

let dir: string;
let sim: SimCvm;
let v: RunningVerifier;
let config: VerifierConfig;
let store: string;
let keysDir: string;
let trustArgs: string[];
/** What the verifier did, by record id. */
const made: { passA: string; failA: string; passB: string; release: string; refused: string } = { passA: '', failA: '', passB: '', release: '', refused: '' };

function teeKey(): TeeKeyJwk {
  const j = newKeyPair({ type: 'ec', namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
  return { kty: 'EC', crv: 'P-256', x: j.x!, y: j.y! };
}

async function attest(nodeName: string, tamper?: Parameters<SimCvm['evidence']>[0] extends infer O ? (O extends { tamper?: infer T } ? T : never) : never): Promise<AttestResponse> {
  const { nonce } = (await (await fetch(`${v.url}/v1/challenge`)).json()) as { nonce: string };
  const evidence = await sim.evidence({ nonce, runtimeData: { nodeName, machine: `${nodeName}-machine`, purpose: 'unlock', teeKey: teeKey() }, ...(tamper ? { tamper } : {}) });
  const r = await fetch(`${v.url}/v1/attest`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(evidence) });
  expect(r.status).toBe(200);
  return (await r.json()) as AttestResponse;
}

async function release(name: string, result: string): Promise<{ status: number; body: { recordId?: string; code?: string } }> {
  const r = await fetch(`${v.url}/v1/keys/disk/${name}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${result}` }, body: '{}' });
  return { status: r.status, body: (await r.json()) as { recordId?: string; code?: string } };
}

const online = () => ['--url', v.url, '--token', AUDITOR];
const offline = () => ['--store', store];
const recordsOf = (r: CliRun) => (r.json as { records: AuditRecord[] }).records;

beforeAll(async () => {
  buildCli();
  dir = mkdtempSync(join(tmpdir(), 'jg-cli-audit-'));
  sim = await createSimCvm({ tee: 'snp', vtpm: 'software', nodeName: 'audit-a' });
  const trust = sim.writeTrust(join(dir, 'trust'));
  trustArgs = ['--snp-test-root', trust.snpRootsPem!];
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, YAML.stringify(sim.goodPolicy()));
  const tokensFile = join(dir, 'tokens.yaml');
  writeFileSync(
    tokensFile,
    YAML.stringify({
      tokens: [
        { name: 'audit-team', sha256: hashToken(AUDITOR), roles: ['auditor'] },
        { name: 'ops', sha256: hashToken(ADMIN), roles: ['admin'] },
      ],
    }),
  );
  const base = defaultConfig(join(dir, 'data'));
  config = {
    ...base,
    listen: { host: '127.0.0.1', port: 0 },
    clusterId: 'audit-cli',
    policy: { file: policyFile },
    trust: { snpTestRoots: [trust.snpRootsPem!], tdxTestRoots: [] },
    auth: { tokensFile, mtlsRoles: {} },
    logLevel: 'silent',
  };
  if (config.store.kind !== 'sqlite') throw new Error('the default store is SQLite');
  store = config.store.path;
  keysDir = config.signing.keysDir;
  v = await startVerifier(config);

  // audit-a passes and gets its key; its next appraisal fails (PCR changed after the quote) and a key request
  // with that result is refused; audit-b passes.
  const a = await attest('audit-a');
  expect(a.appraisal.verdict).toBe('pass');
  made.passA = a.recordId;
  const rel = await release('audit-a', a.result);
  expect(rel.status).toBe(200);
  made.release = rel.body.recordId!;
  const bad = await attest('audit-a', { pcr: { index: 7, value: 'ab'.repeat(32) } });
  expect(bad.appraisal.verdict).toBe('fail');
  made.failA = bad.recordId;
  const refused = await release('audit-a', bad.result);
  expect(refused.body.code).toBe('KEYS_RESULT_FAILED');
  const b = await attest('audit-b');
  made.passB = b.recordId;
  // a revocation of audit-b
  const rv = await fetch(`${v.url}/v1/nodes/audit-b/revoke`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` }, body: JSON.stringify({ reason: 'decommissioned' }) });
  expect(rv.status).toBe(200);
  const page = (await (await fetch(`${v.url}/v1/records?kind=key-release&verdict=fail`, { headers: { authorization: `Bearer ${AUDITOR}` } })).json()) as { records: SignedRecord[] };
  made.refused = page.records[0]!.record.id;
});

afterAll(async () => {
  await v?.close();
  await sim?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('joinguard audit list', () => {
  for (const [where, source] of [
    ['offline (--store)', offline],
    ['online (--url --token)', online],
  ] as const) {
    it(`${where}: every record, oldest first, with its kind, node and verdict`, async () => {
      const r = await cliAsync('audit', 'list', ...source(), '--json');
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const recs = recordsOf(r);
      // The verifier's start-up record of the policy in force comes first.
      expect(recs.map((x) => `${x.kind}:${x.node}:${x.verdict ?? '-'}`)).toEqual([
        'policy-change:undefined:-',
        'appraisal:audit-a:pass',
        'key-release:audit-a:pass',
        'appraisal:audit-a:fail',
        'key-release:audit-a:fail',
        'appraisal:audit-b:pass',
        'revocation:audit-b:-',
      ]);
      expect(recs.map((x) => x.id)).toEqual([expect.any(String), made.passA, made.release, made.failA, made.refused, made.passB, expect.any(String)]);
      expect(r.json?.nextCursor).toBeUndefined();
    });

    it(`${where}: --node, --verdict and --kind filter, alone and together`, async () => {
      const byNode = recordsOf(await cliAsync('audit', 'list', ...source(), '--node', 'audit-b', '--json'));
      expect(byNode.map((x) => x.kind)).toEqual(['appraisal', 'revocation']);
      expect(byNode.every((x) => x.node === 'audit-b')).toBe(true);
      const failed = recordsOf(await cliAsync('audit', 'list', ...source(), '--verdict', 'fail', '--json'));
      expect(failed.map((x) => x.id)).toEqual([made.failA, made.refused]);
      const releases = recordsOf(await cliAsync('audit', 'list', ...source(), '--kind', 'key-release', '--json'));
      expect(releases.map((x) => x.id)).toEqual([made.release, made.refused]);
      const both = recordsOf(await cliAsync('audit', 'list', ...source(), '--node', 'audit-a', '--kind', 'appraisal', '--verdict', 'pass', '--json'));
      expect(both.map((x) => x.id)).toEqual([made.passA]);
      expect(recordsOf(await cliAsync('audit', 'list', ...source(), '--node', 'nobody', '--json'))).toEqual([]);
    });

    it(`${where}: pages with --limit and --cursor`, async () => {
      const first = await cliAsync('audit', 'list', ...source(), '--kind', 'appraisal', '--limit', '2', '--json');
      expect(recordsOf(first).map((x) => x.id)).toEqual([made.passA, made.failA]);
      const cursor = first.json?.nextCursor as string;
      expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
      const second = await cliAsync('audit', 'list', ...source(), '--kind', 'appraisal', '--limit', '2', '--cursor', cursor, '--json');
      expect(recordsOf(second).map((x) => x.id)).toEqual([made.passB]);
    });
  }

  it('text mode prints one line per record: time, kind, node, verdict, id', () => {
    const r = cli('audit', 'list', '--store', store, '--kind', 'appraisal');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(new RegExp(`^\\S+\\s+appraisal\\s+audit-a\\s+fail\\s+${made.failA}$`));
  });
});

describe('joinguard audit show', () => {
  for (const [where, source] of [
    ['offline (--store)', offline],
    ['online (--url --token)', online],
  ] as const) {
    it(`${where}: the record and its JWS`, async () => {
      const r = await cliAsync('audit', 'show', made.failA, ...source(), '--json');
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const j = r.json as unknown as SignedRecord;
      expect(j.record).toMatchObject({ id: made.failA, kind: 'appraisal', log: 'appraisals', seq: 2, node: 'audit-a', verdict: 'fail', tee: 'snp', purpose: 'unlock' });
      expect(j.jws.split('.')).toHaveLength(3);
      expect(JSON.parse(Buffer.from(j.jws.split('.')[1]!, 'base64url').toString('utf8'))).toEqual(j.record);
      // The appraisal record keeps the evidence, every check and the failing one by name.
      const body = j.record.body as { evidence?: unknown; checks: Array<{ name: string; outcome: string; code?: string }> };
      expect(body.evidence).toBeDefined();
      expect(body.checks.find((c) => c.outcome === 'fail')).toMatchObject({ name: 'tpm.quote', code: 'TPM_QUOTE_PCR_DIGEST_MISMATCH' });
    });

    it(`${where}: an unknown id exits 2 (unusable input) with NOT_FOUND`, async () => {
      const r = await cliAsync('audit', 'show', 'no-such-record', ...source(), '--json');
      expect(r.code).toBe(2);
      expect(errCode(r.json)).toBe('NOT_FOUND');
      expect(r.stderr).toMatch(/NOT_FOUND: no record no-such-record/);
    });
  }
});

describe('joinguard audit verify (intact records)', () => {
  it('offline: exit 0, every log intact with its record count', () => {
    const r = cli('audit', 'verify', '--store', store, '--keys', keysDir, '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const j = r.json as { verified: boolean; chains: Array<{ log: string; ok: boolean; count: number }> };
    expect(j.verified).toBe(true);
    expect(Object.fromEntries(j.chains.map((c) => [c.log, [c.ok, c.count]]))).toEqual({ appraisals: [true, 3], 'key-releases': [true, 2], policy: [true, 1], revocations: [true, 1] });
    const text = cli('audit', 'verify', '--store', store, '--keys', keysDir);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('appraisals: 3 records, chain intact');
  });

  it('online: exit 0 with the keys from /v1/keys/all, and --reappraise reproduces every stored verdict', async () => {
    const r = await cliAsync('audit', 'verify', ...online(), '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const j = r.json as { verified: boolean; chains: Array<{ log: string; ok: boolean; count: number }> };
    expect(j.verified).toBe(true);
    expect(j.chains.filter((c) => c.count > 0).map((c) => [c.log, c.count])).toEqual([
      ['appraisals', 3],
      ['key-releases', 2],
      ['revocations', 1],
      ['policy', 1],
    ]);
    const re = await cliAsync('audit', 'verify', ...online(), '--reappraise', '--policy', config.policy.file!, ...trustArgs, '--json');
    expect(re.stderr).toBe('');
    expect(re.code).toBe(0);
    const reappraisals = (re.json as { reappraisals: Array<{ id: string; recorded: string; now: string; same: boolean }> }).reappraisals;
    expect(reappraisals.map((x) => [x.id, x.recorded, x.now, x.same])).toEqual([
      [made.passA, 'pass', 'pass', true],
      [made.failA, 'fail', 'fail', true],
      [made.passB, 'pass', 'pass', true],
    ]);
  });

  it('offline with --jwks instead of --keys', async () => {
    const jwks = join(dir, 'jwks.json');
    const keys = await (await fetch(`${v.url}/v1/keys/all`, { headers: { authorization: `Bearer ${AUDITOR}` } })).json();
    writeFileSync(jwks, JSON.stringify(keys));
    const r = cli('audit', 'verify', '--store', store, '--jwks', jwks, '--json');
    expect(r.code).toBe(0);
    expect(r.json?.verified).toBe(true);
  });

  it('another verifier\'s keys do not verify these records (exit 1)', () => {
    const other = join(dir, 'other-keys.json');
    const { publicKey } = newKeyPair({ type: 'ec', namedCurve: 'P-256' });
    writeFileSync(other, JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'someone-else', alg: 'ES256' }] }));
    const r = cli('audit', 'verify', '--store', store, '--jwks', other, '--json');
    expect(r.code).toBe(1);
    expect(r.json?.verified).toBe(false);
    expect(errCode(r.json)).toMatch(/^STORE_CHAIN_/);
  });
});

describe('joinguard audit: unusable arguments exit 2', () => {
  it.each([
    ['no source', ['audit', 'list']],
    ['both --url and --store', ['audit', 'list', '--url', 'http://127.0.0.1:1', '--store', 'x.sqlite']],
    ['a store file that does not exist', ['audit', 'list', '--store', '/nonexistent/records.sqlite']],
    ['an unknown verdict', ['audit', 'list', '--store', '@STORE', '--verdict', 'maybe']],
    ['an unknown kind', ['audit', 'list', '--store', '@STORE', '--kind', 'nothing']],
    ['a limit that is not a number', ['audit', 'list', '--store', '@STORE', '--limit', 'ten']],
    ['a cursor of nothing', ['audit', 'list', '--store', '@STORE', '--cursor', 'bm90IGEgY3Vyc29y']],
    ['show without an id', ['audit', 'show', '--store', '@STORE']],
    ['verify offline without keys', ['audit', 'verify', '--store', '@STORE']],
    ['a keys folder without keyring.json', ['audit', 'verify', '--store', '@STORE', '--keys', '/nonexistent']],
    ['an unknown option', ['audit', 'list', '--store', '@STORE', '--colour']],
    ['an unknown subcommand', ['audit', 'frobnicate']],
  ])('%s', (_what, args) => {
    const r = cli(...args.map((a) => (a === '@STORE' ? store : a)), '--json');
    expect(r.code).toBe(2);
    expect(r.stderr).not.toBe('');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a verifier that refuses the token, and one that is not there', async () => {
    const wrong = await cliAsync('audit', 'list', '--url', v.url, '--token', 'not-a-token', '--json');
    expect(wrong.code).toBe(2);
    expect(errCode(wrong.json)).toBe('AUDIT_HTTP');
    expect(wrong.stderr).toMatch(/401 AUTH_FORBIDDEN|401 AUTH_REQUIRED/);
    const none = await cliAsync('audit', 'verify', '--url', v.url, '--json');
    expect(none.code).toBe(2);
    const gone = await cliAsync('audit', 'list', '--url', 'http://127.0.0.1:9', '--token', AUDITOR, '--json');
    expect(gone.code).toBe(2);
    expect(errCode(gone.json)).toBe('AUDIT_UNREACHABLE');
  });
});

/** A copy of the store (the verifier checkpoints its WAL first) to tamper with. */
function copyStore(name: string): string {
  const db = new Database(store);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  const to = join(dir, name);
  copyFileSync(store, to);
  return to;
}

function rewritePayload(jws: string, change: (r: AuditRecord) => void): string {
  const [h, p, s] = jws.split('.') as [string, string, string];
  const rec = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as AuditRecord;
  change(rec);
  return `${h}.${Buffer.from(JSON.stringify(rec), 'utf8').toString('base64url')}.${s}`;
}

interface VerifyFailure {
  verified: boolean;
  error: { code: string; message: string; details: { chains: Array<{ log: string; ok: boolean; count: number; firstBadSeq?: number; firstBadId?: string; code?: string }> } };
}

describe('joinguard audit verify (tampered records)', () => {
  it('a record whose signed payload was edited in the file: exit 1 naming the record, its log and seq', () => {
    const copy = copyStore('tampered-payload.sqlite');
    const db = new Database(copy);
    const row = db.prepare('SELECT jws FROM records WHERE id = ?').get(made.release) as { jws: string };
    // Someone with write access to the file turns the release into one for another machine.
    const forged = rewritePayload(row.jws, (r) => {
      (r.body as Record<string, unknown>).machine = 'another-machine';
    });
    db.prepare('UPDATE records SET jws = ? WHERE id = ?').run(forged, made.release);
    db.close();

    const r = cli('audit', 'verify', '--store', copy, '--keys', keysDir, '--json');
    expect(r.code).toBe(1);
    const j = r.json as unknown as VerifyFailure;
    expect(j.verified).toBe(false);
    expect(j.error.code).toBe('STORE_CHAIN_BAD_SIGNATURE');
    expect(j.error.message).toContain('key-releases');
    expect(j.error.message).toContain(made.release);
    const chain = j.error.details.chains.find((c) => c.log === 'key-releases')!;
    expect(chain).toMatchObject({ ok: false, count: 0, firstBadSeq: 1, firstBadId: made.release, code: 'STORE_CHAIN_BAD_SIGNATURE' });
    // The other logs are still reported intact.
    expect(j.error.details.chains.find((c) => c.log === 'appraisals')).toMatchObject({ ok: true, count: 3 });
    // Text mode says the same on stderr.
    const t = cli('audit', 'verify', '--store', copy, '--keys', keysDir);
    expect(t.code).toBe(1);
    expect(t.stderr).toMatch(new RegExp(`STORE_CHAIN_BAD_SIGNATURE: .*key-releases.*seq 1.*${made.release}`));
  });

  it('an index column changed beside an intact JWS: exit 1 with STORE_CHAIN_INDEX_MISMATCH at that record', () => {
    const copy = copyStore('tampered-column.sqlite');
    const db = new Database(copy);
    db.prepare("UPDATE records SET node = 'audit-b' WHERE id = ?").run(made.failA);
    db.close();
    // audit list trusts the index (it is a query), which is exactly why verify cross-checks it.
    expect(recordsOf(cli('audit', 'list', '--store', copy, '--node', 'audit-b', '--kind', 'appraisal', '--json')).map((x) => x.id)).toEqual([made.failA, made.passB]);
    const r = cli('audit', 'verify', '--store', copy, '--keys', keysDir, '--json');
    expect(r.code).toBe(1);
    const j = r.json as unknown as VerifyFailure;
    expect(j.error.code).toBe('STORE_CHAIN_INDEX_MISMATCH');
    expect(j.error.details.chains.find((c) => c.log === 'appraisals')).toMatchObject({ ok: false, count: 1, firstBadSeq: 2, firstBadId: made.failA });
  });

  it('a deleted record: exit 1 with STORE_CHAIN_SEQ_GAP at the missing seq', () => {
    const copy = copyStore('tampered-deleted.sqlite');
    const db = new Database(copy);
    db.prepare('DELETE FROM records WHERE id = ?').run(made.failA);
    db.close();
    const r = cli('audit', 'verify', '--store', copy, '--keys', keysDir, '--json');
    expect(r.code).toBe(1);
    const j = r.json as unknown as VerifyFailure;
    expect(j.error.code).toBe('STORE_CHAIN_SEQ_GAP');
    expect(j.error.details.chains.find((c) => c.log === 'appraisals')).toMatchObject({ ok: false, count: 1, firstBadSeq: 2 });
    expect(j.error.message).toMatch(/seq 2/);
  });

  it('an event log or certificate blob altered or removed in the file: --reappraise exits 1 naming each record that names it', () => {
    const names = (path: string) => {
      const db = new Database(path, { readonly: true });
      try {
        return (db.prepare("SELECT id, jws FROM records WHERE kind = 'appraisal' ORDER BY pos").all() as { id: string; jws: string }[]).map((r) => ({
          id: r.id,
          blob: (JSON.parse(Buffer.from(r.jws.split('.')[1]!, 'base64url').toString('utf8')) as AuditRecord).body.evidenceBlobs as { eventLog: string; certs?: { vcek?: string } } | undefined,
        }));
      } finally {
        db.close();
      }
    };
    const intact = names(store);
    expect(intact.map((x) => x.id)).toEqual([made.passA, made.failA, made.passB]);
    expect(intact.every((x) => /^[0-9a-f]{64}$/.test(x.blob?.eventLog ?? ''))).toBe(true);
    expect(intact.every((x) => /^[0-9a-f]{64}$/.test(x.blob?.certs?.vcek ?? ''))).toBe(true);
    for (const [kind, target] of [['log', intact[0]!.blob!.eventLog], ['vcek', intact[0]!.blob!.certs!.vcek!]] as const) {
      const naming = intact.filter((x) => x.blob!.eventLog === target || x.blob!.certs?.vcek === target).map((x) => x.id);
      expect(naming.length).toBeGreaterThan(0);
      for (const [what, edit, code] of [
        ['altered', (db: Database.Database) => db.prepare('UPDATE blobs SET data = ? WHERE sha256 = ?').run(Buffer.from('not what it was'), target), 'RECORD_BLOB_ALTERED'],
        ['removed', (db: Database.Database) => db.prepare('DELETE FROM blobs WHERE sha256 = ?').run(target), 'RECORD_BLOB_MISSING'],
      ] as const) {
        const copy = copyStore(`blob-${kind}-${what}.sqlite`);
        const db = new Database(copy);
        edit(db);
        db.close();
        // The chain is intact (the records were not touched); what they name is not there as it was.
        expect(cli('audit', 'verify', '--store', copy, '--keys', keysDir, '--json').code).toBe(0);
        const r = cli('audit', 'verify', '--store', copy, '--keys', keysDir, '--reappraise', '--policy', config.policy.file!, ...trustArgs, '--json');
        expect(r.code, what).toBe(1);
        const j = r.json as unknown as { error: { code: string; details: { reappraisals: Array<{ id: string; now: string; same: boolean; code?: string }> } } };
        expect(j.error.code).toBe('AUDIT_REAPPRAISAL_DIFFERS');
        const differing = j.error.details.reappraisals.filter((x) => !x.same);
        expect(differing.map((x) => [x.id, x.now, x.code])).toEqual(naming.map((id) => [id, 'missing', code]));
      }
    }
  });

  it('online: a record tampered in the live store is caught through /v1/records (exit 1 naming it)', async () => {
    const db = new Database(store);
    const row = db.prepare('SELECT jws FROM records WHERE id = ?').get(made.passB) as { jws: string };
    db.prepare('UPDATE records SET jws = ? WHERE id = ?').run(
      rewritePayload(row.jws, (r) => {
        r.verdict = 'fail';
      }),
      made.passB,
    );
    db.close();
    const r = await cliAsync('audit', 'verify', ...online(), '--json');
    expect(r.code).toBe(1);
    const j = r.json as unknown as VerifyFailure;
    expect(j.error.code).toBe('STORE_CHAIN_BAD_SIGNATURE');
    expect(j.error.message).toContain(made.passB);
    expect(j.error.details.chains.find((c) => c.log === 'appraisals')).toMatchObject({ ok: false, count: 2, firstBadSeq: 3, firstBadId: made.passB });
  });
});
