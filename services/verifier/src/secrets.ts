import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { JWK } from 'jose';
import { exportJWK } from 'jose';
import { inputError } from '@joinguard/core';
import {
  activeKey,
  emptyKeyRing,
  generateSigningKey,
  publishedJwks,
  allKeys,
  rotateKey,
  signingKeyFromJwk,
  type KeyRing,
  type ResultAlgorithm,
  type SigningKey,
} from '@joinguard/protocol';
import type { JSONWebKeySet } from 'jose';

/** Writes a file atomically (temp file, fsync by writeFileSync, rename) with owner-only permissions. */
export function writePrivateFile(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(tmp, data, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
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

/**
 * The verifier's signing keys: `keyring.json` (public keys with activation/retirement times) and one private
 * JWK file per key (`<kid>.jwk`, 0600). The newest key signs results and records; retired keys stay
 * published until their results expire, and every key stays in the ring for record verification.
 * Replicas share the directory (a Kubernetes Secret in production).
 */
export class SigningKeys {
  private constructor(
    readonly dir: string,
    private ring: KeyRing,
    private current: SigningKey,
    private readonly resultTtlSec: number,
  ) {}

  static async open(opts: { dir: string; alg: ResultAlgorithm; rotateDays: number; resultTtlSec: number; now: Date }): Promise<SigningKeys> {
    mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
    const ringPath = join(opts.dir, 'keyring.json');
    let ring: KeyRing = emptyKeyRing();
    if (existsSync(ringPath)) {
      try {
        ring = JSON.parse(readFileSync(ringPath, 'utf8')) as KeyRing;
      } catch (e) {
        throw inputError('KEYS_RING_INVALID', `signing key ring ${ringPath} cannot be read: ${(e as Error).message}`, { path: ringPath });
      }
    }
    const keys = new SigningKeys(opts.dir, ring, undefined as unknown as SigningKey, opts.resultTtlSec);
    const active = activeKey(ring);
    const ageDays = active ? (opts.now.getTime() - Date.parse(active.activatedAt)) / 86_400_000 : Infinity;
    if (!active || ageDays >= opts.rotateDays || !existsSync(join(opts.dir, `${active.jwk.kid}.jwk`))) {
      await keys.rotate(opts.alg, opts.now);
    } else {
      keys.current = await keys.loadPrivate(active.jwk.kid!, opts.alg);
    }
    return keys;
  }

  private async loadPrivate(kid: string, alg: ResultAlgorithm): Promise<SigningKey> {
    const path = join(this.dir, `${kid}.jwk`);
    const mode = statSync(path).mode & 0o777;
    if ((mode & 0o077) !== 0) throw inputError('SECRET_FILE_MODE', `signing key ${path} has mode ${mode.toString(8)}; it must be 0600`, { path });
    return signingKeyFromJwk(JSON.parse(readFileSync(path, 'utf8')) as JWK, alg);
  }

  /** Makes a new active key; the previous one is retired but stays published for one result lifetime. */
  async rotate(alg: ResultAlgorithm, now: Date): Promise<SigningKey> {
    const key = await generateSigningKey(alg);
    const priv = { ...(await exportJWK(key.privateKey)), kid: key.kid, alg };
    writePrivateFile(join(this.dir, `${key.kid}.jwk`), JSON.stringify(priv));
    this.ring = rotateKey(this.ring, key.publicJwk, now, this.resultTtlSec);
    writePrivateFile(join(this.dir, 'keyring.json'), JSON.stringify(this.ring, null, 2));
    this.current = key;
    return key;
  }

  get active(): SigningKey {
    return this.current;
  }

  /** `/.well-known/jwks.json`: keys whose results may still be valid. */
  jwks(now: Date): JSONWebKeySet {
    return publishedJwks(this.ring, now);
  }

  /** Every key ever used, for record verification. */
  allKeys(): JSONWebKeySet {
    return allKeys(this.ring);
  }

  kids(): string[] {
    return readdirSync(this.dir).filter((f) => f.endsWith('.jwk')).map((f) => f.slice(0, -4));
  }
}
