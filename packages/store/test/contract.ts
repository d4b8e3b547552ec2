import { createHash, randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import { JoinguardError } from '@joinguard/core';
import { compactSign, generateSigningKey } from '@joinguard/protocol';
import type { RecordDraft, SigningKey } from '@joinguard/protocol';
import { GENESIS_PREV, RECORD_JWS_TYPE, openRecord, recordHash } from '../src/index.js';
import type { RecordSigner, RecordStore } from '../src/index.js';

export interface StoreHarness {
  /** opens (or re-opens) a store over the same backing storage */
  open(opts: { signer: RecordSigner; now?: () => Date }): Promise<RecordStore>;
  /**
   * Writes `jws` after the last entry of `log` behind the store's back, kept under `id` as the backend keeps
   * the ids of its records: what someone with access to the backing storage could leave there.
   */
  writeRaw(log: string, entry: { id: string; jws: string }): Promise<void>;
  /** whether the backend keeps a seq beside each JWS (SQLite's column; writeRaw gives the log's next one) */
  keepsSeq: boolean;
  cleanup(): Promise<void>;
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    return e instanceof JoinguardError ? e.code : `foreign:${String(e)}`;
  }
  return undefined;
}

/** The error `p` is refused with, which must be a JoinguardError. */
async function refusal(p: Promise<unknown>): Promise<JoinguardError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(JoinguardError);
  return e as JoinguardError;
}

export function draft(i: number, over: Partial<RecordDraft> = {}): RecordDraft {
  return {
    kind: 'appraisal',
    log: 'attest',
    time: new Date(Date.UTC(2026, 10, 23, 10, 0, i)).toISOString(),
    node: `worker-${i % 3}`,
    tee: i % 2 === 0 ? 'snp' : 'tdx',
    verdict: i % 4 === 3 ? 'fail' : 'pass',
    purpose: i % 5 === 0 ? 'unlock' : 'join',
    body: { i, checks: [{ name: 'snp.signature', outcome: 'pass' }], policyDigest: 'ab'.repeat(32) },
    ...over,
  };
}

const signerOf = (k: SigningKey): RecordSigner => ({ kid: k.kid, privateKey: k.privateKey });

/**
 * The one contract every RecordStore implementation must meet. `makeHarness` gives fresh, empty backing
 * storage for each test.
 */
