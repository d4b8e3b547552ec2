import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

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
