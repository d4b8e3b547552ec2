import { reject } from '@joinguard/core';

/**
 * A small bounds-checked DER walker. @peculiar/x509 hides the to-be-signed bytes and does not check the
 * RSASSA-PSS parameters, and both are needed to verify AMD's chain with node:crypto, so the outer
 * structure of certificates and CRLs and the values of AMD's extensions are read here.
 */
export interface Tlv {
  tag: number;
  /** The whole element, header included. */
  raw: Uint8Array;
  /** The contents only. */
  value: Uint8Array;
}

export function readTlv(buf: Uint8Array, offset: number, code: string, what: string): Tlv {
  const fail = (why: string) => reject(code, `${what}: malformed DER at offset ${offset}: ${why}`, { offset });
  if (offset + 2 > buf.length) throw fail('header past the end');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw fail('multi-byte tags are not used here');
  let len = buf[offset + 1]!;
  let hdr = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw fail(`length of ${n} bytes`);
    if (offset + 2 + n > buf.length) throw fail('length past the end');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[offset + 2 + i]!;
    hdr += n;
  }
  const end = offset + hdr + len;
  if (end > buf.length) throw fail(`element of ${len} bytes runs past the end (${buf.length})`);
  return { tag, raw: buf.subarray(offset, end), value: buf.subarray(offset + hdr, end) };
}

/** The children of a constructed element. */
export function children(t: Tlv, code: string, what: string): Tlv[] {
  const out: Tlv[] = [];
  let o = 0;
  while (o < t.value.length) {
    const c = readTlv(t.value, o, code, what);
    out.push(c);
    o += c.raw.length;
    if (out.length > 64) throw reject(code, `${what}: too many elements`, {});
  }
  return out;
}

export const TAG = {
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  IA5_STRING: 0x16,
  SEQUENCE: 0x30,
} as const;

export function oidToString(v: Uint8Array): string {
  if (v.length === 0) return '';
  const parts: number[] = [];
  const first = v[0]!;
  parts.push(first < 80 ? Math.floor(first / 40) : 2, first < 80 ? first % 40 : first - 80);
  let acc = 0;
  for (let i = 1; i < v.length; i++) {
    acc = acc * 128 + (v[i]! & 0x7f);
    if (!(v[i]! & 0x80)) {
      parts.push(acc);
      acc = 0;
    }
  }
  return parts.join('.');
}

/** A non-negative DER INTEGER that fits in a JS number (AMD's SPL values are small). */
export function derUint(v: Uint8Array, code: string, what: string): number {
  if (v.length === 0 || v.length > 6) throw reject(code, `${what}: INTEGER of ${v.length} bytes`, {});
  if (v[0]! & 0x80) throw reject(code, `${what}: negative INTEGER`, {});
  let n = 0;
  for (const b of v) n = n * 256 + b;
  return n;
}

function encLen(n: number): number[] {
  if (n < 0x80) return [n];
  const bytes: number[] = [];
  for (let x = n; x > 0; x = Math.floor(x / 256)) bytes.unshift(x & 0xff);
  return [0x80 | bytes.length, ...bytes];
}

/** DER encoding of one element (for the test signer's extension values). */
export function derEncode(tag: number, value: Uint8Array): Uint8Array {
  return new Uint8Array([tag, ...encLen(value.length), ...value]);
}

export function derUintEncode(n: number): Uint8Array {
  const bytes: number[] = [];
  for (let x = n; x > 0; x = Math.floor(x / 256)) bytes.unshift(x & 0xff);
  if (bytes.length === 0 || bytes[0]! & 0x80) bytes.unshift(0);
  return derEncode(TAG.INTEGER, new Uint8Array(bytes));
}