export function runStoreContract(makeHarness: () => Promise<StoreHarness>): void {
  async function withStore(fn: (ctx: { h: StoreHarness; s: RecordStore; key: SigningKey }) => Promise<void>): Promise<void> {
    const h = await makeHarness();
    const key = await generateSigningKey();
    const s = await h.open({ signer: signerOf(key) });
    try {
      await fn({ h, s, key });
    } finally {
      await s.close();
      await h.cleanup();
    }
  }

  it('appends records with seq, prev links, id and a verifying signature', () =>
    withStore(async ({ s, key }) => {
      const keys = { keys: [key.publicJwk] };
      const a = await s.append(draft(1));
      const b = await s.append(draft(2));
      expect(a.record.seq).toBe(1);
      expect(a.record.prev).toBe(GENESIS_PREV);
      expect(b.record.seq).toBe(2);
      expect(b.record.prev).toBe(recordHash(a.record));
      expect(a.record.id).not.toBe(b.record.id);
      expect(a.record.time).toBe(draft(1).time);
      expect(a.record.body).toEqual(draft(1).body);
      expect((await openRecord(b.jws, keys)).record).toEqual(b.record);
      expect(await s.get(a.record.id)).toEqual(a);
      expect(await s.get('no-such-record')).toBeUndefined();
      expect(await s.verifyChain('attest', keys)).toEqual({ ok: true, log: 'attest', count: 2, headHash: recordHash(b.record) });
    }));

  it('keeps one chain per log', () =>
    withStore(async ({ s, key }) => {
      const keys = { keys: [key.publicJwk] };
      for (let i = 0; i < 3; i++) await s.append(draft(i));
      const k = await s.append({ kind: 'key-release', log: 'keys', node: 'worker-0', purpose: 'unlock', body: { epoch: 0 } });
      const r = await s.append({ kind: 'revocation', log: 'admin', node: 'worker-1', body: { reason: 'machine deleted' } });
      expect(k.record.seq).toBe(1);
      expect(r.record.seq).toBe(1);
      expect(await s.logs()).toEqual(['admin', 'attest', 'keys']);
      expect((await s.verifyChain('attest', keys)).count).toBe(3);
      expect((await s.verifyChain('keys', keys)).count).toBe(1);
      expect(await s.verifyChain('empty', keys)).toEqual({ ok: true, log: 'empty', count: 0 });
    }));

  it('refuses a chain signed by a key not in the given set', () =>
    withStore(async ({ s }) => {
      await s.append(draft(1));
      const other = await generateSigningKey();
      const v = await s.verifyChain('attest', { keys: [other.publicJwk] });
      expect(v.ok).toBe(false);
      expect(v.firstBadSeq).toBe(1);
      expect(v.count).toBe(0);
      expect(['STORE_CHAIN_UNKNOWN_KEY', 'STORE_CHAIN_BAD_SIGNATURE']).toContain(v.code);
    }));

  it('names the record at which a chain breaks by the id the store keeps it under, even when its JWS does not decode', () =>
    withStore(async ({ h, s, key }) => {
      const keys = { keys: [key.publicJwk] };
      await s.append(draft(1));
      const b = await s.append(draft(2));
      await h.writeRaw('attest', { id: 'spoiled-record', jws: 'garbage' });
      expect(await s.verifyChain('attest', keys)).toMatchObject({ ok: false, count: 2, headHash: recordHash(b.record), firstBadSeq: 3, firstBadId: 'spoiled-record', code: 'STORE_CHAIN_MALFORMED' });
      // One that decodes but whose signature is another's: the store's id too, not the one its payload claims.
      const [hd, , sig] = b.jws.split('.');
      const forged = Buffer.from(JSON.stringify({ ...b.record, id: 'claimed-id', seq: 1, prev: GENESIS_PREV })).toString('base64url');
      await h.writeRaw('other', { id: 'stored-id', jws: `${hd}.${forged}.${sig}` });
      const other = await s.verifyChain('other', keys);
      expect(other).toMatchObject({ ok: false, count: 0, firstBadSeq: 1, firstBadId: 'stored-id', code: 'STORE_CHAIN_BAD_SIGNATURE' });
      expect(other).not.toHaveProperty('headHash');
    }));

  it('refuses a page or a record whose JWS does not decode with STORE_RECORD_MALFORMED naming it as stored (id, log; SQLite its seq too)', () =>
    withStore(async ({ h, s }) => {
      await s.append(draft(1));
      await s.append(draft(2, { log: 'other' }));
      await h.writeRaw('attest', { id: 'spoiled-record', jws: 'garbage' });
      for (const e of [await refusal(s.query({ log: 'attest' })), await refusal(s.query()), await refusal(s.get('spoiled-record'))]) {
        expect(e.code).toBe('STORE_RECORD_MALFORMED');
        expect(e.details).toMatchObject({ id: 'spoiled-record', log: 'attest' });
        expect(e.message).toContain('stored record spoiled-record of log attest');
        expect(e.details.seq).toBe(h.keepsSeq ? 2 : undefined);
      }
      // Other logs are still served.
      expect((await s.query({ log: 'other' })).records).toHaveLength(1);
    }));

  it('refuses a stored record whose payload is JSON but not an object (null, an array, a number, a string) as STORE_RECORD_MALFORMED naming it, and a chain check names it', () =>
    withStore(async ({ h, s, key }) => {
      const keys = { keys: [key.publicJwk] };
      const a = await s.append(draft(1));
      const b = await s.append(draft(2));
      // Signed by the store's own key, so that a chain check gets past the signature to the payload.
      const signed = (payload: string) => compactSign(Buffer.from(payload, 'utf8'), { alg: key.alg, kid: key.kid, typ: RECORD_JWS_TYPE }, key.privateKey);
      const cases = [
        { log: 'attest', id: 'null-record', payload: 'null', type: 'null', said: 'it is null', seq: 3 },
        { log: 'list', id: 'array-record', payload: '[]', type: 'array', said: 'it is an array', seq: 1 },
        { log: 'number', id: 'number-record', payload: '1', type: 'number', said: 'it is number', seq: 1 },
        { log: 'text', id: 'string-record', payload: '"x"', type: 'string', said: 'it is string', seq: 1 },
      ];
      for (const c of cases) await h.writeRaw(c.log, { id: c.id, jws: signed(c.payload) });
      for (const c of cases) {
        for (const e of [await refusal(s.query({ log: c.log })), await refusal(s.get(c.id))]) {
          expect(e.code).toBe('STORE_RECORD_MALFORMED');
          expect(e.kind).toBe('rejected');
          expect(e.details).toEqual({ payloadType: c.type, id: c.id, log: c.log, ...(h.keepsSeq ? { seq: c.seq } : {}) });
          expect(e.message).toContain(`stored record ${c.id} of log ${c.log}${h.keepsSeq ? ` at seq ${c.seq}` : ''}: `);
          expect(e.message).toContain(`payload is JSON but not an object (${c.said})`);
        }
        const v = await s.verifyChain(c.log, keys);
        expect(v).toMatchObject({ ok: false, log: c.log, firstBadSeq: c.seq, firstBadId: c.id, code: 'STORE_CHAIN_MALFORMED' });
        expect(v.reason).toContain(`not an object (${c.said})`);
      }
      expect((await refusal(s.query())).code).toBe('STORE_RECORD_MALFORMED');
      expect(await s.verifyChain('attest', keys)).toMatchObject({ count: 2, headHash: recordHash(b.record) });
      // The good records are still served by id.
      expect(await s.get(a.record.id)).toEqual(a);
      expect(await s.get(b.record.id)).toEqual(b);
    }));

  it('survives a reopen: records stay and the chain continues', () =>
    withStore(async ({ h, s, key }) => {
      const a = await s.append(draft(1));
      await s.close();
      const s2 = await h.open({ signer: signerOf(key) });
      try {
        expect(await s2.get(a.record.id)).toEqual(a);
        const b = await s2.append(draft(2));
        expect(b.record.seq).toBe(2);
        expect(b.record.prev).toBe(recordHash(a.record));
        expect((await s2.verifyChain('attest', { keys: [key.publicJwk] })).ok).toBe(true);
      } finally {
        await s2.close();
      }
    }));

  it('filters queries by node, verdict, tee, purpose, kind, log and time', () =>
    withStore(async ({ s }) => {
      const all: RecordDraft[] = [];
      for (let i = 0; i < 12; i++) {
        all.push(draft(i));
        await s.append(draft(i));
      }
      await s.append({ kind: 'csr-decision', log: 'csr', node: 'worker-0', time: draft(20).time, body: { approved: true } });
      const ids = async (q: Parameters<RecordStore['query']>[0]) => (await s.query(q)).records.map((r) => (r.record.body as { i?: number }).i ?? 'csr');
      const want = (f: (d: RecordDraft) => boolean) => all.filter(f).map((d) => (d.body as { i: number }).i);
      expect(await ids({ node: 'worker-1' })).toEqual(want((d) => d.node === 'worker-1'));
      expect(await ids({ verdict: 'fail' })).toEqual(want((d) => d.verdict === 'fail'));
      expect(await ids({ tee: 'tdx', verdict: 'pass' })).toEqual(want((d) => d.tee === 'tdx' && d.verdict === 'pass'));
      expect(await ids({ purpose: 'unlock' })).toEqual(want((d) => d.purpose === 'unlock'));
      expect(await ids({ kind: 'csr-decision' })).toEqual(['csr']);
      expect(await ids({ log: 'csr' })).toEqual(['csr']);
      expect(await ids({ node: 'worker-0' })).toEqual([...want((d) => d.node === 'worker-0'), 'csr']);
      expect(await ids({ from: draft(3).time!, to: draft(7).time! })).toEqual([3, 4, 5, 6]);
      expect(await ids({ node: 'nobody' })).toEqual([]);
    }));

  it('pages with a stable cursor', () =>
    withStore(async ({ s }) => {
      for (let i = 0; i < 10; i++) await s.append(draft(i));
      const seen: number[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const p = await s.query({ limit: 3, ...(cursor === undefined ? {} : { cursor }) });
        seen.push(...p.records.map((r) => (r.record.body as { i: number }).i));
        cursor = p.nextCursor;
        pages++;
        // Appends during paging land after the cursor and show up on a later page, never twice.
        if (pages === 2) await s.append(draft(10));
      } while (cursor !== undefined && pages < 10);
      expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      const first = await s.query({ limit: 4 });
      const again = await s.query({ limit: 4, cursor: first.nextCursor! });
      const again2 = await s.query({ limit: 4, cursor: first.nextCursor! });
      expect(again.records.map((r) => r.record.id)).toEqual(again2.records.map((r) => r.record.id));
      expect(again.records[0]!.record.seq).toBe(5);
    }));

  it('refuses bad drafts, queries and cursors with typed errors', () =>
    withStore(async ({ s }) => {
      expect(await codeOf(s.append(draft(1, { kind: 'gossip' as never })))).toBe('STORE_BAD_DRAFT');
      expect(await codeOf(s.append(draft(1, { log: 'a.b' })))).toBe('STORE_BAD_DRAFT');
      expect(await codeOf(s.append(draft(1, { log: 'x'.repeat(65) })))).toBe('STORE_BAD_DRAFT');
      expect(await codeOf(s.append(draft(1, { node: 'Not_A_Node' })))).toBe('STORE_BAD_DRAFT');
      expect(await codeOf(s.append(draft(1, { time: 'yesterday' })))).toBe('STORE_BAD_DRAFT');
      expect(await codeOf(s.append(draft(1, { body: { x: NaN } })))).toBe('PROTOCOL_JCS_INVALID_VALUE');
      expect(await codeOf(s.query({ limit: 0 }))).toBe('STORE_BAD_QUERY');
      expect(await codeOf(s.query({ limit: 100000 }))).toBe('STORE_BAD_QUERY');
      expect(await codeOf(s.query({ verdict: 'maybe' as never }))).toBe('STORE_BAD_QUERY');
      expect(await codeOf(s.query({ cursor: 'bm9wZQ' }))).toBe('STORE_BAD_CURSOR');
      expect(await codeOf(s.query({ cursor: "1' OR 1=1" }))).toBe('STORE_BAD_CURSOR');
      const a = await s.append(draft(1, { id: 'fixed-id-1' }));
      expect(a.record.id).toBe('fixed-id-1');
      expect(await codeOf(s.append(draft(2, { id: 'fixed-id-1' })))).toBe('STORE_DUPLICATE_ID');
      expect((await s.query({})).records).toHaveLength(1);
    }));

  it('does not fork a log under concurrent appends from several replicas', () =>
    withStore(async ({ h, s, key }) => {
      const replicas = [s, await h.open({ signer: signerOf(key) }), await h.open({ signer: signerOf(key) })];
      try {
        const results = await Promise.all(Array.from({ length: 30 }, (_, i) => replicas[i % 3]!.append(draft(i))));
        const seqs = results.map((r) => r.record.seq).sort((x, y) => x - y);
        expect(seqs).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
        expect(await s.verifyChain('attest', { keys: [key.publicJwk] })).toMatchObject({ ok: true, log: 'attest', count: 30 });
      } finally {
        await replicas[1]!.close();
        await replicas[2]!.close();
      }
    }));

  it('starts a fresh log once when several replicas append its first record at the same moment', () =>
    withStore(async ({ h, s, key }) => {
      const replicas = [s, await h.open({ signer: signerOf(key) }), await h.open({ signer: signerOf(key) })];
      try {
        const logs = Array.from({ length: 12 }, (_, i) => `fresh-${i}`);
        await Promise.all(logs.flatMap((log, l) => replicas.map((r, i) => r.append(draft(l * 3 + i, { log })))));
        for (const log of logs) {
          expect(await s.verifyChain(log, { keys: [key.publicJwk] })).toMatchObject({ ok: true, log, count: 3 });
        }
      } finally {
        await replicas[1]!.close();
        await replicas[2]!.close();
      }
    }));

  it('consumes a nonce once, across replicas, and refuses expired ones', async () => {
    const h = await makeHarness();
    const key = await generateSigningKey();
    let t = new Date('2026-11-23T10:00:00Z');
    const now = () => t;
    const s = await h.open({ signer: signerOf(key), now });
    const s2 = await h.open({ signer: signerOf(key), now });
    try {
      const exp = new Date(t.getTime() + 300_000);
      expect(await s.consumeNonce('nonce-a', exp)).toBe(true);
      expect(await s.consumeNonce('nonce-a', exp)).toBe(false);
      expect(await s2.consumeNonce('nonce-a', exp)).toBe(false);
      expect(await s2.consumeNonce('nonce-b', exp)).toBe(true);
      expect(await s.consumeNonce('nonce-c', new Date(t.getTime() - 1))).toBe(false);
      const results = await Promise.all([s.consumeNonce('nonce-d', exp), s2.consumeNonce('nonce-d', exp), s.consumeNonce('nonce-d', exp)]);
      expect(results.filter(Boolean)).toHaveLength(1);
      t = new Date(exp.getTime() + 1);
      expect(await s.consumeNonce('nonce-a', exp)).toBe(false);
    } finally {
      await s2.close();
      await s.close();
      await h.cleanup();
    }
  });

  it('never loses a node-state write under concurrent read-modify-writes from several replicas', () =>
    withStore(async ({ h, s, key }) => {
      const replicas = [s, await h.open({ signer: signerOf(key) }), await h.open({ signer: signerOf(key) })];
      try {
        // Appraisals keep whatever revocation they read; one revocation lands in the middle of them.
        const appraise = (r: RecordStore, i: number) =>
          r.updateNode('worker-0', (cur) => ({ ...(cur ?? { revoked: false }), lastVerdict: 'pass', lastRecordId: `rec-${i}` }));
        const revoke = (r: RecordStore) =>
          r.updateNode('worker-0', (cur) => ({ ...(cur ?? {}), revoked: true, revokedAt: '2026-11-23T11:00:00.000Z', revokedReason: 'machine deleted' }));
        await Promise.all([...Array.from({ length: 10 }, (_, i) => appraise(replicas[i % 3]!, i)), revoke(replicas[1]!), ...Array.from({ length: 10 }, (_, i) => appraise(replicas[(i + 1) % 3]!, 10 + i))]);
        const final = await s.getNode('worker-0');
        expect(final?.revoked).toBe(true);
        expect(final?.revokedReason).toBe('machine deleted');
        expect(final?.lastRecordId).toMatch(/^rec-[0-9]+$/);
        expect(await codeOf(s.updateNode('Bad_Name', () => ({ revoked: false })))).toBe('STORE_BAD_NODE_NAME');
        expect(await codeOf(s.updateNode('worker-0', () => ({ revoked: 'no' as never })))).toBe('STORE_BAD_NODE_STATE');
        expect((await s.getNode('worker-0'))?.revoked).toBe(true);
      } finally {
        await replicas[1]!.close();
        await replicas[2]!.close();
      }
    }));

  const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

  it('keeps the blobs records name, once per digest, and serves them after a reopen', () =>
    withStore(async ({ h, s, key }) => {
      const log = new Uint8Array(randomBytes(5000));
      // Larger than a NATS message may be: the event logs of real nodes can be.
      const big = new Uint8Array(randomBytes(3 * 1024 * 1024 + 17));
      const logRef = { sha256: sha256(log), data: log };
      const [a, b, c] = await Promise.all([
        s.append(draft(1, { body: { eventLogSha256: logRef.sha256 }, blobs: [logRef] })),
        s.append(draft(2, { body: { eventLogSha256: logRef.sha256 }, blobs: [logRef, logRef] })),
        s.append(draft(3, { body: { eventLogSha256: sha256(big) }, blobs: [{ sha256: sha256(big), data: big }] })),
      ]);
      expect([a.record.seq, b.record.seq, c.record.seq].sort()).toEqual([1, 2, 3]);
      // Known already: appended again without its bytes being written twice (or read: they are not checked).
      await s.append(draft(4, { body: { eventLogSha256: logRef.sha256 }, blobs: [logRef] }));
      expect(Buffer.from((await s.getBlob(logRef.sha256))!).equals(Buffer.from(log))).toBe(true);
      expect(Buffer.from((await s.getBlob(sha256(big)))!).equals(Buffer.from(big))).toBe(true);
      expect(await s.getBlob(sha256(new Uint8Array([1, 2, 3])))).toBeUndefined();
      for (const bad of ['', 'AB'.repeat(32), '../' + 'a'.repeat(61), 'a'.repeat(63)]) expect(await s.getBlob(bad)).toBeUndefined();
      const verified = await s.verifyChain('attest', { keys: [key.publicJwk] });
      expect(verified.ok).toBe(true);
      await s.close();
      const again = await h.open({ signer: signerOf(key) });
      try {
        expect(Buffer.from((await again.getBlob(logRef.sha256))!).equals(Buffer.from(log))).toBe(true);
      } finally {
        await again.close();
      }
      // withStore closes `s` again: closing twice must be harmless.
    }));

  it('refuses a blob whose bytes are not what its name says, and appends nothing then', () =>
    withStore(async ({ s }) => {
      const data = new Uint8Array(randomBytes(64));
      const other = sha256(new Uint8Array(randomBytes(64)));
      expect(await codeOf(s.append(draft(1, { blobs: [{ sha256: other, data }] })))).toBe('STORE_BLOB_DIGEST_MISMATCH');
      expect(await codeOf(s.append(draft(2, { blobs: [{ sha256: 'not-a-digest', data }] })))).toBe('STORE_BLOB_INVALID');
      expect(await codeOf(s.append(draft(3, { blobs: [{ sha256: sha256(data), data: 'text' as never }] })))).toBe('STORE_BLOB_INVALID');
      expect((await s.query({ log: 'attest' })).records).toHaveLength(0);
      expect(await s.getBlob(other)).toBeUndefined();
    }));

  it('keeps node state', () =>
    withStore(async ({ s }) => {
      expect(await s.getNode('worker-0')).toBeUndefined();
      const put = await s.putNode('worker-0', { revoked: false, lastVerdict: 'pass', lastVerifiedAt: '2026-11-23T10:00:00.000Z', tee: 'snp' });
      expect(put.name).toBe('worker-0');
      expect(await s.getNode('worker-0')).toEqual(put);
      await s.putNode('worker-0', { ...put, revoked: true, revokedAt: '2026-11-23T11:00:00.000Z', revokedReason: 'machine deleted' });
      await s.putNode('worker-1.example', { revoked: false });
      expect((await s.getNode('worker-0'))?.revoked).toBe(true);
      expect((await s.listNodes()).map((n) => [n.name, n.revoked])).toEqual([
        ['worker-0', true],
        ['worker-1.example', false],
      ]);
      expect(await codeOf(s.putNode('Bad_Name', { revoked: false }))).toBe('STORE_BAD_NODE_NAME');
      expect(await codeOf(s.putNode('worker-2', { revoked: 'no' as never }))).toBe('STORE_BAD_NODE_STATE');
      expect(await codeOf(s.getNode('../etc'))).toBe('STORE_BAD_NODE_NAME');
    }));

  it('pins a setting once, across replicas and reopens: the first value stays, every later caller reads it', () =>
    withStore(async ({ h, s, key }) => {
      const others = [await h.open({ signer: signerOf(key) }), await h.open({ signer: signerOf(key) })];
      try {
        // Three replicas start at once, each with its own value: all of them read the same winner.
        const got = await Promise.all([s, ...others].map((r, i) => r.pinSetting('secrets', `value-${i}`)));
        expect(new Set(got).size).toBe(1);
        expect(['value-0', 'value-1', 'value-2']).toContain(got[0]);
        expect(await others[0]!.pinSetting('secrets', 'another')).toBe(got[0]);
        expect(await s.pinSetting('other-setting', 'x')).toBe('x');
      } finally {
        for (const o of others) await o.close();
      }
      await s.close();
      const again = await h.open({ signer: signerOf(key) });
      try {
        expect(await again.pinSetting('secrets', 'after-reopen')).not.toBe('after-reopen');
        expect(await codeOf(again.pinSetting('Bad Name', 'x'))).toBe('STORE_BAD_SETTING');
        expect(await codeOf(again.pinSetting('fine', ''))).toBe('STORE_BAD_SETTING');
        expect(await codeOf(again.pinSetting('fine', 'x'.repeat(4097)))).toBe('STORE_BAD_SETTING');
      } finally {
        await again.close();
      }
    }));
}
