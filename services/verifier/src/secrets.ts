import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, fstatSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { JSONWebKeySet, JWK } from 'jose';
import { inputError, JoinguardError } from '@joinguard/core';
import {
  activeKey,
  allKeys,
  canonicalRing,
  emptyKeyRing,
  extendPublication,
  generateSigningKey,
  mergeKeyRings,
  noteResultLifetime,
  publicationLifetimeSec,
  publishedJwks,
  rotateKey,
  signingKeyFromJwk,
  type KeyRing,
  type ResultAlgorithm,
  type SigningKey,
} from '@joinguard/protocol';

/**
 * Writes a file atomically with owner-only permissions: a new temp file beside it (0600), fsync, rename over
 * the target, fsync of the folder. A reader sees the old or the new content, never a part; a crash leaves at
 * most a stray `*.tmp`.
 */
export function writePrivateFile(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    try {
      writeFileSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    chmodSync(tmp, 0o600);
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // already renamed or never written
    }
    throw e;
  }
  try {
    const dirFd = openSync(dirname(path), 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  } catch {
    // some file systems cannot fsync a folder; the rename is still atomic
  }
}

/**
 * A random secret kept in a file: read when present (refused when group/world readable), created with 32
 * random bytes (hex) on first start otherwise. Used for the challenge MAC key and, in the embedded default,
 * the disk-key master secret.
 */
export function loadOrCreateSecret(path: string, what: string): Uint8Array {
  if (!existsSync(path)) {
    writePrivateFile(path, randomBytes(32).toString('hex') + '\n');
  }
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw inputError('SECRET_FILE_MODE', `${what} ${path} has mode ${mode.toString(8)}; it must be 0600 or stricter`, { path });
  }
  const text = readFileSync(path, 'utf8').trim();
  if (!/^[0-9a-fA-F]{64,}$/.test(text)) throw inputError('SECRET_FILE_INVALID', `${what} ${path} must hold at least 32 bytes as hex`, { path });
  return new Uint8Array(Buffer.from(text, 'hex'));
}

/** Checks the shape of a key ring read from a file. */
export function parseKeyRing(text: string, path: string): KeyRing {
  const bad = (why: string) => inputError('KEYS_RING_INVALID', `signing key ring ${path} cannot be read: ${why}`, { path });
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw bad((e as Error).message);
  }
  if (typeof value !== 'object' || value === null || !Array.isArray((value as KeyRing).keys)) throw bad('expected {"keys": [...]}');
  const kids = new Set<string>();
  for (const [i, k] of (value as KeyRing).keys.entries()) {
    if (typeof k !== 'object' || k === null || typeof k.jwk !== 'object' || k.jwk === null) throw bad(`key ${i} has no jwk`);
    if (typeof k.jwk.kid !== 'string' || k.jwk.kid.length === 0) throw bad(`key ${i} has no kid`);
    if ('d' in k.jwk) throw bad(`key ${k.jwk.kid} holds a private part`);
    if (kids.has(k.jwk.kid)) throw bad(`key ${k.jwk.kid} appears twice`);
    kids.add(k.jwk.kid);
    for (const f of ['activatedAt', 'retiredAt', 'publishUntil'] as const) {
      const v = k[f];
      if ((f === 'activatedAt' || v !== undefined) && (typeof v !== 'string' || Number.isNaN(Date.parse(v)))) throw bad(`key ${k.jwk.kid}: ${f} is not a date`);
    }
    if (k.resultTtlSec !== undefined && (!Number.isSafeInteger(k.resultTtlSec) || k.resultTtlSec < 0)) throw bad(`key ${k.jwk.kid}: resultTtlSec is not a non-negative integer`);
  }
  return value as KeyRing;
}

export interface KeyDirLockOptions {
  /** Longest wait for another process's lock before giving up with KEYS_RING_LOCKED (default 10 s). */
  timeoutMs?: number;
  /** A lock file older than this is left over by a process that died while holding it (default 30 s). */
  staleMs?: number;
}

