/**
 * One error type for the whole project. `code` is stable (scripts, records and HTTP clients match on it);
 * `message` is for people; `details` carries the values involved so an operator can act without reading code.
 *
 * `kind` separates two failures the CLI and the services report differently:
 * - `rejected`: the evidence was read and found wanting (bad signature, low TCB, malformed report bytes).
 * - `input`: the caller's request itself is unusable (a file that cannot be read, a missing argument,
 *   a configuration error). The CLI exits 2 for these, 1 for rejections.
 * - `internal`: a fault of ours or of the platform (TPM library missing, I/O failure of the store).
 */
export type ErrorKind = 'rejected' | 'input' | 'internal';

export type ErrorDetails = Record<string, unknown>;

export class JoinguardError extends Error {
  readonly code: string;
  readonly kind: ErrorKind;
  readonly details: ErrorDetails;

  constructor(code: string, message: string, details: ErrorDetails = {}, options: { kind?: ErrorKind; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'JoinguardError';
    this.code = code;
    this.kind = options.kind ?? 'rejected';
    this.details = details;
  }

  /** The form that goes on the wire, into records and into CLI JSON: no stack, no cause chain. */
  toJSON(): { code: string; message: string; details: ErrorDetails } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

export function isJoinguardError(e: unknown): e is JoinguardError {
  return e instanceof JoinguardError;
}

/** Shorthand for an evidence rejection. */
export function reject(code: string, message: string, details?: ErrorDetails): JoinguardError {
  return new JoinguardError(code, message, details, { kind: 'rejected' });
}

/** Shorthand for an unusable request or argument. */
export function inputError(code: string, message: string, details?: ErrorDetails): JoinguardError {
  return new JoinguardError(code, message, details, { kind: 'input' });
}

/**
 * Wraps anything thrown by a library (node:crypto, @peculiar/x509, asn1 parsers) so that no foreign
 * exception escapes a parser or verifier.
 */
export function wrapError(code: string, message: string, cause: unknown, details: ErrorDetails = {}): JoinguardError {
  if (cause instanceof JoinguardError) return cause;
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new JoinguardError(code, `${message}: ${reason}`, details, { kind: 'rejected', cause });
}
