import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliAsync, errCode, type CliRun } from './support.js';
import { appendRecords, useRecordsFixture, payloadHash, startAuditedVerifier, tamperedCopy, type AuditedVerifier, type Chain, type RecordsFixture } from './records-fixture.js';

/*
 * `joinguard audit verify --save-heads FILE` and `--heads FILE`: the head of every log (seq, hash, id) kept by
 * the auditor, so that what a hash chain cannot show by itself (the newest records of a log deleted, or a whole
 * log gone) fails the next audit. Offline against copies of a store file, online through a verifier on a file
 * that is then cut short under it.
 */

interface Head {
  log: string;
  seq: number;
  hash: string;
  id: string;
}
interface HeadCheck {
  log: string;
  seq: number;
  ok: boolean;
  code?: string;
  reason?: string;
}
interface Report {
  verified: boolean;
  chains: Chain[];
  heads: Head[];
  headChecks?: HeadCheck[];
  headsSaved?: boolean;
}

let dir: string;
let fx: RecordsFixture;
let n = 0;

const copyWith = (...sql: string[]) => tamperedCopy(fx.store, dir, ...sql);

const verify = (store: string, ...args: string[]) => cli('audit', 'verify', '--store', store, '--keys', fx.keysDir, ...args, '--json');
const report = (r: CliRun) => r.json as unknown as Report;
const failure = (r: CliRun) => (r.json as { error: { code: string; message: string; details: Report } }).error;

/** The heads of the fixture's store as saved by --save-heads. */
function savedHeads(name: string): string {
  const file = join(dir, name);
  const r = verify(fx.store, '--save-heads', file);
  expect(r.code, r.stderr).toBe(0);
  return file;
}

useRecordsFixture('jg-cli-audit-heads-', (d, f) => {
  dir = d;
  fx = f;
});

