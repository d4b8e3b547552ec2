import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliAsync, type CliRun } from './support.js';
import { useRecordsFixture, startAuditedVerifier, tamperedCopy, type AuditedVerifier, type Chain, type RecordsFixture } from './records-fixture.js';

/*
 * `joinguard audit verify` over a record whose JWS is garbage (it does not even decode, so the store's
 * queries refuse the page that holds it): exit 1 with the chain failure at that record's log, seq and id (the
 * store's id column, which online the verifier's refusal names), and the report of every other log, instead
 * of a bare STORE_RECORD_MALFORMED with no chains. Offline against copies of a store file, online through a
 * verifier on a file spoiled under it.
 */


let dir: string;
let fx: RecordsFixture;

const verify = (store: string, ...args: string[]) => cli('audit', 'verify', '--store', store, '--keys', fx.keysDir, ...args, '--json');
const failure = (r: CliRun) => (r.json as { error: { code: string; message: string; details: { chains: Chain[]; heads: Array<{ log: string }>; reappraisals?: unknown[] } } }).error;
const garbage = (log: string, seq: number) => `UPDATE records SET jws = 'garbage' WHERE log = '${log}' AND seq = ${seq}`;

useRecordsFixture('jg-cli-audit-malformed-', (d, f) => {
  dir = d;
  fx = f;
});

describe('joinguard audit verify: a record whose JWS is garbage', () => {
  it('exit 1 with STORE_CHAIN_MALFORMED naming its log, seq and id, and every other log\'s chain still reported', () => {
    const r = verify(tamperedCopy(fx.store, dir, garbage('appraisals', 2)));
    expect(r.code).toBe(1);
    const e = failure(r);
    expect(e.code).toBe('STORE_CHAIN_MALFORMED');
    // Named by its id too, which only the store's id column still holds.
    const id = fx.made.appraisals![1]!.record.id;
    expect(e.message).toContain(`log appraisals breaks at seq 2 (record ${id}): `);
    expect(e.details.chains.find((c) => c.log === 'appraisals')).toMatchObject({ ok: false, count: 1, firstBadSeq: 2, firstBadId: id, code: 'STORE_CHAIN_MALFORMED' });
    expect(Object.fromEntries(e.details.chains.filter((c) => c.log !== 'appraisals').map((c) => [c.log, [c.ok, c.count]]))).toEqual({ 'key-releases': [true, 2], revocations: [true, 1] });
    // Text mode says the same on stderr.
    const t = cli('audit', 'verify', '--store', tamperedCopy(fx.store, dir, garbage('appraisals', 2)), '--keys', fx.keysDir);
    expect(t.code).toBe(1);
    expect(t.stderr).toContain(`STORE_CHAIN_MALFORMED: log appraisals breaks at seq 2 (record ${id}): `);
  });

  it('the first record of a log, and the last: each named by log, seq and id', () => {
    for (const [log, seq, count] of [['key-releases', 1, 0], ['appraisals', 3, 2]] as const) {
      const e = failure(verify(tamperedCopy(fx.store, dir, garbage(log, seq))));
      expect(e.code).toBe('STORE_CHAIN_MALFORMED');
      expect(e.details.chains.find((c) => c.log === log)).toMatchObject({ ok: false, count, firstBadSeq: seq, firstBadId: fx.made[log]![seq - 1]!.record.id });
      expect(e.details.chains).toHaveLength(3);
    }
  });

  it('a JWS whose signature is garbage but whose payload decodes is named by its record id too', () => {
    const { record, jws } = fx.made.appraisals![1]!;
    const [h, p] = jws.split('.');
    const e = failure(verify(tamperedCopy(fx.store, dir, `UPDATE records SET jws = '${h}.${p}.garbage' WHERE id = '${record.id}'`)));
    expect(e.details.chains.find((c) => c.log === 'appraisals')).toMatchObject({ ok: false, firstBadSeq: 2, firstBadId: record.id });
    expect(e.message).toContain(record.id);
  });

  it('with --reappraise: the same chain failure and chains, not a bare STORE_RECORD_MALFORMED', () => {
    const r = verify(tamperedCopy(fx.store, dir, garbage('appraisals', 2)), '--reappraise');
    expect(r.code).toBe(1);
    const e = failure(r);
    expect(e.code).toBe('STORE_CHAIN_MALFORMED');
    expect(e.details.chains).toHaveLength(3);
    expect(e.details.chains.find((c) => c.log === 'appraisals')).toMatchObject({ ok: false, firstBadSeq: 2 });
  });

  describe('online (--url)', () => {
    let live: string;
    let verifier: AuditedVerifier;
    const online = () => verifier.args;

    beforeAll(async () => {
      live = tamperedCopy(fx.store, dir);
      verifier = await startAuditedVerifier(dir, live, fx.key);
    });

    afterAll(async () => {
      await verifier?.v.close();
    });

    it('a garbage JWS in the live store: exit 1 with STORE_CHAIN_MALFORMED at its log, seq and id, the other chains reported', async () => {
      const db = new Database(live);
      // In the middle of a log: the page that holds it is refused, the records before it are still read.
      db.prepare(garbage('appraisals', 2)).run();
      db.close();
      const id = fx.made.appraisals![1]!.record.id;
      // The verifier's refusal names the record as the store keeps it, in the error reply's details.
      const [, url, , token] = online();
      const res = await fetch(`${url}/v1/records?log=appraisals`, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(422);
      expect(await res.json()).toMatchObject({ code: 'STORE_RECORD_MALFORMED', details: { id, log: 'appraisals', seq: 2 } });
      const r = await cliAsync('audit', 'verify', ...online(), '--json');
      expect(r.code).toBe(1);
      const e = failure(r);
      expect(e.code).toBe('STORE_CHAIN_MALFORMED');
      expect(e.message).toContain(`log appraisals breaks at seq 2 (record ${id}): `);
      expect(e.details.chains.find((c) => c.log === 'appraisals')).toMatchObject({ ok: false, count: 1, firstBadSeq: 2, firstBadId: id, code: 'STORE_CHAIN_MALFORMED' });
      expect(e.details.chains.find((c) => c.log === 'key-releases')).toMatchObject({ ok: true, count: 2 });
      expect(e.details.chains.find((c) => c.log === 'revocations')).toMatchObject({ ok: true, count: 1 });
    });

    it('then the first record of another log too: both chains named by log, seq and id, as offline', async () => {
      const db = new Database(live);
      db.prepare(garbage('key-releases', 1)).run();
      db.close();
      const e = failure(await cliAsync('audit', 'verify', ...online(), '--json'));
      expect(e.code).toBe('STORE_CHAIN_MALFORMED');
      expect(e.details.chains.find((c) => c.log === 'appraisals')).toMatchObject({ ok: false, count: 1, firstBadSeq: 2, firstBadId: fx.made.appraisals![1]!.record.id });
      expect(e.details.chains.find((c) => c.log === 'key-releases')).toMatchObject({ ok: false, count: 0, firstBadSeq: 1, firstBadId: fx.made['key-releases']![0]!.record.id });
      expect(e.details.chains.find((c) => c.log === 'revocations')).toMatchObject({ ok: true, count: 1 });
    });
  });
});
