import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKey } from '@joinguard/protocol';
import type { SigningKey } from '@joinguard/protocol';
import { createHash } from 'node:crypto';
import { allRecords, openJetStreamStore, openSqliteStore } from '../src/index.js';
import type { RecordStore } from '../src/index.js';
import { appendThenKill } from './crash.js';
import { startNatsServer } from './nats.js';
import type { NatsServer } from './nats.js';

// Crash tests live in their own file (each spawns child processes) so that they run beside the other suites.

/** The records whose blob (the one their body names) is missing or not what its name says. */
async function recordsWithoutTheirBlob(s: RecordStore): Promise<number[]> {
  const bad: number[] = [];
  for await (const r of allRecords((q) => s.query(q), { log: 'attest', limit: 500 })) {
    const name = r.record.body.blob as string;
    const data = await s.getBlob(name);
    if (data === undefined || createHash('sha256').update(data).digest('hex') !== name) bad.push(r.record.seq);
  }
  return bad;
}

async function verify(path: string, key: SigningKey) {
  const s = openSqliteStore({ path, signer: { kid: key.kid, privateKey: key.privateKey } });
  try {
    return { ...(await s.verifyChain('attest', { keys: [key.publicJwk] })), withoutBlob: await recordsWithoutTheirBlob(s) };
  } finally {
    await s.close();
  }
}

let server: NatsServer;
beforeAll(async () => {
  server = await startNatsServer();
});
afterAll(async () => {
  await server?.stop();
});

describe('SQLite store: crash safety', () => {
  it('kill -9 of an appending process never leaves a torn record; every acknowledged record survives', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'joinguard-sqlite-crash-'));
    const path = join(dir, 'records.db');
    const key = await generateSigningKey();
    try {
      let acknowledged = 0;
      for (let round = 0; round < 2; round++) {
        acknowledged = await appendThenKill({ backend: 'sqlite', target: path, log: 'attest', key, minAppends: 40 + round * 17 });
        const v = await verify(path, key);
        expect(v.ok, v.reason).toBe(true);
        expect(v.count).toBeGreaterThanOrEqual(acknowledged);
        expect(v.withoutBlob).toEqual([]);
      }
      const db = new Database(path, { readonly: true });
      try {
        expect((db.pragma('integrity_check') as { integrity_check: string }[])[0]!.integrity_check).toBe('ok');
      } finally {
        db.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('JetStream store: crash safety', () => {
  // What is killed with -9: the appending process, or the nats-server under it (restarted on the same store
  // directory before the appender is killed too). Either way no acknowledged record or blob may be lost, the
  // chain may not fork, and appends go on on top of it.
  for (const [what, tag, firstAppends, killFirst] of [
    ['an appending process', 'crash', 40, undefined],
    ['the NATS server under an appending process', 'crashsrv', 30, () => server.killAndRestart()],
  ] as const) {
    it(`kill -9 of ${what} never leaves a torn record; every acknowledged record survives`, async () => {
      const names = { stream: `JG_${tag.toUpperCase()}`, subjectPrefix: `jg.${tag}.records`, nonceBucket: `jg-${tag}-nonces`, nodeBucket: `jg-${tag}-nodes`, indexBucket: `jg-${tag}-ids`, blobBucket: `jg-${tag}-blobs` };
      const key: SigningKey = await generateSigningKey();
      for (let round = 0; round < 2; round++) {
        const acknowledged = await appendThenKill({ backend: 'jetstream', target: server.url, log: 'attest', key, minAppends: firstAppends + round * 17, names, ...(killFirst ? { killFirst } : {}) });
        const s = await openJetStreamStore({ servers: server.url, ...names, signer: { kid: key.kid, privateKey: key.privateKey } });
        try {
          const v = await s.verifyChain('attest', { keys: [key.publicJwk] });
          expect(v.ok, v.reason).toBe(true);
          expect(v.count).toBeGreaterThanOrEqual(acknowledged);
          expect(await recordsWithoutTheirBlob(s)).toEqual([]);
          const data = Buffer.from(`after ${what}, round ${round}`);
          const sha256 = createHash('sha256').update(data).digest('hex');
          const next = await s.append({ kind: 'appraisal', log: 'attest', node: 'after-crash', body: { round, blob: sha256 }, blobs: [{ sha256, data }] });
          expect(next.record.seq).toBe(v.count + 1);
        } finally {
          await s.close();
        }
      }
    });
  }
});