const sleep = (ms: number) => new Promise<void>((res) => setTimeout(res, ms));

/**
 * Runs `fn` holding `<dir>/keyring.lock`, a file created with O_EXCL: processes sharing a keys folder (replicas,
 * or two starts at once) change the ring one at a time. A lock older than `staleMs` (its holder died) is
 * removed; times here are the real clock's, since they are about processes, not about results.
 */
export async function withKeyDirLock<T>(dir: string, fn: () => Promise<T>, opts: KeyDirLockOptions = {}): Promise<T> {
  const path = join(dir, 'keyring.lock');
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const staleMs = opts.staleMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  let ino: number;
  for (;;) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      try {
        writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname(), at: new Date().toISOString() }));
        ino = fstatSync(fd).ino;
      } finally {
        closeSync(fd);
      }
      break;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EROFS' || code === 'EACCES' || code === 'EPERM') {
        throw new JoinguardError('KEYS_DIR_READ_ONLY', `the signing key folder ${dir} is read-only (${code})`, { path }, { kind: 'input', cause: e });
      }
      if (code !== 'EEXIST') throw e;
    }
    try {
      const st = statSync(path);
      if (Date.now() - st.mtimeMs > staleMs) {
        // Remove it only if it is still the same stale file (not one another process just created).
        if (statSync(path).ino === st.ino) unlinkSync(path);
        continue;
      }
    } catch {
      continue; // released meanwhile
    }
    if (Date.now() >= deadline) {
      throw new JoinguardError('KEYS_RING_LOCKED', `the signing key folder ${dir} stayed locked (${path}) for ${timeoutMs} ms`, { path }, { kind: 'internal' });
    }
    await sleep(5 + Math.floor(Math.random() * 20));
  }
  try {
    return await fn();
  } finally {
    try {
      if (statSync(path).ino === ino) unlinkSync(path);
    } catch {
      // already gone (removed as stale after we held it too long)
    }
  }
}

export interface SigningKeysOptions {
  dir: string;
  alg: ResultAlgorithm;
  /** The active key is replaced once it is this many days old. */
  rotateDays: number;
  /** Lifetime of the results the keys sign: a retired key stays published this long after its last result. */
  resultTtlSec: number;
  /** The time of opening (default: `clock()`). */
  now?: Date;
  /** The clock of rotation decisions and retirement times (the verifier's injected clock). */
  clock?: () => Date;
  /** How often (real time) signing looks whether another process changed the ring (default 1000 ms). */
  watchMs?: number;
  lock?: KeyDirLockOptions;
  /** Failures of background maintenance (timer, ring watch); they never reach a request. */
  onError?: (e: unknown) => void;
  /** Told after a maintenance run that rotated or adopted a key (for the log). */
  onChange?: (o: MaintenanceOutcome) => void;
}

export interface MaintenanceOutcome {
  /** This process made a new active key. */
  rotated: boolean;
  /** This process switched to an active key another process made. */
  adopted: boolean;
  /** The kid that signs from now on. */
  kid: string;
}

/**
 * The verifier's signing keys: `keyring.json` (public keys with activation/retirement times) and one private
 * JWK file per key (`<kid>.jwk`, 0600). The newest key signs results and records; retired keys stay
 * published until their results expire, and every key stays in the ring for record verification.
 *
 * Replicas share the folder. Every change of the ring (start, rotation, adoption) happens under
 * `keyring.lock` after re-reading the file and merging it with this process's copy, and the file is written
 * atomically (temp file, fsync, rename), so neither a second process nor a crash can lose a key. `maintain()`
 * (at start and on a timer) rotates the active key once it is `rotateDays` old; a process that finds another
 * process's newer key adopts it, and if it signed with its old key after that key's retirement it extends
 * the old key's publication to its last result's expiry.
 */
