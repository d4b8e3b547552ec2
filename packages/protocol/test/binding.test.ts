import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { JoinguardError } from '@joinguard/core';
import { bindingDigest, tpmExtraData } from '../src/index.js';

// An independent canonical form for runtime data with ASCII keys and string leaves: sorted keys, no spaces.
function sortedJson(v: unknown): string {
  if (typeof v !== 'object' || v === null) return JSON.stringify(v);
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${sortedJson(o[k])}`)
    .join(',')}}`;
}

const runtimeData = {
  teeKey: { kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' },
  nodeName: 'worker-0.example.internal',
  purpose: 'join',
  kubeletKeySha256: 'a'.repeat(64),
  machine: 'cluster-abc-worker-0',
};

describe('bindingDigest', () => {
  it('is SHA-512(nonce ‖ SHA-256(JCS(runtimeData))), computed independently', () => {
    const nonce = randomBytes(72);
    const inner = createHash('sha256').update(sortedJson(runtimeData), 'utf8').digest();
    const want = createHash('sha512').update(Buffer.concat([nonce, inner])).digest('hex');
    const d = bindingDigest(new Uint8Array(nonce), runtimeData);
    expect(d.length).toBe(64);
    expect(Buffer.from(d).toString('hex')).toBe(want);
  });

  it('does not depend on key order but does on every value', () => {
    const nonce = new Uint8Array(randomBytes(32));
    const reordered = { purpose: 'join', machine: runtimeData.machine, nodeName: runtimeData.nodeName, kubeletKeySha256: runtimeData.kubeletKeySha256, teeKey: runtimeData.teeKey };
    expect(bindingDigest(nonce, reordered)).toEqual(bindingDigest(nonce, runtimeData));
    expect(bindingDigest(nonce, { ...runtimeData, nodeName: 'worker-1' })).not.toEqual(bindingDigest(nonce, runtimeData));
    const other = new Uint8Array(nonce);
    other[0] ^= 1;
    expect(bindingDigest(other, runtimeData)).not.toEqual(bindingDigest(nonce, runtimeData));
  });

  it('refuses an empty nonce and non-JSON runtime data with typed errors', () => {
    expect(() => bindingDigest(new Uint8Array(0), runtimeData)).toThrow(JoinguardError);
    try {
      bindingDigest(new Uint8Array(8), { x: undefined, y: NaN });
      expect.unreachable();
    } catch (e) {
      expect((e as JoinguardError).code).toBe('PROTOCOL_JCS_INVALID_VALUE');
    }
  });

  it('tpmExtraData is SHA-256(d) and needs 64 bytes', () => {
    const d = bindingDigest(new Uint8Array(randomBytes(32)), runtimeData);
    expect(Buffer.from(tpmExtraData(d)).toString('hex')).toBe(createHash('sha256').update(d).digest('hex'));
    try {
      tpmExtraData(new Uint8Array(32));
      expect.unreachable();
    } catch (e) {
      expect((e as JoinguardError).code).toBe('PROTOCOL_BINDING_BAD_DIGEST');
    }
  });
});
