import { ByteReader, JoinguardError } from '@joinguard/core';
import { PCR_BANKS, PCR_SELECT_SIZE, bankOfAlg, type PcrBank } from './constants.js';

/**
 * A small big-endian writer/reader for the handful of TPM wire structures the attester builds and reads.
 * The tss2 C structures are filled from these bytes by Tss2_MU_*_Unmarshal (see ffi.ts).
 */
export class Writer {
  private parts: number[] = [];
  u8(v: number): this {
    this.parts.push(v & 0xff);
    return this;
  }
  u16(v: number): this {
    return this.u8(v >>> 8).u8(v);
  }
  u32(v: number): this {
    return this.u16(v >>> 16).u16(v & 0xffff);
  }
  bytes(b: Uint8Array): this {
    for (const x of b) this.parts.push(x);
    return this;
  }
  /** TPM2B: a 16-bit size, then the bytes. */
  tpm2b(b: Uint8Array): this {
    return this.u16(b.length).bytes(b);
  }
  /** A TPM2B whose content is itself a structure (TPM2B_PUBLIC, TPM2B_NV_PUBLIC, TPM2B_SENSITIVE_CREATE). */
  sized(inner: Writer): this {
    return this.tpm2b(inner.done());
  }
  done(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

export type PcrSelection = Partial<Record<PcrBank, readonly number[]>>;

/** TPML_PCR_SELECTION for the chosen banks and PCR numbers (callers validate the numbers first). */
export function marshalPcrSelection(sel: PcrSelection): Uint8Array {
  const banks = Object.entries(sel) as [PcrBank, readonly number[]][];
  const w = new Writer().u32(banks.length);
  for (const [bank, pcrs] of banks) {
    const bitmap = new Uint8Array(PCR_SELECT_SIZE);
    for (const p of pcrs) bitmap[p >> 3]! |= 1 << (p & 7);
    w.u16(PCR_BANKS[bank].alg).u8(PCR_SELECT_SIZE).bytes(bitmap);
  }
  return w.done();
}

function reader(buf: Uint8Array, what: string): ByteReader {
  return new ByteReader(buf, { truncatedCode: 'TPM2_MALFORMED_RESPONSE', what });
}

/** A response of the TPM or of tss2 that does not parse is a platform fault, not rejected evidence. */
function bad(message: string, details: Record<string, unknown>): never {
  throw new JoinguardError('TPM2_MALFORMED_RESPONSE', message, details, { kind: 'internal' });
}

/** Reads TPML_PCR_SELECTION; returns the selected PCR numbers per bank, in ascending order. */
export function readPcrSelection(r: ByteReader): { bank: PcrBank | undefined; alg: number; pcrs: number[] }[] {
  const count = r.u32be('TPML_PCR_SELECTION.count');
  if (count > 16) bad(`TPML_PCR_SELECTION.count ${count} exceeds 16 banks`, { count });
  const out: { bank: PcrBank | undefined; alg: number; pcrs: number[] }[] = [];
  for (let i = 0; i < count; i++) {
    const alg = r.u16be('TPMS_PCR_SELECTION.hash');
    const size = r.u8('TPMS_PCR_SELECTION.sizeofSelect');
    const bitmap = r.bytes(size, 'TPMS_PCR_SELECTION.pcrSelect');
    const pcrs: number[] = [];
    for (let p = 0; p < size * 8; p++) if (bitmap[p >> 3]! & (1 << (p & 7))) pcrs.push(p);
    out.push({ bank: bankOfAlg(alg), alg, pcrs });
  }
  return out;
}

export function parsePcrSelection(buf: Uint8Array): ReturnType<typeof readPcrSelection> {
  return readPcrSelection(reader(buf, 'TPML_PCR_SELECTION'));
}

/** TPML_DIGEST: a count and that many TPM2B_DIGEST. */
export function parseDigestList(buf: Uint8Array): Uint8Array[] {
  const r = reader(buf, 'TPML_DIGEST');
  const count = r.u32be('TPML_DIGEST.count');
  if (count > 8) bad(`TPML_DIGEST.count ${count} exceeds 8`, { count });
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) out.push(r.bytes(r.u16be('TPM2B_DIGEST.size'), 'TPM2B_DIGEST.buffer').slice());
  return out;
}

/** The content of a marshalled TPM2B (size-prefixed) value, checked to fill the buffer exactly. */
export function unwrapTpm2b(buf: Uint8Array, what: string): Uint8Array {
  const r = reader(buf, what);
  const size = r.u16be(`${what}.size`);
  const body = r.bytes(size, `${what}.buffer`).slice();
  if (r.remaining !== 0) bad(`${what} has ${r.remaining} bytes after its declared size ${size}`, { size, trailing: r.remaining });
  return body;
}

export interface NvPublic {
  nvIndex: number;
  nameAlg: number;
  attributes: number;
  authPolicy: Uint8Array;
  dataSize: number;
}

/** TPMS_NV_PUBLIC (the content of TPM2B_NV_PUBLIC). */
export function parseNvPublic(buf: Uint8Array): NvPublic {
  const r = reader(buf, 'TPMS_NV_PUBLIC');
  return {
    nvIndex: r.u32be('nvIndex'),
    nameAlg: r.u16be('nameAlg'),
    attributes: r.u32be('attributes'),
    authPolicy: r.bytes(r.u16be('authPolicy.size'), 'authPolicy').slice(),
    dataSize: r.u16be('dataSize'),
  };
}

export function marshalNvPublic(p: NvPublic): Uint8Array {
  return new Writer()
    .sized(new Writer().u32(p.nvIndex).u16(p.nameAlg).u32(p.attributes).tpm2b(p.authPolicy).u16(p.dataSize))
    .done();
}

/** TPMS_CAPABILITY_DATA for TPM2_CAP_TPM_PROPERTIES: property → value. */
export function parseTpmProperties(buf: Uint8Array): Map<number, number> {
  const r = reader(buf, 'TPMS_CAPABILITY_DATA');
  const cap = r.u32be('capability');
  if (cap !== 6) bad(`TPMS_CAPABILITY_DATA.capability is ${cap}, expected TPM2_CAP_TPM_PROPERTIES (6)`, { capability: cap });
  const count = r.u32be('TPML_TAGGED_TPM_PROPERTY.count');
  const out = new Map<number, number>();
  for (let i = 0; i < count; i++) out.set(r.u32be('property'), r.u32be('value'));
  return out;
}

/** The fields of TPMS_ATTEST (type TPM_ST_ATTEST_QUOTE) the attester checks before sending a quote. */
export interface QuoteInfo {
  magic: number;
  type: number;
  extraData: Uint8Array;
  pcrSelect: ReturnType<typeof readPcrSelection>;
  pcrDigest: Uint8Array;
}

export function parseQuoteInfo(attest: Uint8Array): QuoteInfo {
  const r = reader(attest, 'TPMS_ATTEST');
  const magic = r.u32be('magic');
  const type = r.u16be('type');
  r.skip(r.u16be('qualifiedSigner.size'), 'qualifiedSigner');
  const extraData = r.bytes(r.u16be('extraData.size'), 'extraData').slice();
  r.skip(8 + 4 + 4 + 1, 'clockInfo');
  r.skip(8, 'firmwareVersion');
  const pcrSelect = readPcrSelection(r);
  const pcrDigest = r.bytes(r.u16be('pcrDigest.size'), 'pcrDigest').slice();
  return { magic, type, extraData, pcrSelect, pcrDigest };
}

/** TPML_DIGEST_VALUES for PCR_Extend. */
export function marshalDigestValues(digests: [PcrBank, Uint8Array][]): Uint8Array {
  const w = new Writer().u32(digests.length);
  for (const [bank, d] of digests) w.u16(PCR_BANKS[bank].alg).bytes(d);
  return w.done();
}

