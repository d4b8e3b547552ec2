import { hkdfSync } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { CompactEncrypt, importJWK, type JWK } from 'jose';
import { JoinguardError, inputError, reject } from '@joinguard/core';

/**
 * Disk keys are derived, never stored: HKDF-SHA256(master, salt = cluster id,
 * info = "joinguard/disk/v1" ‖ machine ‖ name ‖ epoch). Each component is length-prefixed in `info` so that
 * ("ab","c") and ("a","bc") can never derive the same key.
 */
export const DISK_KEY_INFO_LABEL = 'joinguard/disk/v1';
export const DISK_KEY_BYTES = 32;

export interface DiskKeyContext {
  clusterId: string;
  machine: string;
  name: string;
  epoch: number;
}

function lengthPrefixed(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

export function deriveDiskKey(master: Uint8Array, ctx: DiskKeyContext): Uint8Array {
  if (master.length < 32) throw inputError('KEYS_MASTER_TOO_SHORT', `the disk-key master secret has ${master.length} bytes; at least 32 are required`);
  if (!Number.isSafeInteger(ctx.epoch) || ctx.epoch < 0) throw inputError('KEYS_BAD_EPOCH', `epoch must be a non-negative integer, got ${ctx.epoch}`);
  const epoch = Buffer.alloc(8);
  epoch.writeBigUInt64BE(BigInt(ctx.epoch));
  const info = Buffer.concat([Buffer.from(DISK_KEY_INFO_LABEL, 'utf8'), lengthPrefixed(ctx.machine), lengthPrefixed(ctx.name), epoch]);
  return new Uint8Array(hkdfSync('sha256', master, Buffer.from(ctx.clusterId, 'utf8'), info, DISK_KEY_BYTES));
}

/**
 * Reads the master secret from a file that only its owner may read (mode 0600 or stricter), as the embedded
 * default keeps it. A group- or world-readable file is refused: a key broker must not start on a secret
 * other local users could have copied.
 */
export function loadMasterSecret(path: string): Uint8Array {
  let mode: number;
  try {
    mode = statSync(path).mode & 0o777;
  } catch (e) {
    throw inputError('KEYS_MASTER_UNREADABLE', `disk-key master secret ${path} cannot be read: ${(e as Error).message}`, { path });
  }
  if ((mode & 0o077) !== 0) {
    throw inputError('KEYS_MASTER_MODE', `disk-key master secret ${path} has mode ${mode.toString(8)}; it must be 0600 or stricter`, { path, mode: mode.toString(8) });
  }
  const raw = readFileSync(path);
  const text = raw.toString('utf8').trim();
  // Stored as base64 or hex text, or raw bytes.
  const decoded = /^[0-9a-fA-F]{64,}$/.test(text) ? Buffer.from(text, 'hex') : /^[A-Za-z0-9+/_-]{43,}={0,2}$/.test(text) ? Buffer.from(text, 'base64') : raw;
  if (decoded.length < 32) throw inputError('KEYS_MASTER_TOO_SHORT', `disk-key master secret ${path} holds ${decoded.length} bytes; at least 32 are required`, { path });
  return new Uint8Array(decoded);
}

/** The TEE key of runtimeData: an ephemeral public JWK, P-256 or X25519, with no private part. */
export function checkTeeKey(jwk: JWK): JWK {
  const isP256 = jwk.kty === 'EC' && jwk.crv === 'P-256' && typeof jwk.x === 'string' && typeof jwk.y === 'string';
  const isX25519 = jwk.kty === 'OKP' && jwk.crv === 'X25519' && typeof jwk.x === 'string';
  if (!isP256 && !isX25519) {
    throw reject('KEYS_BAD_TEE_KEY', 'teeKey must be a public P-256 (EC) or X25519 (OKP) JWK', { kty: jwk.kty, crv: jwk.crv });
  }
  if ('d' in jwk) throw reject('KEYS_BAD_TEE_KEY', 'teeKey carries a private key part (d); only the public key may be sent');
  return isP256 ? { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y } : { kty: 'OKP', crv: 'X25519', x: jwk.x };
}

/** Seals a key to the node's TEE key as a compact JWE (ECDH-ES+A256KW, A256GCM). */
export async function sealToTeeKey(secret: Uint8Array, teeKey: JWK, header: { kid?: string; node: string; epoch: number }): Promise<string> {
  const pub = checkTeeKey(teeKey);
  let key;
  try {
    key = await importJWK(pub, 'ECDH-ES+A256KW');
  } catch (e) {
    throw new JoinguardError('KEYS_BAD_TEE_KEY', `teeKey cannot be imported: ${(e as Error).message}`, {}, { kind: 'rejected' });
  }
  return new CompactEncrypt(secret)
    .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', cty: 'joinguard-disk-key', ...(header.kid ? { kid: header.kid } : {}), 'joinguard.node': header.node, 'joinguard.epoch': header.epoch })
    .encrypt(key);
}
