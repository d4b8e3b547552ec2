import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { JoinguardError } from '@joinguard/core';
import { CHALLENGE_NONCE_BYTES, checkChallenge, issueChallenge } from '../src/index.js';

const key = new Uint8Array(randomBytes(32));
const now = new Date('2026-11-23T10:00:00.000Z');

function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return e instanceof JoinguardError ? e.code : `foreign:${String(e)}`;
  }
  return undefined;
}

describe('stateless challenges', () => {
  it('issues nonces that check until they expire', () => {
    const c = issueChallenge(key, now);
    expect(c.nonceBytes.length).toBe(CHALLENGE_NONCE_BYTES);
    expect(c.expiresAt).toBe('2026-11-23T10:05:00.000Z');
    expect(Buffer.from(c.nonce, 'base64url')).toEqual(Buffer.from(c.nonceBytes));
    const ok = checkChallenge(key, c.nonce, new Date(now.getTime() + 299_999));
    expect(ok.expiresAt.toISOString()).toBe(c.expiresAt);
    expect(ok.nonceBytes).toEqual(c.nonceBytes);
    expect(code(() => checkChallenge(key, c.nonce, new Date(now.getTime() + 300_000)))).toBe('PROTOCOL_NONCE_EXPIRED');
  });

  it('has the documented layout: random ‖ expiry ‖ HMAC-SHA256', () => {
    const rnd = new Uint8Array(32).fill(7);
    const c = issueChallenge(key, now, 60_000, () => rnd);
    const b = Buffer.from(c.nonceBytes);
    expect(b.subarray(0, 32)).toEqual(Buffer.from(rnd));
    expect(b.readBigUInt64BE(32)).toBe(BigInt(now.getTime() + 60_000));
    const mac = createHmac('sha256', key).update('joinguard/challenge/v1\0').update(b.subarray(0, 40)).digest();
    expect(b.subarray(40)).toEqual(mac);
  });

  it('refuses a nonce from another key, a flipped bit anywhere and an extended expiry', () => {
    const c = issueChallenge(key, now);
    expect(code(() => checkChallenge(new Uint8Array(randomBytes(32)), c.nonce, now))).toBe('PROTOCOL_NONCE_FORGED');
    for (let i = 0; i < CHALLENGE_NONCE_BYTES; i += 7) {
      const b = Buffer.from(c.nonceBytes);
      b[i]! ^= 0x01;
      expect(code(() => checkChallenge(key, b.toString('base64url'), now)), `byte ${i}`).toBe('PROTOCOL_NONCE_FORGED');
    }
    // An attacker moving the expiry forward must also break the MAC.
    const b = Buffer.from(c.nonceBytes);
    b.writeBigUInt64BE(BigInt(now.getTime() + 86_400_000), 32);
    expect(code(() => checkChallenge(key, b.toString('base64url'), now))).toBe('PROTOCOL_NONCE_FORGED');
  });

  it('accepts nonces of a previous MAC key during rotation', () => {
    const oldKey = new Uint8Array(randomBytes(32));
    const c = issueChallenge(oldKey, now);
    expect(checkChallenge([key, oldKey], c.nonce, now).expiresAt.toISOString()).toBe(c.expiresAt);
    expect(code(() => checkChallenge([key], c.nonce, now))).toBe('PROTOCOL_NONCE_FORGED');
  });

  it('refuses short keys and malformed nonces with typed errors, never a crash', () => {
    expect(code(() => issueChallenge(new Uint8Array(16), now))).toBe('PROTOCOL_CHALLENGE_KEY_TOO_SHORT');
    expect(code(() => issueChallenge(key, now, 0))).toBe('PROTOCOL_CHALLENGE_BAD_TTL');
    expect(code(() => checkChallenge(key, '', now))).toBe('PROTOCOL_NONCE_MALFORMED');
    expect(code(() => checkChallenge(key, '!'.repeat(96), now))).toBe('PROTOCOL_NONCE_MALFORMED');
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        const c = code(() => checkChallenge(key, s, now));
        expect(['PROTOCOL_NONCE_MALFORMED', 'PROTOCOL_NONCE_FORGED']).toContain(c);
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 72, maxLength: 72 }), (b) => {
        expect(code(() => checkChallenge(key, Buffer.from(b).toString('base64url'), now))).toBe('PROTOCOL_NONCE_FORGED');
      }),
      { numRuns: 300 },
    );
  });
});
