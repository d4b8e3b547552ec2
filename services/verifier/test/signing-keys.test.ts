import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { signResult, verifyResult, type AttestationResultClaims, type KeyRing } from '@joinguard/protocol';
import { loadConfig } from '../src/config.js';
import { extendPublication, mergeKeyRings } from '@joinguard/protocol';
import { SigningKeys, withKeyDirLock, writePrivateFile } from '../src/secrets.js';

const here = dirname(fileURLToPath(import.meta.url));
const DAY = 86_400_000;
const t0 = new Date('2026-03-01T00:00:00Z');
const at = (sec: number) => new Date(t0.getTime() + sec * 1000);
const tmp = (p: string) => mkdtempSync(join(tmpdir(), `jg-keys-${p}-`));
const readRing = (dir: string) => JSON.parse(readFileSync(join(dir, 'keyring.json'), 'utf8')) as KeyRing;

function openKeys(dir: string, clock: { now: Date }, extra: Partial<Parameters<typeof SigningKeys.open>[0]> = {}) {
  return SigningKeys.open({ dir, alg: 'ES256', rotateDays: 30, resultTtlSec: 900, clock: () => clock.now, watchMs: 0, ...extra });
}

/** Runs `n` processes that open the keys in `dir` at the same moment; returns the kid each signs with. */
async function startTogether(dir: string, n: number): Promise<string[]> {
  const startAt = Date.now() + 1500;
  const runs = Array.from({ length: n }, () => new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'fixtures', 'open-keys.ts'), dir, String(startAt)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve((JSON.parse(out) as { kid: string }).kid) : reject(new Error(`child exited ${code}: ${err}`))));
  }));
  return Promise.all(runs);
}

/** Every private key file has its public key in the ring, exactly one key is active, no lock or temp file is left. */
function expectConsistent(dir: string): KeyRing {
  const ring = readRing(dir);
  const inRing = new Set(ring.keys.map((k) => k.jwk.kid));
  const files = readdirSync(dir);
  for (const f of files.filter((x) => x.endsWith('.jwk'))) expect(inRing.has(f.slice(0, -4))).toBe(true);
  expect(ring.keys.filter((k) => k.retiredAt === undefined)).toHaveLength(1);
  expect(files.filter((f) => f.endsWith('.tmp') || f === 'keyring.lock')).toEqual([]);
  return ring;
}

describe('key files', () => {
  it('writes atomically with mode 0600 and leaves no temp file', () => {
    const dir = tmp('write');
    const p = join(dir, 'sub', 'secret.json');
    writePrivateFile(p, 'one');
    writePrivateFile(p, 'two');
    expect(readFileSync(p, 'utf8')).toBe('two');
    expect(statSync(p).mode & 0o777).toBe(0o600);
    expect(readdirSync(join(dir, 'sub'))).toEqual(['secret.json']);
  });

  it('creates the ring and private keys 0600, and reopens the same active key', async () => {
    const dir = tmp('open');
    const clock = { now: t0 };
    const a = await openKeys(dir, clock);
    const ring = expectConsistent(dir);
    expect(ring.keys).toHaveLength(1);
    expect(ring.keys[0]).toMatchObject({ activatedAt: t0.toISOString(), resultTtlSec: 900 });
    expect(statSync(join(dir, `${a.active.kid}.jwk`)).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'keyring.json')).mode & 0o777).toBe(0o600);
    clock.now = at(3600);
    const b = await openKeys(dir, clock);
    expect(b.active.kid).toBe(a.active.kid);
    expect(readRing(dir).keys).toHaveLength(1);
  });
});