describe('joinguard audit verify: the heads of the logs', () => {
  it('reports each log\'s head (log, seq, the hash of its last record, its id), and --save-heads writes them', () => {
    const file = join(dir, 'heads-first.json');
    const r = verify(fx.store, '--save-heads', file);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const expected = Object.entries(fx.made).map(([log, recs]) => {
      const last = recs[recs.length - 1]!;
      return { log, seq: recs.length, hash: payloadHash(last.jws), id: last.record.id };
    });
    expect(report(r).heads).toEqual(expect.arrayContaining(expected));
    expect(report(r).heads).toHaveLength(expected.length);
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { heads: Head[]; savedAt: string };
    expect(saved.heads).toEqual(report(r).heads);
    expect(report(r).headsSaved).toBe(true);
    expect(report(verify(fx.store)).headsSaved).toBeUndefined();
    expect(Number.isNaN(Date.parse(saved.savedAt))).toBe(false);
    // Written by rename: no temporary file is left beside it.
    expect(readdirSync(dir).filter((f) => f.includes('heads-first') && f !== 'heads-first.json')).toEqual([]);
    // Text mode names the heads too.
    const t = cli('audit', 'verify', '--store', fx.store, '--keys', fx.keysDir);
    expect(t.stdout).toContain(`appraisals: 3 records, chain intact (head seq 3, hash ${expected[0]!.hash}`);
  });

  it('a record deleted and written back unchanged (a new row position, the same chain) still verifies, against its heads too', () => {
    const heads = savedHeads('heads-moved.json');
    const cols = 'id, log, seq, kind, time, time_ms, node, tee, verdict, purpose, hash, jws';
    for (const seq of [1, 3]) {
      const copy = copyWith(
        `CREATE TABLE moved AS SELECT ${cols} FROM records WHERE log = 'appraisals' AND seq = ${seq}`,
        `DELETE FROM records WHERE log = 'appraisals' AND seq = ${seq}`,
        `INSERT INTO records (${cols}) SELECT ${cols} FROM moved`,
        'DROP TABLE moved',
      );
      const r = verify(copy, '--heads', heads);
      expect(r.code, `seq ${seq}: ${r.stdout.slice(0, 400)}`).toBe(0);
      const j = r.json as { verified: boolean; heads: Head[] };
      expect(j.verified).toBe(true);
      expect(j.heads).toEqual(JSON.parse(readFileSync(heads, 'utf8')).heads);
    }
  });

  it('a saved head whose hash is right but whose record id is not: AUDIT_HEAD_MISMATCH, exit 1', () => {
    const heads = savedHeads('heads-wrong-id.json');
    const doc = JSON.parse(readFileSync(heads, 'utf8')) as { heads: Head[] };
    doc.heads[0]!.id = '00000000-0000-7000-8000-000000000000';
    writeFileSync(heads, JSON.stringify(doc));
    const r = verify(fx.store, '--heads', heads);
    expect(r.code).toBe(1);
    expect(failure(r).details.headChecks!.find((h) => h.log === doc.heads[0]!.log)).toMatchObject({ ok: false, code: 'AUDIT_HEAD_MISMATCH' });
  });

  it('the last record of a log deleted: a valid shorter chain (exit 0) without heads, STORE_CHAIN_TRUNCATED (exit 1) against them', () => {
    const heads = savedHeads('heads-tail.json');
    const copy = copyWith("DELETE FROM records WHERE log = 'appraisals' AND seq = 3");
    expect(verify(copy).code).toBe(0);
    const r = verify(copy, '--heads', heads);
    expect(r.code).toBe(1);
    const e = failure(r);
    expect(e.code).toBe('STORE_CHAIN_TRUNCATED');
    expect(e.message).toMatch(/appraisals.*seq 3/);
    expect(e.details.verified).toBe(false);
    expect(e.details.headChecks!.find((h) => h.log === 'appraisals')).toMatchObject({ ok: false, seq: 3, code: 'STORE_CHAIN_TRUNCATED' });
    expect(e.details.headChecks!.filter((h) => h.ok).map((h) => h.log).sort()).toEqual(['key-releases', 'revocations']);
    const t = cli('audit', 'verify', '--store', copy, '--keys', fx.keysDir, '--heads', heads);
    expect(t.code).toBe(1);
    expect(t.stderr).toMatch(/STORE_CHAIN_TRUNCATED: log appraisals at seq 3/);
  });

  it('a whole log deleted: it is still reported (0 records) and fails with STORE_CHAIN_TRUNCATED naming it', () => {
    const heads = savedHeads('heads-log.json');
    const copy = copyWith("DELETE FROM records WHERE log = 'key-releases'");
    const without = verify(copy);
    expect(without.code).toBe(0);
    expect(report(without).chains.map((c) => c.log)).not.toContain('key-releases');
    const r = verify(copy, '--heads', heads);
    expect(r.code).toBe(1);
    const e = failure(r);
    expect(e.code).toBe('STORE_CHAIN_TRUNCATED');
    expect(e.message).toMatch(/key-releases at seq 2/);
    expect(e.details.chains.find((c) => c.log === 'key-releases')).toMatchObject({ ok: true, count: 0 });
    expect(e.details.headChecks!.find((h) => h.log === 'key-releases')).toMatchObject({ ok: false, seq: 2, code: 'STORE_CHAIN_TRUNCATED' });
  });

  it('records appended after the heads were saved pass, and --save-heads then moves the heads on', async () => {
    const heads = savedHeads('heads-grow.json');
    const copy = copyWith();
    await appendRecords(copy, fx.key, [{ kind: 'appraisal', log: 'appraisals', node: 'node-4', verdict: 'fail', body: { n: 4 } }]);
    const r = verify(copy, '--heads', heads, '--save-heads', heads);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(report(r).headChecks!.every((h) => h.ok)).toBe(true);
    expect((JSON.parse(readFileSync(heads, 'utf8')) as { heads: Head[] }).heads.find((h) => h.log === 'appraisals')?.seq).toBe(4);
  });

  it('a log rewritten from a saved head on (validly signed): STORE_CHAIN_FORKED naming the log and seq', async () => {
    const heads = savedHeads('heads-fork.json');
    // Someone with the signing key drops the last appraisal and signs another one in its place.
    const copy = copyWith("DELETE FROM records WHERE log = 'appraisals' AND seq = 3");
    await appendRecords(copy, fx.key, [{ kind: 'appraisal', log: 'appraisals', node: 'node-3', verdict: 'fail', body: { n: 3 } }]);
    expect(verify(copy).code).toBe(0);
    const r = verify(copy, '--heads', heads);
    expect(r.code).toBe(1);
    const e = failure(r);
    expect(e.code).toBe('STORE_CHAIN_FORKED');
    expect(e.message).toMatch(/appraisals at seq 3/);
    expect(e.details.headChecks!.find((h) => h.log === 'appraisals')).toMatchObject({ ok: false, seq: 3, code: 'STORE_CHAIN_FORKED' });
  });

  it('a verification that fails does not save heads: the file keeps the last good ones', () => {
    const heads = savedHeads('heads-kept.json');
    const before = readFileSync(heads, 'utf8');
    const copy = copyWith("DELETE FROM records WHERE log = 'appraisals' AND seq = 3");
    expect(verify(copy, '--heads', heads, '--save-heads', heads).code).toBe(1);
    expect(readFileSync(heads, 'utf8')).toBe(before);
  });

  it.each([
    ['a record edited (its verdict, signature kept)', () => {
      const { jws } = fx.made.appraisals![1]!;
      const [h, p, sig] = jws.split('.');
      const edited = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), verdict: 'fail' })).toString('base64url');
      return `UPDATE records SET jws = '${h}.${edited}.${sig}' WHERE log = 'appraisals' AND seq = 2`;
    }, 'STORE_CHAIN_BAD_SIGNATURE'],
    ['a record cut short (the last 20 characters of its JWS gone)', () => "UPDATE records SET jws = substr(jws, 1, length(jws) - 20) WHERE log = 'appraisals' AND seq = 2", undefined],
  ])('a broken chain (%s) with --save-heads: exit 1 with the break\'s code, no heads written, and the report says so', (_what, sql, code) => {
    const copy = copyWith(sql());
    // First audit of this store: no file is created.
    const fresh = join(dir, `heads-broken-${++n}.json`);
    const r = verify(copy, '--save-heads', fresh);
    expect(r.code).toBe(1);
    const e = failure(r);
    const chain = e.details.chains.find((c) => c.log === 'appraisals')!;
    expect(chain).toMatchObject({ ok: false, firstBadSeq: 2 });
    expect(e.code).toBe(code ?? chain.code);
    expect(e.code).toMatch(/^STORE_CHAIN_/);
    expect(e.details.headsSaved).toBe(false);
    expect(e.message).toContain(`heads not saved to ${fresh}`);
    expect(existsSync(fresh)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.includes(`heads-broken-${n}`))).toEqual([]);
    // An auditor's usual run, checking the last heads and moving them on: the last good heads stay.
    const kept = savedHeads(`heads-broken-kept-${n}.json`);
    const before = readFileSync(kept, 'utf8');
    const again = verify(copy, '--heads', kept, '--save-heads', kept);
    expect(again.code).toBe(1);
    expect(errCode(again.json)).toBe(e.code);
    expect(readFileSync(kept, 'utf8')).toBe(before);
    // Text mode says it on stderr, in the one line of the rejection.
    const t = cli('audit', 'verify', '--store', copy, '--keys', fx.keysDir, '--save-heads', fresh);
    expect(t.code).toBe(1);
    expect(t.stderr.startsWith(`rejected: ${e.code}: log appraisals breaks at seq 2 `)).toBe(true);
    expect(t.stderr.endsWith(`(heads not saved to ${fresh})\n`)).toBe(true);
    expect(t.stderr.split('\n')).toHaveLength(2);
    expect(existsSync(fresh)).toBe(false);
  });

  it('a log whose chain breaks before its saved head: the break is the finding, the head is not confirmed', () => {
    const heads = savedHeads('heads-garbage.json');
    const copy = copyWith("UPDATE records SET jws = 'garbage' WHERE log = 'appraisals' AND seq = 2");
    const r = verify(copy, '--heads', heads);
    expect(r.code).toBe(1);
    const e = failure(r);
    expect(e.code).toBe('STORE_CHAIN_MALFORMED');
    expect(e.details.headChecks!.find((h) => h.log === 'appraisals')).toMatchObject({ ok: false, code: 'STORE_CHAIN_MALFORMED' });
    expect(e.details.headChecks!.filter((h) => h.ok).map((h) => h.log).sort()).toEqual(['key-releases', 'revocations']);
  });

  it.each([
    ['a file that does not exist', null, 'INPUT_NOT_FOUND'],
    ['not JSON', 'heads: yes', 'AUDIT_HEADS_MALFORMED'],
    ['no heads array', '{"logs": []}', 'AUDIT_HEADS_MALFORMED'],
    ['null', 'null', 'AUDIT_HEADS_MALFORMED'],
    ['a head without a hash', '{"heads": [{"log": "appraisals", "seq": 3}]}', 'AUDIT_HEADS_MALFORMED'],
    ['a seq of 0', `{"heads": [{"log": "appraisals", "seq": 0, "hash": "${'0'.repeat(64)}"}]}`, 'AUDIT_HEADS_MALFORMED'],
    ['a log name that is none', `{"heads": [{"log": "../x", "seq": 1, "hash": "${'0'.repeat(64)}"}]}`, 'AUDIT_HEADS_MALFORMED'],
    ['two heads for one log', `{"heads": [{"log": "a", "seq": 1, "hash": "${'0'.repeat(64)}"}, {"log": "a", "seq": 2, "hash": "${'1'.repeat(64)}"}]}`, 'AUDIT_HEADS_MALFORMED'],
  ])('an unusable heads file (%s): exit 2 with a message, no stack trace', (_what, content, code) => {
    const file = join(dir, `bad-heads-${++n}.json`);
    if (content !== null) writeFileSync(file, content);
    const r = verify(fx.store, '--heads', file);
    expect(r.code).toBe(2);
    expect(errCode(r.json)).toBe(code);
    expect(r.stderr).toContain(file);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('--save-heads into a folder that does not exist: exit 2, nothing written', () => {
    const r = verify(fx.store, '--save-heads', join(dir, 'no-such-folder', 'heads.json'));
    expect(r.code).toBe(2);
    expect(errCode(r.json)).toBe('AUDIT_HEADS_UNWRITABLE');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(join(dir, 'no-such-folder'))).toBe(false);
  });
});

