import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isJoinguardError } from '@joinguard/core';
import { generateSigningKey } from '@joinguard/protocol';
import { openSqliteStore } from '../src/index.js';
import { makeNodeState } from '../src/node-state.js';

// The AK a node is pinned to (tpm.pinAk) is compared with the digest its evidence proves, in lowercase hex:
// both backends store it through makeNodeState, which refuses any other spelling.
describe('node state: the pinned AK', () => {
  const pin = { pinnedAkSha256: 'a1'.repeat(32), pinnedAkAt: '2026-11-23T10:00:00.000Z', pinnedAkRecordId: 'rec-1' };
  const code = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return isJoinguardError(e) ? e.code : String(e);
    }
    return undefined;
  };

  it('is kept as given', () => {
    expect(makeNodeState('worker-0', { revoked: false, ...pin })).toEqual({ name: 'worker-0', revoked: false, ...pin });
  });

  it('refuses a digest that is not lowercase hex SHA-256, and a pin time that is not RFC 3339', () => {
    for (const bad of ['A1'.repeat(32), 'a1'.repeat(31), 'zz'.repeat(32), 42]) {
      expect(code(() => makeNodeState('worker-0', { revoked: false, pinnedAkSha256: bad as never }))).toBe('STORE_BAD_NODE_STATE');
    }
    expect(code(() => makeNodeState('worker-0', { revoked: false, pinnedAkAt: 'yesterday' }))).toBe('STORE_BAD_NODE_STATE');
  });

  it('survives a compare-and-set and a reopen (SQLite)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'joinguard-pin-'));
    const key = await generateSigningKey();
    const signer = { kid: key.kid, privateKey: key.privateKey };
    try {
      const s = openSqliteStore({ path: join(dir, 'records.db'), signer });
      await s.updateNode('worker-0', (cur) => ({ ...(cur ?? { revoked: false }), ...pin }));
      await s.updateNode('worker-0', (cur) => ({ ...cur!, lastVerdict: 'pass' }));
      await s.close();
      const again = openSqliteStore({ path: join(dir, 'records.db'), signer });
      expect(await again.getNode('worker-0')).toEqual({ name: 'worker-0', revoked: false, lastVerdict: 'pass', ...pin });
      await again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
