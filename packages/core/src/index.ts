export { JoinguardError, isJoinguardError, reject, inputError, wrapError } from './errors.js';
export type { ErrorKind, ErrorDetails } from './errors.js';
export { ByteReader, toHex, fromHex, isAllZero, equalBytes, leToBigInt, bigIntToBe, concatBytes } from './bytes.js';
export { readInputFile, decodeBinaryOrHex, MAX_INPUT_BYTES } from './input.js';
export { INTEL_TCB_STATUSES } from './tcb.js';
export type { IntelTcbStatus } from './tcb.js';
export { parseRetryAfter } from './http.js';
export { digest } from './hash.js';
export { BoundedMap } from './bounded.js';
