import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JoinguardError } from '@joinguard/core';
import { PCR_BANKS, type PcrBank } from '@joinguard/tpm2';
import { C_SIZE, loadTss2 } from '../src/ffi.js';
import {
  marshalNvPublic,
  marshalPcrSelection,
  parseDigestList,
  parseNvPublic,
  parsePcrSelection,
  parseQuoteInfo,
  parseTpmProperties,
  unwrapTpm2b,
} from '../src/marshal.js';

const banks = Object.keys(PCR_BANKS) as PcrBank[];
const selectionArb = fc
  .uniqueArray(fc.constantFrom(...banks), { minLength: 1, maxLength: banks.length })
  .chain((bs) => fc.tuple(...bs.map((b) => fc.tuple(fc.constant(b), fc.uniqueArray(fc.integer({ min: 0, max: 23 }), { minLength: 1, maxLength: 24 })))))
  .map((entries) => Object.fromEntries(entries.map(([b, l]) => [b, [...l].sort((x, y) => x - y)])) as Partial<Record<PcrBank, number[]>>);

/** Round trip through tss2's own (independent) unmarshaller and marshaller. */
function throughTss2(type: 'TPML_PCR_SELECTION' | 'TPM2B_NV_PUBLIC', wire: Uint8Array): Uint8Array {
  const tss = loadTss2();
  const c = new Uint8Array(C_SIZE[type]);
  const off = [0];
  expect(tss.unmarshal[type](wire, wire.length, off, c)).toBe(0);
  expect(Number(off[0])).toBe(wire.length);
  const out = new Uint8Array(C_SIZE[type]);
  const off2 = [0];
  expect(tss.marshal[type](c, out, out.length, off2)).toBe(0);
  return out.slice(0, Number(off2[0]));
}

function onlyJoinguardErrors(f: () => unknown): void {
  try {
    f();
  } catch (e) {
    if (!(e instanceof JoinguardError)) throw e;
    expect(e.code).toBe('TPM2_MALFORMED_RESPONSE');
  }
}

describe('TPM wire marshalling', () => {
  it('TPML_PCR_SELECTION: our bytes are what tss2 marshals, and parse back to the selection', () => {
    fc.assert(
      fc.property(selectionArb, (sel) => {
        const wire = marshalPcrSelection(sel);
        expect(Buffer.from(throughTss2('TPML_PCR_SELECTION', wire))).toEqual(Buffer.from(wire));
        const parsed = parsePcrSelection(wire);
        expect(Object.fromEntries(parsed.map((s) => [s.bank, s.pcrs]))).toEqual(sel);
      }),
      { numRuns: 200 },
    );
  });

  it('TPM2B_NV_PUBLIC: our bytes are what tss2 marshals, and parse back', () => {
    fc.assert(
      fc.property(
        fc.record({
          nvIndex: fc.integer({ min: 0x01000000, max: 0x01ffffff }),
          nameAlg: fc.constantFrom(0x000b, 0x000c, 0x0004),
          attributes: fc.integer({ min: 0, max: 0xffffffff }),
          authPolicy: fc.uint8Array({ maxLength: 64 }),
          dataSize: fc.integer({ min: 0, max: 0xffff }),
        }),
        (p) => {
          const wire = marshalNvPublic(p);
          expect(Buffer.from(throughTss2('TPM2B_NV_PUBLIC', wire))).toEqual(Buffer.from(wire));
          expect(parseNvPublic(unwrapTpm2b(wire, 'TPM2B_NV_PUBLIC'))).toEqual(p);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('response parsers throw only TPM2_MALFORMED_RESPONSE on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        for (const f of [parseQuoteInfo, parsePcrSelection, parseDigestList, parseNvPublic, parseTpmProperties, (x: Uint8Array) => unwrapTpm2b(x, 'TPM2B')]) {
          onlyJoinguardErrors(() => f(b));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('rejects counts beyond the structure limits before reading', () => {
    expect(() => parsePcrSelection(new Uint8Array([0, 0, 0, 17]))).toThrow(expect.objectContaining({ code: 'TPM2_MALFORMED_RESPONSE', kind: 'internal' }));
    expect(() => parseDigestList(new Uint8Array([0xff, 0xff, 0xff, 0xff]))).toThrow(expect.objectContaining({ code: 'TPM2_MALFORMED_RESPONSE' }));
    expect(() => unwrapTpm2b(new Uint8Array([0, 1, 5, 6]), 'TPM2B_X')).toThrow(expect.objectContaining({ code: 'TPM2_MALFORMED_RESPONSE' }));
  });
});
