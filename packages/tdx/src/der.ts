import { reject } from '@joinguard/core';

/**
 * A minimal DER reader for the few ASN.1 structures this package reads itself (Intel's SGX extensions
 * in PCK certificates). Lengths are checked against the enclosing element before any use.
 */
export interface DerElement {
  tag: number;
  /** Contents (without tag and length), a view into the input. */
  value: Uint8Array;
}

export function readDerElements(buf: Uint8Array, code: string, what: string): DerElement[] {
  const out: DerElement[] = [];
  let o = 0;
  while (o < buf.length) {
    if (buf.length - o < 2) throw reject(code, `${what}: truncated DER header at ${o}`, { offset: o });
    const tag = buf[o]!;
    if ((tag & 0x1f) === 0x1f) throw reject(code, `${what}: multi-byte DER tags are not used here (tag 0x${tag.toString(16)} at ${o})`, { offset: o });
    let len = buf[o + 1]!;
    o += 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 3) throw reject(code, `${what}: unsupported DER length form (${n} length bytes) at ${o}`, { offset: o });
      if (buf.length - o < n) throw reject(code, `${what}: truncated DER length at ${o}`, { offset: o });
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + buf[o + i]!;
      o += n;
    }
    if (len > buf.length - o) throw reject(code, `${what}: DER element of ${len} bytes exceeds the ${buf.length - o} remaining at ${o}`, { offset: o, length: len });
    out.push({ tag, value: buf.subarray(o, o + len) });
    o += len;
  }
  return out;
}

export function derOid(value: Uint8Array): string {
  if (value.length === 0) return '';
  const arcs: number[] = [Math.floor(value[0]! / 40), value[0]! % 40];
  let v = 0;
  for (let i = 1; i < value.length; i++) {
    v = v * 128 + (value[i]! & 0x7f);
    if (!(value[i]! & 0x80)) {
      arcs.push(v);
      v = 0;
    }
  }
  return arcs.join('.');
}

/** A small non-negative INTEGER or ENUMERATED (SVNs fit in 16 bits). */
export function derSmallUint(value: Uint8Array, code: string, what: string): number {
  if (value.length === 0 || value.length > 3 || (value[0]! & 0x80) !== 0) {
    throw reject(code, `${what}: expected a small non-negative integer, got ${value.length} bytes`, { length: value.length });
  }
  let v = 0;
  for (const b of value) v = v * 256 + b;
  return v;
}

export const DER_INTEGER = 0x02;
export const DER_OCTET_STRING = 0x04;
export const DER_OID = 0x06;
export const DER_ENUMERATED = 0x0a;
export const DER_SEQUENCE = 0x30;
