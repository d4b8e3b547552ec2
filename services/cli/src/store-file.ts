import { existsSync } from 'node:fs';
import { inputError } from '@joinguard/core';
import { generateSigningKey } from '@joinguard/protocol';
import { openSqliteStore, type RecordStore } from '@joinguard/store';

/**
 * Opens a verifier's SQLite store file to read its records (`joinguard audit … --store`, `joinguard policy
 * dry-run --store`). The store needs a signer to open; a reader never appends, so a throw-away key serves.
 */
export async function openStoreFile(path: string): Promise<RecordStore> {
  if (!existsSync(path)) throw inputError('INPUT_NOT_FOUND', `store file ${path} does not exist`, { path });
  const throwaway = await generateSigningKey('ES256');
  return openSqliteStore({ path, signer: { kid: throwaway.kid, privateKey: throwaway.privateKey } });
}
