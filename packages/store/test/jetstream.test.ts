import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager, jetstream } from '@nats-io/jetstream';
import { canonicalJsonBytes, generateSigningKey } from '@joinguard/protocol';
import { JoinguardError } from '@joinguard/core';
import { decodeRecordJws, openJetStreamStore, recordHash } from '../src/index.js';
import type { JetStreamStoreOptions } from '../src/index.js';
import { draft, runStoreContract } from './contract.js';
import { startNatsServer } from './nats.js';
import type { NatsServer } from './nats.js';

let server: NatsServer;
let n = 0;

beforeAll(async () => {
  server = await startNatsServer();
});
afterAll(async () => {
  await server?.stop();
});

/** Fresh stream and buckets per test on the one server. */
function freshNames(): Pick<JetStreamStoreOptions, 'stream' | 'subjectPrefix' | 'nonceBucket' | 'nodeBucket' | 'indexBucket' | 'settingsBucket'> {
  const t = `T${++n}`;
  return { stream: `JG_${t}`, subjectPrefix: `jg.${t}.records`, nonceBucket: `jg-${t}-nonces`, nodeBucket: `jg-${t}-nodes`, indexBucket: `jg-${t}-ids`, settingsBucket: `jg-${t}-settings` };
}

describe('JetStream store: contract', () => {
  runStoreContract(async () => {
    const names = freshNames();
    return {
      open: async (o) => openJetStreamStore({ servers: server.url, ...names, ...o }),
      // Published as append() does, with the id as Nats-Msg-Id, but with no check of what it publishes.
      writeRaw: async (log, { id, jws }) => {
        const nc = await connect({ servers: server.url });
        try {
          await jetstream(nc).publish(`${names.subjectPrefix}.${log}`, jws, { msgID: id });
        } finally {
          await nc.close();
        }
      },
      keepsSeq: false,
      cleanup: async () => undefined,
    };
  });
});

describe('JetStream store: tampering is detected with the seq named', () => {
  async function filled(count: number, denyDelete = false) {
    const names = freshNames();
    const key = await generateSigningKey();
    const s = await openJetStreamStore({ servers: server.url, ...names, denyDelete, signer: { kid: key.kid, privateKey: key.privateKey } });
    for (let i = 1; i <= count; i++) await s.append(draft(i));
    const nc = await connect({ servers: server.url });
    const jsm = await jetstreamManager(nc);
    const subject = `${names.subjectPrefix}.attest`;
    const streamSeqOf = async (seq: number) => {
      for (let q = 1; ; q++) {
        const m = await jsm.streams.getMessage(names.stream!, { seq: q });
        if (m !== null && m.subject === subject && decodeRecordJws(m.string()).seq === seq) return m;
      }
    };
    return {
      s,
      key,
      jsm,
      js: jetstream(nc),
      names,
      subject,
      streamSeqOf,
      verify: () => s.verifyChain('attest', { keys: [key.publicJwk] }),
      done: async () => {
        await s.close();
        await nc.close();
      },
    };
  }

  it('a deleted record', async () => {
    const t = await filled(5);
    try {
      expect((await t.verify()).ok).toBe(true);
      const m = await t.streamSeqOf(3);
      expect(await t.jsm.streams.deleteMessage(t.names.stream!, m.seq)).toBe(true);
      const v = await t.verify();
      expect(v).toMatchObject({ ok: false, firstBadSeq: 3, count: 2, code: 'STORE_CHAIN_SEQ_GAP' });
      expect(v).not.toHaveProperty('firstBadId');
    } finally {
      await t.done();
    }
  });

  it('a republished, modified record', async () => {
    const t = await filled(5);
    try {
      const m = await t.streamSeqOf(2);
      const [h, , sig] = m.string().split('.');
      const r = decodeRecordJws(m.string());
      const forged = Buffer.from(canonicalJsonBytes({ ...r, verdict: 'pass', body: { ...r.body, i: 42 } })).toString('base64url');
      await t.js.publish(t.subject, `${h}.${forged}.${sig}`);
      expect(await t.verify()).toMatchObject({ ok: false, firstBadSeq: 6, count: 5, code: 'STORE_CHAIN_BAD_SIGNATURE' });
    } finally {
      await t.done();
    }
  });

  it('a replayed (republished, unmodified) record', async () => {
    const t = await filled(4);
    try {
      const m = await t.streamSeqOf(2);
      await t.js.publish(t.subject, m.string());
      expect(await t.verify()).toMatchObject({ ok: false, firstBadSeq: 5, count: 4, code: 'STORE_CHAIN_SEQ_ORDER' });
    } finally {
      await t.done();
    }
  });

  it('a deleted head record: the next append refuses rather than forking the chain', async () => {
    const t = await filled(3);
    try {
      const m = await t.streamSeqOf(3);
      await t.jsm.streams.deleteMessage(t.names.stream!, m.seq);
      const code = await t.s.append(draft(4)).then(
        (r) => `appended seq ${r.record.seq}`,
        (e: { code?: string }) => e.code,
      );
      // Either the server still reports seq 2 as the head (the append then continues the chain) or it reports no
      // head at all, which must be refused. What must never happen is a new seq 1.
      const v = await t.verify();
      if (code === 'STORE_HEAD_UNREADABLE') expect(v).toMatchObject({ ok: true, count: 2 });
      else expect(code).toBe('appended seq 3');
    } finally {
      await t.done();
    }
  });

  it('refuses message deletion by default (deny_delete)', async () => {
    const t = await filled(2, true);
    try {
      const m = await t.streamSeqOf(1);
      await expect(t.jsm.streams.deleteMessage(t.names.stream!, m.seq)).rejects.toThrow();
      expect((await t.verify()).ok).toBe(true);
    } finally {
      await t.done();
    }
  });
});