export class SigningKeys {
  readonly dir: string;
  private ring: KeyRing = emptyKeyRing();
  private current: SigningKey | undefined;
  private ringStamp = '';
  private lastWatch = 0;
  private readonly lastUse = new Map<string, number>();
  private queue: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private readonly clock: () => Date;
  private readonly ringPath: string;

  private constructor(private readonly opts: SigningKeysOptions) {
    this.dir = opts.dir;
    this.clock = opts.clock ?? (() => new Date());
    this.ringPath = join(opts.dir, 'keyring.json');
  }

  static async open(opts: SigningKeysOptions): Promise<SigningKeys> {
    mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
    const keys = new SigningKeys(opts);
    await keys.maintain(opts.now);
    return keys;
  }

  /**
   * Re-reads the ring under the lock, merges it with this process's copy, adopts another process's newer
   * active key, rotates when the active key is `rotateDays` old (or `force`), and writes the ring if it changed.
   */
  maintain(now?: Date, force = false): Promise<MaintenanceOutcome> {
    const run = this.queue.then(async () => {
      const t = now ?? this.clock();
      try {
        return await withKeyDirLock(this.dir, () => this.maintainLocked(t, force, true), this.opts.lock);
      } catch (e) {
        // A folder mounted read-only (a Kubernetes Secret): use what it holds; rotation happens elsewhere.
        if (e instanceof JoinguardError && e.code === 'KEYS_DIR_READ_ONLY') return this.maintainLocked(t, force, false);
        throw e;
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Makes a new active key now; the previous one is retired but stays published for its results' lifetime. */
  async rotate(now?: Date): Promise<SigningKey> {
    await this.maintain(now, true);
    return this.current!;
  }

  /** Runs `maintain()` every `intervalMs` (an unref'd timer: it never keeps the process alive). */
  startMaintenance(intervalMs: number): void {
    this.stopMaintenance();
    this.timer = setInterval(() => {
      this.maintain().catch((e: unknown) => this.opts.onError?.(e));
    }, intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and waits for a maintenance run in progress. */
  async stopMaintenance(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.queue;
  }

  private async maintainLocked(now: Date, force: boolean, writable: boolean): Promise<MaintenanceOutcome> {
    const disk = this.readRingFile();
    let ring = mergeKeyRings(disk ?? emptyKeyRing(), this.ring, now, this.opts.resultTtlSec);
    const previous = this.current;
    let adopted = false;
    let rotated = false;
    const active = activeKey(ring);
    if (active && active.jwk.kid !== this.current?.kid && existsSync(join(this.dir, `${active.jwk.kid}.jwk`))) {
      this.current = await this.loadPrivate(active.jwk.kid!);
      adopted = previous !== undefined;
    }
    const ageDays = active ? (now.getTime() - Date.parse(active.activatedAt)) / 86_400_000 : Infinity;
    const due = force || !active || active.jwk.kid !== this.current?.kid || ageDays >= this.opts.rotateDays;
    if (!writable) {
      if (!this.current || active?.jwk.kid !== this.current.kid) {
        throw inputError('KEYS_DIR_READ_ONLY', `the signing key folder ${this.dir} is read-only and holds no usable active key`, { dir: this.dir });
      }
      if (due) this.opts.onError?.(inputError('KEYS_ROTATION_DUE', `signing key ${this.current.kid} is due for rotation, but ${this.dir} is read-only: rotate it where the folder is written`, { kid: this.current.kid }));
      return this.settle(ring, false, adopted);
    }
    if (due) {
      const { privateJwk, ...key } = await generateSigningKey(this.opts.alg);
      writePrivateFile(join(this.dir, `${key.kid}.jwk`), JSON.stringify(privateJwk));
      ring = canonicalRing(rotateKey(ring, key.publicJwk, now, this.opts.resultTtlSec));
      this.current = key;
      rotated = true;
      adopted = false;
    } else {
      ring = noteResultLifetime(ring, active.jwk.kid!, this.opts.resultTtlSec);
    }
    if (previous && previous.kid !== this.current!.kid) {
      // Read after the switch: nothing signs with `previous` any more. Results it signed after its retirement
      // (while this process had not yet seen another's rotation, or while the new key was being made) keep
      // it published until they expire.
      const used = this.lastUse.get(previous.kid);
      const entry = ring.keys.find((k) => k.jwk.kid === previous.kid);
      if (used !== undefined && entry?.retiredAt !== undefined && used > Date.parse(entry.retiredAt)) {
        ring = extendPublication(ring, previous.kid, new Date(used + publicationLifetimeSec(entry, this.opts.resultTtlSec) * 1000));
      }
    }
    if (!disk || JSON.stringify(ring) !== JSON.stringify(canonicalRing(disk))) {
      writePrivateFile(this.ringPath, JSON.stringify(ring, null, 2));
    }
    return this.settle(ring, rotated, adopted);
  }

  /** Takes `ring` as this process's view (as of the file's current stamp) and reports the outcome of a maintenance run. */
  private settle(ring: KeyRing, rotated: boolean, adopted: boolean): MaintenanceOutcome {
    this.ring = ring;
    this.ringStamp = this.stampOf();
    const outcome = { rotated, adopted, kid: this.current!.kid };
    if (rotated || adopted) this.opts.onChange?.(outcome);
    return outcome;
  }

  private stampOf(): string {
    try {
      const st = statSync(this.ringPath);
      return `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      return '';
    }
  }

  private readRingFile(): KeyRing | undefined {
    if (!existsSync(this.ringPath)) return undefined;
    return parseKeyRing(readFileSync(this.ringPath, 'utf8'), this.ringPath);
  }

  /**
   * Takes in what another process wrote to the ring (its rotation, or its extension of a publication) without
   * waiting for the lock: reading is safe since the file is replaced by rename. A new active key elsewhere
   * starts `maintain()` in the background, to adopt it.
   */
  private syncRing(): void {
    const stamp = this.stampOf();
    if (stamp === this.ringStamp || stamp === '') return;
    try {
      const disk = parseKeyRing(readFileSync(this.ringPath, 'utf8'), this.ringPath);
      this.ring = mergeKeyRings(disk, this.ring, this.clock(), this.opts.resultTtlSec);
      this.ringStamp = stamp;
    } catch (e) {
      this.opts.onError?.(e);
      return;
    }
    if (activeKey(this.ring)?.jwk.kid !== this.current?.kid) {
      this.maintain().catch((e: unknown) => this.opts.onError?.(e));
    }
  }

  private async loadPrivate(kid: string): Promise<SigningKey> {
    const path = join(this.dir, `${kid}.jwk`);
    const mode = statSync(path).mode & 0o777;
    if ((mode & 0o077) !== 0) throw inputError('SECRET_FILE_MODE', `signing key ${path} has mode ${mode.toString(8)}; it must be 0600`, { path });
    return signingKeyFromJwk(JSON.parse(readFileSync(path, 'utf8')) as JWK, this.opts.alg);
  }

  /** The key that signs now. Each use is remembered (see `maintain`), and about once a second the ring file is looked at. */
  get active(): SigningKey {
    const key = this.current!;
    this.lastUse.set(key.kid, this.clock().getTime());
    const t = performance.now();
    if (t - this.lastWatch >= (this.opts.watchMs ?? 1000)) {
      this.lastWatch = t;
      this.syncRing();
    }
    return key;
  }

  /** `/.well-known/jwks.json`: keys whose results may still be valid. */
  jwks(now: Date): JSONWebKeySet {
    this.syncRing();
    return publishedJwks(this.ring, now);
  }

  /** Every key ever used, for record verification. */
  allKeys(): JSONWebKeySet {
    this.syncRing();
    return allKeys(this.ring);
  }

  kids(): string[] {
    return readdirSync(this.dir).filter((f) => f.endsWith('.jwk')).map((f) => f.slice(0, -4));
  }
}
