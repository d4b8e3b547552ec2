import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { compactDecrypt, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { JoinguardError, newKeyPair } from '@joinguard/core';
import { deriveDiskKey, loadMasterSecret, sealToTeeKey, checkTeeKey } from '../src/keybroker.js';

const master = new Uint8Array(randomBytes(32));
const ctx = { clusterId: 'c1', machine: 'm-0', name: 'worker-0.example', epoch: 0 };

describe('disk-key derivation', () => {
  it('is deterministic and 32 bytes', () => {
    const a = deriveDiskKey(master, ctx);
    expect(a.length).toBe(32);
    expect(Buffer.from(deriveDiskKey(master, ctx))).toEqual(Buffer.from(a));
  });

  it('gives a different key when any input differs, including shifted boundaries', () => {
    const base = Buffer.from(deriveDiskKey(master, ctx)).toString('hex');
    const variants = [
      { ...ctx, clusterId: 'c2' },
      { ...ctx, machine: 'm-1' },
      { ...ctx, name: 'worker-1.example' },
      { ...ctx, epoch: 1 },
      { ...ctx, machine: 'm-0w', name: 'orker-0.example' },
    ];
    const keys = variants.map((v) => Buffer.from(deriveDiskKey(master, v)).toString('hex'));
    expect(new Set([base, ...keys]).size).toBe(variants.length + 1);
    expect(Buffer.from(deriveDiskKey(new Uint8Array(randomBytes(32)), ctx)).toString('hex')).not.toBe(base);
  });

  it('never collides across (machine, name) splits', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), fc.nat({ max: 8 }), (m, n, cut) => {
        const joined = m + n;
        const c = Math.min(cut, joined.length);
        const m2 = joined.slice(0, c);
        const n2 = joined.slice(c);
        fc.pre(m2 !== m);
        const k1 = Buffer.from(deriveDiskKey(master, { ...ctx, machine: m, name: n })).toString('hex');
        const k2 = Buffer.from(deriveDiskKey(master, { ...ctx, machine: m2, name: n2 })).toString('hex');
        expect(k1).not.toBe(k2);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses a short master secret and a bad epoch', () => {
    expect(() => deriveDiskKey(new Uint8Array(16), ctx)).toThrow(JoinguardError);
    expect(() => deriveDiskKey(master, { ...ctx, epoch: -1 })).toThrow(/epoch/);
  });
});

describe('master secret file', () => {
  it('is read only with owner-only permissions', () => {
    const dir = mkdtempSync(join(tmpdir(), 'jg-master-'));
    const f = join(dir, 'master.key');
    writeFileSync(f, Buffer.from(master).toString('hex'));
    chmodSync(f, 0o644);
    expect(() => loadMasterSecret(f)).toThrow(/0600/);
    chmodSync(f, 0o600);
    expect(Buffer.from(loadMasterSecret(f))).toEqual(Buffer.from(master));
  });
});

describe('sealing to the TEE key', () => {
  it('produces a JWE only the TEE key holder opens, for P-256 and X25519', async () => {
    for (const crv of ['P-256', 'X25519'] as const) {
      const spec = crv === 'P-256' ? ({ type: 'ec', namedCurve: 'P-256' } as const) : ({ type: 'x25519' } as const);
      const { publicKey, privateKey } = newKeyPair(spec);
      const jwk = publicKey.export({ format: 'jwk' });
      const secret = deriveDiskKey(master, ctx);
      const jwe = await sealToTeeKey(secret, jwk, { node: ctx.name, epoch: 0 });
      const header = decodeProtectedHeader(jwe);
      expect(header).toMatchObject({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', 'joinguard.node': ctx.name });
      const { plaintext } = await compactDecrypt(jwe, privateKey);
      expect(Buffer.from(plaintext)).toEqual(Buffer.from(secret));
      const other = newKeyPair(spec);
      await expect(compactDecrypt(jwe, other.privateKey)).rejects.toThrow();
    }
  });

  it('refuses private, symmetric and odd keys', async () => {
    const priv = newKeyPair({ type: 'ec', namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
    expect(() => checkTeeKey(priv)).toThrow(/private/);
    expect(() => checkTeeKey({ kty: 'oct', k: 'AAAA' })).toThrow(JoinguardError);
    expect(() => checkTeeKey({ kty: 'EC', crv: 'P-384', x: 'a', y: 'b' })).toThrow(JoinguardError);
    await expect(sealToTeeKey(master, { kty: 'EC', crv: 'P-256', x: 'AAAA', y: 'AAAA' }, { node: 'n', epoch: 0 })).rejects.toMatchObject({ code: 'KEYS_BAD_TEE_KEY' });
  });
});
