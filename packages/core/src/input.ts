import { readFileSync, statSync } from 'node:fs';
import { inputError } from './errors.js';
import { fromHex } from './bytes.js';

/** Largest evidence file the tools will read; real reports, quotes and event logs are far smaller. */
export const MAX_INPUT_BYTES = 16 * 1024 * 1024;

/** Reads a file for verification, refusing missing, non-regular or oversized files with an input error. */
export function readInputFile(path: string, what: string, maxBytes = MAX_INPUT_BYTES): Uint8Array {
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw inputError('INPUT_NOT_A_FILE', `${what} ${path} is not a regular file`, { path });
    size = st.size;
  } catch (e) {
    if (e instanceof Error && 'code' in e && (e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw inputError('INPUT_NOT_FOUND', `${what} ${path} does not exist`, { path });
    }
    if (e instanceof Error && e.name === 'JoinguardError') throw e;
    throw inputError('INPUT_UNREADABLE', `${what} ${path} cannot be read: ${(e as Error).message}`, { path });
  }
  if (size > maxBytes) {
    throw inputError('INPUT_TOO_LARGE', `${what} ${path} is ${size} bytes, more than the ${maxBytes} allowed`, { path, size, maxBytes });
  }
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    throw inputError('INPUT_UNREADABLE', `${what} ${path} cannot be read: ${(e as Error).message}`, { path });
  }
}

/**
 * Binary evidence may be given raw or as hex text (whitespace allowed, optional 0x prefix). A file whose
 * every byte is a hex digit or white space is decoded; anything else is taken as raw bytes. (A raw
 * report or quote of hundreds of bytes that is by chance all ASCII hex digits does not occur.)
 */
export function decodeBinaryOrHex(data: Uint8Array): Uint8Array {
  if (data.length < 2) return data;
  const text = Buffer.from(data).toString('latin1').replace(/\s+/g, '');
  if (!/^(0[xX])?[0-9a-fA-F]+$/.test(text)) return data;
  return fromHex(text) ?? data;
}
