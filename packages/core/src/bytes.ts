import { reject } from './errors.js';

/**
 * A bounds-checked little-endian reader over hostile bytes. Every read checks the remaining length
 * first and throws a JoinguardError with the caller's truncation code, so parsers never index past
 * the end of a buffer or allocate from an unchecked length.
 */
export class ByteReader {
  readonly buf: Uint8Array;
  private readonly view: DataView;
  offset: number;
  private readonly truncatedCode: string;
  private readonly what: string;

  constructor(buf: Uint8Array, opts: { truncatedCode: string; what: string; offset?: number }) {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.offset = opts.offset ?? 0;
    this.truncatedCode = opts.truncatedCode;
    this.what = opts.what;
  }

  get remaining(): number {
    return this.buf.length - this.offset;
  }

  need(n: number, field: string): void {
    if (!Number.isSafeInteger(n) || n < 0 || n > this.remaining) {
      throw reject(this.truncatedCode, `${this.what} is truncated: ${field} needs ${n} bytes at offset ${this.offset}, ${this.remaining} remain`, {
        field,
        offset: this.offset,
        needed: n,
        remaining: this.remaining,
      });
    }
  }

  u8(field: string): number {
    this.need(1, field);
    return this.view.getUint8(this.offset++);
  }

  u16le(field: string): number {
    this.need(2, field);
    const v = this.view.getUint16(this.offset, true);
    this.offset += 2;
    return v;
  }

  u32le(field: string): number {
    this.need(4, field);
    const v = this.view.getUint32(this.offset, true);
    this.offset += 4;
    return v;
  }

  u64le(field: string): bigint {
    this.need(8, field);
    const v = this.view.getBigUint64(this.offset, true);
    this.offset += 8;
    return v;
  }

  u16be(field: string): number {
    this.need(2, field);
    const v = this.view.getUint16(this.offset, false);
    this.offset += 2;
    return v;
  }

  u32be(field: string): number {
    this.need(4, field);
    const v = this.view.getUint32(this.offset, false);
    this.offset += 4;
    return v;
  }

  u64be(field: string): bigint {
    this.need(8, field);
    const v = this.view.getBigUint64(this.offset, false);
    this.offset += 8;
    return v;
  }

  /** A view (not a copy) of the next n bytes. */
  bytes(n: number, field: string): Uint8Array {
    this.need(n, field);
    const out = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  skip(n: number, field: string): void {
    this.need(n, field);
    this.offset += n;
  }
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;

/** Strict hex decoding: even length, hex digits only; returns undefined otherwise. */
export function fromHex(s: string): Uint8Array | undefined {
  const t = s.startsWith('0x') || s.startsWith('0X') ? s.slice(2) : s;
  if (!HEX_RE.test(t)) return undefined;
  return new Uint8Array(Buffer.from(t, 'hex'));
}

export function isAllZero(b: Uint8Array): boolean {
  for (const x of b) if (x !== 0) return false;
  return true;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Little-endian bytes to a bigint (SNP signatures store r and s little-endian). */
export function leToBigInt(b: Uint8Array): bigint {
  // The bytes above the last whole 64-bit word one by one, then whole words: one BigInt shift per 8 bytes.
  const words = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let v = 0n;
  let i = b.length;
  while (i % 8 !== 0) v = (v << 8n) | BigInt(b[--i]!);
  while (i > 0) {
    i -= 8;
    v = (v << 64n) | words.getBigUint64(i, true);
  }
  return v;
}

/** A bigint as exactly `len` big-endian bytes; throws if it does not fit. */
export function bigIntToBe(v: bigint, len: number): Uint8Array {
  const out = new Uint8Array(len);
  let x = v;
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  if (x !== 0n) throw new RangeError(`integer does not fit in ${len} bytes`);
  return out;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