describe('key ring merge', () => {
  const jwk = (kid: string) => ({ kty: 'EC', crv: 'P-256', x: 'x', y: 'y', kid });
  it('loses no key, keeps the earliest retirement and the latest end of publication', () => {
    const a: KeyRing = { keys: [{ jwk: jwk('k1'), activatedAt: at(0).toISOString(), retiredAt: at(100).toISOString(), publishUntil: at(1000).toISOString() }, { jwk: jwk('k2'), activatedAt: at(100).toISOString() }] };
    const b: KeyRing = { keys: [{ jwk: jwk('k1'), activatedAt: at(0).toISOString(), retiredAt: at(100).toISOString(), publishUntil: at(1500).toISOString() }, { jwk: jwk('k0'), activatedAt: at(-100).toISOString(), retiredAt: at(0).toISOString(), publishUntil: at(900).toISOString() }] };
    const m = mergeKeyRings(a, b, at(200), 900);
    expect(m.keys.map((k) => k.jwk.kid)).toEqual(['k0', 'k1', 'k2']);
    expect(m.keys[1]).toMatchObject({ retiredAt: at(100).toISOString(), publishUntil: at(1500).toISOString() });
    expect(m.keys[2]!.retiredAt).toBeUndefined();
    expect(extendPublication(m, 'k1', at(1200)).keys[1]!.publishUntil).toBe(at(1500).toISOString());
    expect(extendPublication(m, 'k1', at(2000)).keys[1]!.publishUntil).toBe(at(2000).toISOString());
    // An active key is never given an end of publication.
    expect(extendPublication(m, 'k2', at(2000)).keys[2]!.publishUntil).toBeUndefined();
  });

  it('leaves one active key when two processes each made one, keeping the other published', () => {
    const a: KeyRing = { keys: [{ jwk: jwk('kA'), activatedAt: at(10).toISOString() }] };
    const b: KeyRing = { keys: [{ jwk: jwk('kB'), activatedAt: at(20).toISOString() }] };
    const m = mergeKeyRings(a, b, at(60), 900);
    expect(m.keys.map((k) => [k.jwk.kid, k.retiredAt, k.publishUntil])).toEqual([
      ['kA', at(20).toISOString(), at(960).toISOString()],
      ['kB', undefined, undefined],
    ]);
  });
});

