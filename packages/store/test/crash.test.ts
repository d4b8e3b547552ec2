import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKey } from '@joinguard/protocol';
import type { SigningKey } from '@joinguard/protocol';
import { openJetStreamStore, openSqliteStore } from '../src/index.js';
import { appendThenKill } from './crash.js';
import { startNatsServer } from './nats.js';
import type { NatsServer } from './nats.js';

// Crash tests live in their own file (each spawns child processes) so that they run beside the other suites.

async function verify(path: string, key: SigningKey) {
  const s = openSqliteStore({ path, signer: { kid: key.kid, privateKey: key.privateKey } });
  try {
    return await s.verifyChain('attest', { keys: [key.publicJwk] });
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
  it('kill -9 of an appending process never leaves a torn record; every acknowledged record survives', async () => {
    const names = { stream: 'JG_CRASH', subjectPrefix: 'jg.crash.records', nonceBucket: 'jg-crash-nonces', nodeBucket: 'jg-crash-nodes', indexBucket: 'jg-crash-ids' };
    const key: SigningKey = await generateSigningKey();
    let acknowledged = 0;
    for (let round = 0; round < 2; round++) {
      acknowledged = await appendThenKill({ backend: 'jetstream', target: server.url, log: 'attest', key, minAppends: 40 + round * 17, names: names as Record<string, string> });
      const s = await openJetStreamStore({ servers: server.url, ...names, signer: { kid: key.kid, privateKey: key.privateKey } });
      try {
        const v = await s.verifyChain('attest', { keys: [key.publicJwk] });
        expect(v.ok, v.reason).toBe(true);
        expect(v.count).toBeGreaterThanOrEqual(acknowledged);
      } finally {
        await s.close();
      }
    }
  });
});
