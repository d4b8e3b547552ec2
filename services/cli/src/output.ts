import { CommanderError } from 'commander';
import { JoinguardError, isJoinguardError, inputError } from '@joinguard/core';

/**
 * Exit codes of the offline CLI contract (DESIGN.md): 0 verified, 1 evidence rejected (the JSON carries
 * error.code), 2 unusable input or arguments (a message on stderr, never a stack trace).
 */
export const EXIT_OK = 0;
export const EXIT_REJECTED = 1;
export const EXIT_USAGE = 2;

export interface OutputOptions {
  json?: boolean;
}

export function writeJson(value: unknown): void {
  writeOut(JSON.stringify(value, jsonReplacer, 2) + '\n');
}

/** Whether stdout's reader went away (EPIPE): what is left to print has nobody to read it. */
let stdoutClosed = false;

/** Text for stdout, unless its reader is gone. */
export function writeOut(text: string): void {
  if (!stdoutClosed) process.stdout.write(text);
}

/**
 * A reader that stops reading (`joinguard audit list --json | head -c 10`) closes stdout under us, and Node
 * reports it as an 'error' event that, unhandled, ends the process with a stack trace and exit 1, the code the
 * contract keeps for rejected evidence. It is nobody's failure: printing stops and the process ends quietly
 * with the exit code of what the command found (0 for a listing, or a verification that passed).
 *
 * Any other write error (a full disk under `> report.json`: ENOSPC) loses output somebody wanted: one line on
 * stderr, and the process must not end 0 as if it had printed. The exit code of a rejection (1) or of unusable
 * input (2) is kept; a command that succeeded ends 2. That is settled at exit, since the error comes after the
 * write and the command may set its exit code after it.
 */
export function quietOnClosedStdout(): void {
  let lost = false;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    const wasClosed = stdoutClosed;
    stdoutClosed = true;
    if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED' || wasClosed) return;
    lost = true;
    process.stderr.write(`joinguard: cannot write to stdout: ${e.message}\n`);
  });
  process.once('exit', () => {
    if (lost && !process.exitCode) process.exitCode = EXIT_USAGE;
  });
}

/** bigint and byte arrays never reach JSON raw: bigint as decimal string, bytes as hex. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  return value;
}

/**
 * Runs a command body and maps its outcome to the exit-code contract. The body returns what to print
 * on success; a JoinguardError of kind `rejected` becomes exit 1 with `{verified:false,error}`, anything
 * of kind `input` exits 2 with a one-line message, and an unexpected fault exits 2 without a stack trace
 * unless JOINGUARD_DEBUG is set.
 */
export async function runCommand(opts: OutputOptions, body: () => Promise<{ json: unknown; text: string }> | { json: unknown; text: string }): Promise<void> {
  try {
    const out = await body();
    if (opts.json) writeJson(out.json);
    else writeOut(out.text.endsWith('\n') ? out.text : out.text + '\n');
    process.exitCode = EXIT_OK;
  } catch (e) {
    process.exitCode = reportFailure(opts, e);
  }
}

export function reportFailure(opts: OutputOptions, e: unknown): number {
  if (isJoinguardError(e) && e.kind === 'rejected') {
    if (opts.json) writeJson({ verified: false, error: e.toJSON() });
    else process.stderr.write(`rejected: ${e.code}: ${e.message}\n`);
    return EXIT_REJECTED;
  }
  const err: JoinguardError = isJoinguardError(e)
    ? e
    : new JoinguardError('INTERNAL', e instanceof Error ? e.message : String(e), {}, { kind: 'internal', cause: e });
  process.stderr.write(`joinguard: ${err.code}: ${err.message}\n`);
  if (process.env.JOINGUARD_DEBUG && e instanceof Error && e.stack) process.stderr.write(e.stack + '\n');
  if (opts.json && err.kind !== 'internal') writeJson({ verified: false, error: err.toJSON() });
  return EXIT_USAGE;
}

/** A usage problem found by a command itself (conflicting flags, a value that cannot be parsed). */
export function usage(message: string, details?: Record<string, unknown>): JoinguardError {
  return inputError('CLI_USAGE', message, details);
}

export function isCommanderExit(e: unknown): e is CommanderError {
  return e instanceof CommanderError;
}
