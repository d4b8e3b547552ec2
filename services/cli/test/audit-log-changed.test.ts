import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '@joinguard/core/testing';
import { canonicalJsonBytes } from '@joinguard/protocol';
import { decodeRecordJws } from '@joinguard/store';
import { cliWith, errCode } from './support.js';
import { appendRecords, payloadHash, tamperedCopy, useRecordsFixture, type RecordsFixture } from './records-fixture.js';

/*
 * `joinguard audit verify --store FILE` reads each log twice: the store's chain walk, then the verified records
 * it reports (each log's head, and the record at a saved head's seq) read back and checked again. A store whose
 * record changes in between fails with AUDIT_LOG_CHANGED rather than reporting a head it did not verify. The
 * change is made by another connection to the file, at that moment, by a hook the test preloads into the
 * bundled CLI (fixtures/change-store-between-reads.mjs); a record appended in between changes nothing verified.
 */

const HOOK = join(repoRoot, 'services/cli/test/fixtures/change-store-between-reads.mjs');
const cols = 'id, log, seq, kind, time, time_ms, node, tee, verdict, purpose, hash, jws';

let dir: string;
let fx: RecordsFixture;
let n = 0;

useRecordsFixture('jg-cli-audit-log-changed-', (d, f) => {
  dir = d;
  fx = f;
});

/** `audit verify --json` over a copy of the fixture's store, with `sql` run on it just before `log` is read back. */
function verifyWhileChanging(store: string, log: string, sql: string[], ...args: string[]) {
  const done = join(dir, `changed-${++n}`);
  const r = cliWith(
    { nodeArgs: ['--import', HOOK], env: { JOINGUARD_TEST_CHANGE_STORE: JSON.stringify({ log, sql, done }) } },
    'audit',
    'verify',
    '--store',
    store,
    '--keys',
    fx.keysDir,
    ...args,
    '--json',
  );
  return { ...r, changed: existsSync(done) };
}

/** The last appraisal (seq 3) with its verdict changed and its signature kept. */
function editedHead(): string {
  const [h, , sig] = fx.made.appraisals![2]!.jws.split('.');
  const forged = Buffer.from(canonicalJsonBytes({ ...decodeRecordJws(fx.made.appraisals![2]!.jws), verdict: 'fail' })).toString('base64url');
  return `${h}.${forged}.${sig}`;
}

describe('joinguard audit verify --store: the store changes between the chain walk and the read-back', () => {
  it.each([
    ['edited (verdict changed, signature kept)', () => `UPDATE records SET jws = '${editedHead()}', verdict = 'fail' WHERE log = 'appraisals' AND seq = 3`],
    ['deleted', () => "DELETE FROM records WHERE log = 'appraisals' AND seq = 3"],
    ['replaced by text that is no JWS', () => "UPDATE records SET jws = 'garbage' WHERE log = 'appraisals' AND seq = 3"],
  ])('the head of a log %s: exit 1 with AUDIT_LOG_CHANGED naming the log and seq, and no heads saved', (_what, sql) => {
    const heads = join(dir, `heads-${n}.json`);
    const r = verifyWhileChanging(tamperedCopy(fx.store, dir), 'appraisals', [sql()], '--save-heads', heads);
    expect(r.changed).toBe(true);
    expect(r.code, r.stderr).toBe(1);
    expect(errCode(r.json)).toBe('AUDIT_LOG_CHANGED');
    expect((r.json!.error as { message: string }).message).toMatch(/log appraisals changed while it was verified: its record at seq 3/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(heads)).toBe(false);
  });

  it('the head of a log replaced by another record signed with the verifier key: AUDIT_LOG_CHANGED, not a head the walk never saw', async () => {
    // The replacement is a valid continuation of the chain (seq 3, prev = the hash of seq 2), made in another copy.
    const other = tamperedCopy(fx.store, dir, "DELETE FROM records WHERE log = 'appraisals' AND seq = 3");
    await appendRecords(other, fx.key, [{ kind: 'appraisal', log: 'appraisals', node: 'node-3', verdict: 'fail', body: { n: 3 } }]);
    const r = verifyWhileChanging(tamperedCopy(fx.store, dir), 'appraisals', [
      `ATTACH DATABASE '${other}' AS other`,
      "DELETE FROM records WHERE log = 'appraisals' AND seq = 3",
      `INSERT INTO records (${cols}) SELECT ${cols} FROM other.records WHERE log = 'appraisals' AND seq = 3`,
      'DETACH DATABASE other',
    ]);
    expect(r.changed).toBe(true);
    expect(r.code, r.stdout.slice(0, 400)).toBe(1);
    expect(errCode(r.json)).toBe('AUDIT_LOG_CHANGED');
    expect((r.json!.error as { details: { seq: number } }).details.seq).toBe(3);
  });

  it('the record at a saved head that is no longer the last one, edited: AUDIT_LOG_CHANGED at that seq', async () => {
    const heads = join(dir, 'heads-saved.json');
    expect(cliWith({}, 'audit', 'verify', '--store', fx.store, '--keys', fx.keysDir, '--save-heads', heads).code).toBe(0);
    const store = tamperedCopy(fx.store, dir);
    await appendRecords(store, fx.key, [{ kind: 'appraisal', log: 'appraisals', node: 'node-4', verdict: 'pass', body: { n: 4 } }]);
    const r = verifyWhileChanging(store, 'appraisals', [`UPDATE records SET jws = '${editedHead()}' WHERE log = 'appraisals' AND seq = 3`], '--heads', heads);
    expect(r.changed).toBe(true);
    expect(r.code, r.stderr).toBe(1);
    expect(errCode(r.json)).toBe('AUDIT_LOG_CHANGED');
    expect((r.json!.error as { details: { seq: number } }).details.seq).toBe(3);
  });

  it('a record appended in between: exit 0, and the head reported is the one the walk verified (seq 3), not the new one', async () => {
    // The record to append, signed with the verifier key as an appending verifier would, made in another copy.
    const next = tamperedCopy(fx.store, dir);
    await appendRecords(next, fx.key, [{ kind: 'appraisal', log: 'appraisals', node: 'node-4', verdict: 'pass', body: { n: 4 } }]);
    const store = tamperedCopy(fx.store, dir);
    const r = verifyWhileChanging(store, 'appraisals', [
      `ATTACH DATABASE '${next}' AS next`,
      `INSERT INTO records (${cols}) SELECT ${cols} FROM next.records WHERE log = 'appraisals' AND seq = 4`,
      'DETACH DATABASE next',
    ]);
    expect(r.changed).toBe(true);
    expect(r.code, r.stdout.slice(0, 400)).toBe(0);
    const heads = (r.json as { heads: Array<{ log: string; seq: number; hash: string }> }).heads;
    expect(heads.find((h) => h.log === 'appraisals')).toMatchObject({ seq: 3, hash: payloadHash(fx.made.appraisals![2]!.jws) });
    // The record did land: the next audit counts it.
    const after = cliWith({}, 'audit', 'verify', '--store', store, '--keys', fx.keysDir, '--json');
    expect((after.json as { heads: Array<{ log: string; seq: number }> }).heads.find((h) => h.log === 'appraisals')?.seq).toBe(4);
  });
});
