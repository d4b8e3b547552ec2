import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isJoinguardError } from '../errors.js';

/** The repository root (this file is packages/core/src/testing/index.ts). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

/**
 * Published evidence lives beside the checkout in ../shared/vectors (never copied into the repo).
 * JOINGUARD_VECTORS overrides the location.
 */
export function vectorsDir(): string {
  const dir = process.env.JOINGUARD_VECTORS ?? join(repoRoot, '..', 'shared', 'vectors');
  if (!existsSync(dir)) {
    throw new Error(`test vectors not found at ${dir}: check out ../shared beside the repository or set JOINGUARD_VECTORS`);
  }
  return dir;
}

export function vectorPath(rel: string): string {
  return join(vectorsDir(), rel);
}

export function readVector(rel: string): Uint8Array {
  return new Uint8Array(readFileSync(vectorPath(rel)));
}

export function readVectorText(rel: string): string {
  return readFileSync(vectorPath(rel), 'utf8');
}

/** Decoded fields of every SNP report and TDX quote, from an independent decoder (vectors/EXPECTED_decoded_fields.json). */
export function expectedDecodedFields(): Record<string, Record<string, unknown>> {
  return JSON.parse(readVectorText('EXPECTED_decoded_fields.json')) as Record<string, Record<string, unknown>>;
}

/** A TCP port on 127.0.0.1 that was free a moment ago (for servers that tests and benchmarks start). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A free loopback port whose successor is free too (swtpm's TCP TCTI puts the control channel at port + 1). */
export async function freePortPair(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const p = await freePort();
    if (p > 0 && p < 65535 && (await bindable(p + 1))) return p;
  }
  throw new Error('no pair of consecutive free loopback ports found');
}

/** The code of the JoinguardError `f` throws, or undefined when it returns; any other throw is rethrown. */
export function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (isJoinguardError(e)) return e.code;
    throw e;
  }
  return undefined;
}
