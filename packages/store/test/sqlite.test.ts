import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CompactSign } from 'jose';
import { canonicalJsonBytes, generateSigningKey } from '@joinguard/protocol';
import type { SigningKey } from '@joinguard/protocol';
import { decodeRecordJws, openSqliteStore } from '../src/index.js';
import { draft, runStoreContract } from './contract.js';

describe('SQLite store: contract', () => {
  runStoreContract(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'joinguard-sqlite-'));
    const path = join(dir, 'records.db');
    return {
      open: async (o) => openSqliteStore({ path, ...o }),
      writeRaw: async (log, { id, jws }) =>
        tamper(path, (db) =>
          db
            .prepare(
              "INSERT INTO records (id, log, seq, kind, time, time_ms, hash, jws) SELECT ?, ?, COALESCE(MAX(seq), 0) + 1, 'appraisal', '2026-11-23T10:00:00.000Z', 0, '-', ? FROM records WHERE log = ?",
            )
            .run(id, log, jws, log),
        ),
      keepsSeq: true,
      cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    };
  });
});

async function filledStore(n: number): Promise<{ path: string; key: SigningKey; cleanup: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'joinguard-sqlite-'));
  const path = join(dir, 'records.db');
  const key = await generateSigningKey();
  const s = openSqliteStore({ path, signer: { kid: key.kid, privateKey: key.privateKey } });
  for (let i = 1; i <= n; i++) await s.append(draft(i));
  await s.close();
  return { path, key, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

async function verify(path: string, key: SigningKey) {
  const s = openSqliteStore({ path, signer: { kid: key.kid, privateKey: key.privateKey } });
  try {
    return await s.verifyChain('attest', { keys: [key.publicJwk] });
  } finally {
    await s.close();
  }
}

function tamper(path: string, fn: (db: Database.Database) => void): void {
  const db = new Database(path);
  try {
    fn(db);
  } finally {
    db.close();
  }
}

const jwsOf = (db: Database.Database, seq: number) => (db.prepare('SELECT jws FROM records WHERE log = ? AND seq = ?').get('attest', seq) as { jws: string }).jws;
const setJws = (db: Database.Database, seq: number, jws: string) => db.prepare('UPDATE records SET jws = ? WHERE log = ? AND seq = ?').run(jws, 'attest', seq);

describe('SQLite store: tampering is detected with the seq named', () => {
  it('an edited record body (signature kept)', async () => {
    const { path, key, cleanup } = await filledStore(5);
    try {
      expect((await verify(path, key)).ok).toBe(true);
      tamper(path, (db) => {
        const [h, , sig] = jwsOf(db, 3).split('.');
        const r = decodeRecordJws(jwsOf(db, 3));
        const forged = Buffer.from(canonicalJsonBytes({ ...r, verdict: 'pass', body: { ...r.body, i: 99 } })).toString('base64url');
        setJws(db, 3, `${h}.${forged}.${sig}`);
      });
      expect(await verify(path, key)).toMatchObject({ ok: false, firstBadSeq: 3, count: 2, code: 'STORE_CHAIN_BAD_SIGNATURE' });
    } finally {
      cleanup();
    }
  });

  it('an edited index column', async () => {
    const { path, key, cleanup } = await filledStore(5);
    try {
      tamper(path, (db) => db.prepare("UPDATE records SET verdict = 'pass' WHERE log = 'attest' AND seq = 3").run());
      expect(await verify(path, key)).toMatchObject({ ok: false, firstBadSeq: 3, code: 'STORE_CHAIN_INDEX_MISMATCH' });
    } finally {
      cleanup();
    }
  });

  it('a record whose JWS does not decode, in the middle of the log: named by its row\'s id', async () => {
    const { path, key, cleanup } = await filledStore(5);
    try {
      let id = '';
      tamper(path, (db) => {
        id = (db.prepare("SELECT id FROM records WHERE log = 'attest' AND seq = 3").get() as { id: string }).id;
        setJws(db, 3, 'not.a-jws');
      });
      expect(await verify(path, key)).toMatchObject({ ok: false, firstBadSeq: 3, count: 2, firstBadId: id, code: 'STORE_CHAIN_MALFORMED' });
    } finally {
      cleanup();
    }
  });

  it('a removed record', async () => {
    const { path, key, cleanup } = await filledStore(5);
    try {
      tamper(path, (db) => db.prepare("DELETE FROM records WHERE log = 'attest' AND seq = 2").run());
      const v = await verify(path, key);
      expect(v).toMatchObject({ ok: false, firstBadSeq: 2, count: 1, code: 'STORE_CHAIN_SEQ_GAP' });
      // The record of that seq is gone: the next one, which is intact, is not named.
      expect(v).not.toHaveProperty('firstBadId');
    } finally {
      cleanup();
    }
  });

  it('reordered records', async () => {
    const { path, key, cleanup } = await filledStore(5);
    try {
      tamper(path, (db) => {
        const a = jwsOf(db, 2);
        const b = jwsOf(db, 4);
        setJws(db, 2, b);
        setJws(db, 4, a);
      });
      const v = await verify(path, key);
      expect(v).toMatchObject({ ok: false, firstBadSeq: 2, count: 1 });
      expect(['STORE_CHAIN_SEQ_GAP', 'STORE_CHAIN_SEQ_ORDER']).toContain(v.code);
    } finally {
      cleanup();
    }
  });

  it('a record re-signed by another key, and one re-signed by the verifier key itself', async () => {
    const { path, key, cleanup } = await filledStore(5);
    try {
      const other = await generateSigningKey();
      const resign = async (k: SigningKey, seq: number) => {
        let r!: ReturnType<typeof decodeRecordJws>;
        tamper(path, (db) => (r = decodeRecordJws(jwsOf(db, seq))));
        const jws = await new CompactSign(canonicalJsonBytes({ ...r, verdict: 'pass' }))
          .setProtectedHeader({ alg: 'ES256', kid: k.kid, typ: 'joinguard-record+jws' })
          .sign(k.privateKey);
        tamper(path, (db) => {
          setJws(db, seq, jws);
          db.prepare("UPDATE records SET verdict = 'pass' WHERE log = 'attest' AND seq = ?").run(seq);
        });
      };
      await resign(other, 3);
      expect((await verify(path, key)).firstBadSeq).toBe(3);
      // Even with the verifier's own key (an insider), rewriting history breaks the next record's prev link.
      await resign(key, 3);
      tamper(path, (db) => db.prepare("UPDATE records SET hash = 'x' WHERE log = 'attest' AND seq = 3").run());
      const v = await verify(path, key);
      expect(v.ok).toBe(false);
      expect([3, 4]).toContain(v.firstBadSeq);
    } finally {
      cleanup();
    }
  });
});

describe('SQLite store: any edit of a stored record is caught', () => {
  it('a changed character in any record payload fails the chain at that seq (property)', async () => {
    const { path, key, cleanup } = await filledStore(6);
    const s = openSqliteStore({ path, signer: { kid: key.kid, privateKey: key.privateKey } });
    const keys = { keys: [key.publicJwk] };
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    try {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 1, max: 6 }), fc.nat(), fc.nat(alphabet.length - 1), async (seq, at, ch) => {
          let original = '';
          tamper(path, (db) => (original = jwsOf(db, seq)));
          const [h, p, sig] = original.split('.') as [string, string, string];
          const i = at % p.length;
          const edited = p.slice(0, i) + alphabet[ch] + p.slice(i + 1);
          tamper(path, (db) => setJws(db, seq, `${h}.${edited}.${sig}`));
          try {
            const v = await s.verifyChain('attest', keys);
            // The signature covers the base64url text, so any other text fails, even one that decodes to the
            // same bytes (an edit of the spare bits of the last character; the next test makes one on purpose).
            if (edited === p) expect(v.ok).toBe(true);
            else expect(v).toMatchObject({ ok: false, firstBadSeq: seq, count: seq - 1 });
          } finally {
            tamper(path, (db) => setJws(db, seq, original));
          }
        }),
        { numRuns: 40 },
      );
      expect((await s.verifyChain('attest', keys)).ok).toBe(true);
    } finally {
      await s.close();
      cleanup();
    }
  });

  it('an edit of only the spare bits of the last base64url character (same bytes) fails the chain too', async () => {
    const { path, key, cleanup } = await filledStore(6);
    const s = openSqliteStore({ path, signer: { kid: key.kid, privateKey: key.privateKey } });
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    try {
      let edits = 0;
      for (let seq = 1; seq <= 6; seq++) {
        let original = '';
        tamper(path, (db) => (original = jwsOf(db, seq)));
        const [h, p, sig] = original.split('.') as [string, string, string];
        if (p.length % 4 === 0) continue; // no spare bits
        const last = alphabet.indexOf(p.at(-1)!);
        const edited = p.slice(0, -1) + alphabet[last ^ 1];
        expect(Buffer.from(edited, 'base64url').equals(Buffer.from(p, 'base64url'))).toBe(true);
        tamper(path, (db) => setJws(db, seq, `${h}.${edited}.${sig}`));
        try {
          expect(await s.verifyChain('attest', { keys: [key.publicJwk] })).toMatchObject({ ok: false, firstBadSeq: seq });
          edits++;
        } finally {
          tamper(path, (db) => setJws(db, seq, original));
        }
      }
      expect(edits).toBeGreaterThan(0);
    } finally {
      await s.close();
      cleanup();
    }
  });
});

describe('SQLite store: group commit', () => {
  it('commits concurrent appends together and refuses only the draft whose id is taken', async () => {
    const { path, key, cleanup } = await filledStore(1);
    const s = openSqliteStore({ path, signer: { kid: key.kid, privateKey: key.privateKey } });
    try {
      const taken = (await s.query({})).records[0]!.record.id;
      const results = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => s.append(draft(i, i === 20 ? { id: taken } : {}))));
      const refused = results.flatMap((r, i) => (r.status === 'rejected' ? [[i, (r.reason as { code?: string }).code]] : []));
      expect(refused).toEqual([[20, 'STORE_DUPLICATE_ID']]);
      expect(await s.verifyChain('attest', { keys: [key.publicJwk] })).toMatchObject({ ok: true, log: 'attest', count: 50 });
    } finally {
      await s.close();
      cleanup();
    }
  });
});