describe('rotation and processes sharing a keys folder', () => {
  it('rotates a key older than rotateDays at open and on maintain(), publishing the old one for the result lifetime', async () => {
    const dir = tmp('rotate');
    const clock = { now: t0 };
    const keys = await openKeys(dir, clock, { rotateDays: 1 });
    const k1 = keys.active.kid;
    clock.now = new Date(t0.getTime() + DAY - 1000);
    expect((await keys.maintain()).rotated).toBe(false);
    clock.now = new Date(t0.getTime() + DAY);
    expect(await keys.maintain()).toMatchObject({ rotated: true, adopted: false });
    const k2 = keys.active.kid;
    expect(k2).not.toBe(k1);
    const old = readRing(dir).keys.find((k) => k.jwk.kid === k1)!;
    expect(old).toMatchObject({ retiredAt: clock.now.toISOString(), publishUntil: new Date(clock.now.getTime() + 900_000).toISOString() });
    // A restart after another period rotates at open (the previous behaviour).
    clock.now = new Date(t0.getTime() + 2 * DAY + 1000);
    const again = await openKeys(dir, clock, { rotateDays: 1 });
    expect(again.active.kid).not.toBe(k2);
    expect(expectConsistent(dir).keys).toHaveLength(3);
  });

  it('keeps a retired key published for the longest lifetime it signed with, even if the setting shrinks', async () => {
    const dir = tmp('ttl');
    const clock = { now: t0 };
    const k1 = (await openKeys(dir, clock, { resultTtlSec: 3600 })).active.kid;
    const shorter = await openKeys(dir, clock, { resultTtlSec: 300 });
    clock.now = at(600);
    await shorter.rotate();
    expect(readRing(dir).keys.find((k) => k.jwk.kid === k1)!.publishUntil).toBe(at(600 + 3600).toISOString());
  });

  it('two processes starting at once on an empty folder end up with one key, used by both', async () => {
    const dir = tmp('race-empty');
    const kids = await startTogether(dir, 3);
    const ring = expectConsistent(dir);
    expect(ring.keys).toHaveLength(1);
    expect(new Set(kids)).toEqual(new Set([ring.keys[0]!.jwk.kid]));
  });

  it('processes starting at once on a due key rotate once and lose no key', async () => {
    const dir = tmp('race-due');
    // A ring whose active key is 40 days old (rotateDays is 30 in the child).
    const old = await openKeys(dir, { now: new Date(Date.now() - 40 * DAY) });
    const oldKid = old.active.kid;
    const kids = await startTogether(dir, 4);
    const ring = expectConsistent(dir);
    expect(ring.keys.map((k) => k.jwk.kid)).toContain(oldKid);
    expect(ring.keys).toHaveLength(2);
    const active = ring.keys.find((k) => k.retiredAt === undefined)!.jwk.kid;
    expect(new Set(kids)).toEqual(new Set([active]));
  });

  it('a replica adopts the key another rotated, and extends the old key for results it signed after the retirement', async () => {
    const dir = tmp('replicas');
    const clock = { now: t0 };
    const a = await openKeys(dir, clock);
    const b = await openKeys(dir, clock);
    const k1 = a.active.kid;
    expect(b.active.kid).toBe(k1);

    clock.now = at(100);
    await a.rotate();
    const k2 = a.active.kid;
    // B serves A's new key at once (the ring file is re-read when it changed) ...
    expect(b.jwks(clock.now).keys.map((k) => k.kid).sort()).toEqual([k1, k2].sort());
    // ... and, having signed once more with k1 at 130 s, switches to k2 in the background.
    clock.now = at(130);
    const late = b.active;
    expect(late.kid).toBe(k1);
    const iat = Math.floor(at(130).getTime() / 1000);
    const claims: AttestationResultClaims = {
      sub: 'worker-0', jti: 'r', iat, exp: iat + 900, verdict: 'pass', tee: 'snp', purpose: 'join',
      tcb: { status: 'ok', versions: { bootloader: 3, tee: 0, snp: 8, microcode: 115 } }, measurements: { measurement: 'ab'.repeat(48) },
      bindings: { teeKeyThumbprint: 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs' }, policy: { id: 'workers', digest: 'ef'.repeat(32) },
    };
    const jwt = await signResult(claims, late.privateKey, late.kid);
    await vi.waitFor(() => expect(b.active.kid).toBe(k2), { timeout: 3000, interval: 20 });
    await b.maintain();
    const entry = readRing(dir).keys.find((k) => k.jwk.kid === k1)!;
    expect(entry.retiredAt).toBe(at(100).toISOString());
    expect(entry.publishUntil).toBe(at(130 + 900).toISOString());
    // A, which rotated, sees the extension: at 1010 s (past 100 + 900) k1 is still published and B's result verifies.
    const jwksA = a.jwks(at(1010));
    expect(jwksA.keys.map((k) => k.kid).sort()).toEqual([k1, k2].sort());
    expect((await verifyResult(jwt, jwksA, { now: at(1010) })).jti).toBe('r');
    expect(a.jwks(at(1031)).keys.map((k) => k.kid)).toEqual([k2]);
    expect(a.allKeys().keys.map((k) => k.kid).sort()).toEqual([k1, k2].sort());
  });

  it('puts a deleted ring back from memory instead of losing keys', async () => {
    const dir = tmp('deleted');
    const clock = { now: t0 };
    const keys = await openKeys(dir, clock);
    clock.now = at(10);
    await keys.rotate();
    rmSync(join(dir, 'keyring.json'));
    await keys.maintain();
    expect(expectConsistent(dir).keys).toHaveLength(2);
  });
});

// A folder the verifier cannot write (a mounted Kubernetes Secret): run a child as an unprivileged user.
describe.skipIf(process.getuid?.() !== 0)('a read-only keys folder', () => {
  it('is used as it is: no lock, no write, a due rotation only reported', async () => {
    const dir = tmp('readonly');
    chmodSync(dir, 0o755);
    const keys = await openKeys(dir, { now: new Date(Date.now() - 40 * DAY) });
    for (const f of readdirSync(dir)) chownSync(join(dir, f), 65534, 65534);
    const before = readFileSync(join(dir, 'keyring.json'), 'utf8');
    const child = spawnSync(process.execPath, ['--import', 'tsx', join(here, 'fixtures', 'open-keys.ts'), dir, '0'], { uid: 65534, gid: 65534, encoding: 'utf8', cwd: process.cwd() });
    expect(child.stderr).toBe('');
    expect(JSON.parse(child.stdout)).toEqual({ kid: keys.active.kid, warnings: ['KEYS_ROTATION_DUE'] });
    expect(readFileSync(join(dir, 'keyring.json'), 'utf8')).toBe(before);
    expect(readdirSync(dir).sort()).toEqual(['keyring.json', `${keys.active.kid}.jwk`].sort());
    // An empty read-only folder has no key to use: the start fails.
    const empty = tmp('readonly-empty');
    chmodSync(empty, 0o755);
    const none = spawnSync(process.execPath, ['--import', 'tsx', join(here, 'fixtures', 'open-keys.ts'), empty, '0'], { uid: 65534, gid: 65534, encoding: 'utf8', cwd: process.cwd() });
    expect(none.status).not.toBe(0);
    expect(none.stderr).toContain('KEYS_DIR_READ_ONLY');
  });
});

describe('the keys folder lock', () => {
  it('waits for a held lock and gives up with KEYS_RING_LOCKED', async () => {
    const dir = tmp('lock');
    writeFileSync(join(dir, 'keyring.lock'), '{}');
    await expect(openKeys(dir, { now: t0 }, { lock: { timeoutMs: 150 } })).rejects.toMatchObject({ code: 'KEYS_RING_LOCKED' });
    expect(existsSync(join(dir, 'keyring.lock'))).toBe(true);
  });

  it('removes a stale lock left by a dead process', async () => {
    const dir = tmp('stale');
    writeFileSync(join(dir, 'keyring.lock'), '{}');
    const old = new Date(Date.now() - 60_000);
    utimesSync(join(dir, 'keyring.lock'), old, old);
    await openKeys(dir, { now: t0 });
    expect(existsSync(join(dir, 'keyring.lock'))).toBe(false);
  });

  it('serialises holders', async () => {
    const dir = tmp('serial');
    const order: string[] = [];
    const hold = (name: string) => withKeyDirLock(dir, async () => {
      order.push(`${name}+`);
      await new Promise((r) => setTimeout(r, 30));
      order.push(`${name}-`);
    });
    await Promise.all([hold('a'), hold('b'), hold('c')]);
    for (let i = 0; i < order.length; i += 2) expect(order[i]!.slice(0, 1)).toBe(order[i + 1]!.slice(0, 1));
  });
});

describe('signing settings', () => {
  it('checks signing.checkIntervalSeconds (default hourly)', () => {
    const dir = tmp('config');
    const file = join(dir, 'verifier.yaml');
    writeFileSync(file, 'signing:\n  rotateDays: 0.5\n');
    expect(loadConfig({ file, env: {} }).signing).toMatchObject({ rotateDays: 0.5, checkIntervalSeconds: 3600 });
    writeFileSync(file, 'signing:\n  checkIntervalSeconds: 60\n');
    expect(loadConfig({ file, env: {} }).signing.checkIntervalSeconds).toBe(60);
    writeFileSync(file, 'signing:\n  checkIntervalSeconds: 0\n');
    expect(() => loadConfig({ file, env: {} })).toThrow(/signing\/checkIntervalSeconds/);
  });

  it('resolves trust.snpCollateralDir relative to the file', () => {
    const dir = tmp('config-kds');
    const file = join(dir, 'verifier.yaml');
    writeFileSync(file, 'trust:\n  snpCollateralDir: kds-cache\n');
    expect(loadConfig({ file, env: {} }).trust.snpCollateralDir).toBe(join(dir, 'kds-cache'));
  });
});