describe('JetStream store: id index', () => {
  it('finds a record whose index entry a crash left unwritten, and heals it on the next append', async () => {
    const names = freshNames();
    const key = await generateSigningKey();
    const s = await openJetStreamStore({ servers: server.url, ...names, signer: { kid: key.kid, privateKey: key.privateKey } });
    const nc = await connect({ servers: server.url });
    try {
      const { Kvm } = await import('@nats-io/kv');
      const index = await new Kvm(nc).open(names.indexBucket!);
      const a = await s.append(draft(1));
      await index.purge(a.record.id);
      expect(await s.get(a.record.id)).toEqual(a);
      await index.purge(a.record.id);
      const b = await s.append(draft(2));
      expect((await index.get(a.record.id))?.operation).toBe('PUT');
      expect(await s.get(a.record.id)).toEqual(a);
      expect(await s.get(b.record.id)).toEqual(b);
      expect(await s.get('not-a-record')).toBeUndefined();
    } finally {
      await s.close();
      await nc.close();
    }
  });
});

describe('JetStream store: a log whose newest message is not a record', () => {
  async function setup() {
    const names = freshNames();
    const key = await generateSigningKey();
    const s = await openJetStreamStore({ servers: server.url, ...names, signer: { kid: key.kid, privateKey: key.privateKey } });
    const nc = await connect({ servers: server.url });
    const js = jetstream(nc);
    const { Kvm } = await import('@nats-io/kv');
    return {
      s,
      key,
      index: await new Kvm(nc).open(names.indexBucket!),
      /** Publishes as append() does (id as Nats-Msg-Id), unchecked; returns the stream seq. */
      raw: async (log: string, id: string, jws: string) => (await js.publish(`${names.subjectPrefix}.${log}`, jws, { msgID: id })).seq,
      lastSeq: async (log: string) => (await jetstreamManager(nc).then((m) => m.streams.getMessage(names.stream!, { last_by_subj: `${names.subjectPrefix}.${log}` })))?.seq,
      done: async () => {
        await s.close();
        await nc.close();
      },
    };
  }
  const outcome = (p: Promise<unknown>) =>
    p.then(
      () => 'no error',
      (e: unknown) => e,
    );

  it('is refused only to a get of the id it is kept under; other unindexed records are still found', async () => {
    const t = await setup();
    try {
      const a = await t.s.append(draft(1));
      // Bad heads in logs named before 'other', so that get() meets them first.
      await t.raw('attest', 'spoiled-head', 'garbage');
      await t.raw('nulls', 'null-head', `${a.jws.split('.')[0]}.${Buffer.from('null').toString('base64url')}.${a.jws.split('.')[2]}`);
      const b = await t.s.append(draft(2, { log: 'other' }));
      // As a crash between publish and index write leaves it: only the heads can find b now.
      await t.index.purge(b.record.id);
      expect(await t.s.get('no-such-record')).toBeUndefined();
      expect(await t.s.get(b.record.id)).toEqual(b);
      expect(await t.s.get(a.record.id)).toEqual(a);
      const spoiled = await outcome(t.s.get('spoiled-head'));
      expect(spoiled).toBeInstanceOf(JoinguardError);
      expect(spoiled).toMatchObject({ code: 'STORE_RECORD_MALFORMED', kind: 'rejected', details: { id: 'spoiled-head', log: 'attest', parts: 1 } });
      expect((spoiled as Error).message).toBe('stored record spoiled-head of log attest: stored record is not a compact JWS');
      const nul = await outcome(t.s.get('null-head'));
      expect(nul).toBeInstanceOf(JoinguardError);
      expect(nul).toMatchObject({ code: 'STORE_RECORD_MALFORMED', kind: 'rejected', details: { id: 'null-head', log: 'nulls', payloadType: 'null' } });
      expect((nul as Error).message).toBe('stored record null-head of log nulls: stored record payload is JSON but not an object (it is null)');
    } finally {
      await t.done();
    }
  });

  it('refuses an append after it with STORE_HEAD_UNREADABLE and publishes nothing; other logs go on', async () => {
    const t = await setup();
    try {
      const a = await t.s.append(draft(1));
      const bad = [
        { log: 'attest', id: 'spoiled-head', jws: 'garbage', why: 'stored record is not a compact JWS' },
        { log: 'nulls', id: 'null-head', jws: `x.${Buffer.from('null').toString('base64url')}.y`, why: 'not an object (it is null)' },
        { log: 'objects', id: 'object-head', jws: `x.${Buffer.from('{"id":"object-head"}').toString('base64url')}.y`, why: 'lacks a string id, a positive integer seq or this log' },
        // A record, but of another log: its seq counts another chain.
        { log: 'moved', id: 'moved-head', jws: a.jws, why: 'lacks a string id, a positive integer seq or this log' },
      ];
      for (const c of bad) {
        const streamSeq = await t.raw(c.log, c.id, c.jws);
        const e = await outcome(t.s.append(draft(3, { log: c.log })));
        expect(e).toBeInstanceOf(JoinguardError);
        expect(e).toMatchObject({ code: 'STORE_HEAD_UNREADABLE', kind: 'internal', details: { log: c.log, id: c.id, streamSeq } });
        expect((e as Error).message).toContain(`log ${c.log}: its last stored message (${c.id}, stream seq ${streamSeq}) is not a record to chain onto: `);
        expect((e as Error).message).toContain(c.why);
        expect(await t.lastSeq(c.log)).toBe(streamSeq);
      }
      expect(await t.s.verifyChain('attest', { keys: [t.key.publicJwk] })).toMatchObject({ ok: false, count: 1, firstBadSeq: 2, firstBadId: 'spoiled-head', code: 'STORE_CHAIN_MALFORMED' });
      // A healthy log goes on, and its append heals its head's missing index entry.
      const b = await t.s.append(draft(4, { log: 'other' }));
      await t.index.purge(b.record.id);
      const c = await t.s.append(draft(5, { log: 'other' }));
      expect(c.record).toMatchObject({ seq: 2, prev: recordHash(b.record) });
      expect((await t.index.get(b.record.id))?.operation).toBe('PUT');
    } finally {
      await t.done();
    }
  });

  it('refuses an append whose id the stream holds under another message (a duplicate publish) with STORE_DUPLICATE_ID', async () => {
    const t = await setup();
    try {
      const a = await t.s.append(draft(1));
      // Not in the id index, so only the publish's duplicate check meets it.
      const parked = await t.raw('parked', 'taken-id', 'garbage');
      const e = await outcome(t.s.append(draft(2, { id: 'taken-id' })));
      expect(e).toBeInstanceOf(JoinguardError);
      expect(e).toMatchObject({ code: 'STORE_DUPLICATE_ID', kind: 'input', details: { id: 'taken-id' } });
      expect((e as Error).message).toContain(`at stream seq ${parked}`);
      expect(await t.s.verifyChain('attest', { keys: [t.key.publicJwk] })).toMatchObject({ ok: true, count: 1, headHash: recordHash(a.record) });
    } finally {
      await t.done();
    }
  });
});