describe('joinguard audit verify --url: heads of a running verifier\'s logs', () => {
  let live: string;
  let verifier: AuditedVerifier;
  const online = () => verifier.args;

  beforeAll(async () => {
    live = copyWith();
    verifier = await startAuditedVerifier(dir, live, fx.key);
  });

  afterAll(async () => {
    await verifier?.v.close();
  });

  it('heads saved online, then the tail of one log and the whole of another deleted in the live store: STORE_CHAIN_TRUNCATED', async () => {
    const heads = join(dir, 'heads-online.json');
    const first = await cliAsync('audit', 'verify', ...online(), '--save-heads', heads, '--json');
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(report(first).heads.filter((h) => h.log !== 'policy')).toEqual(
      expect.arrayContaining(Object.entries(fx.made).map(([log, recs]) => ({ log, seq: recs.length, hash: payloadHash(recs[recs.length - 1]!.jws), id: recs[recs.length - 1]!.record.id }))),
    );
    const db = new Database(live);
    db.prepare("DELETE FROM records WHERE log = 'appraisals' AND seq = 3").run();
    db.prepare("DELETE FROM records WHERE log = 'key-releases'").run();
    db.close();
    expect((await cliAsync('audit', 'verify', ...online(), '--json')).code).toBe(0);
    const r = await cliAsync('audit', 'verify', ...online(), '--heads', heads, '--json');
    expect(r.code).toBe(1);
    const e = failure(r);
    expect(e.code).toBe('STORE_CHAIN_TRUNCATED');
    expect(e.details.headChecks!.filter((h) => !h.ok).map((h) => [h.log, h.seq, h.code])).toEqual([
      ['appraisals', 3, 'STORE_CHAIN_TRUNCATED'],
      ['key-releases', 2, 'STORE_CHAIN_TRUNCATED'],
    ]);
  });
});
