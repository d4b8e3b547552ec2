import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeReport } from '../src/index.js';
import { isJoinguardError } from '@joinguard/core';
import { coveredBytesDiffer, fuzzFixtures, fuzzInput, fuzzProperty, SIG_RESERVED_START } from './fuzz-props.js';

describe('property-based fuzzing (bounded for CI; scripts/fuzz-snp.ts runs >= 1,000,000)', () => {
  const fx = fuzzFixtures();

  it('decoder and verifier reject hostile input with known codes; covered edits never verify', () => {
    fc.assert(fc.property(fuzzInput(fx), (input) => fuzzProperty(fx, input)), { numRuns: 1500, seed: 0x5eed });
  });

  it('fuzzes with every P-384 backend (Nettle with and without key tables), and a backend that disagrees fails the property', () => {
    expect(fx.backends.map((b) => b.label)).toEqual(['openssl', 'nettle', 'nettle+tables']);
    const lenient = { ...fx, backends: [...fx.backends, { name: 'nettle' as const, label: 'nettle', library: 'always yes', verify: () => true }] };
    const b = new Uint8Array(fx.report);
    b[0x2a0]! ^= 1;
    expect(fuzzProperty(lenient, { kind: 'signature', bytes: b, coveredChange: true })).toBe(false);
    expect(fuzzProperty(fx, { kind: 'signature', bytes: b, coveredChange: true })).toBe(true);
  });

  it('the property can fail: an unchanged report verifies, and claiming a change was made would be caught', () => {
    expect(fuzzProperty(fx, { kind: 'mutated', bytes: fx.report, coveredChange: false })).toBe(true);
    expect(fuzzProperty(fx, { kind: 'mutated', bytes: fx.report, coveredChange: true })).toBe(false);
  });

  it('a covered change is decided on the final bytes: an edit undone by a later edit at the same offset is none', () => {
    // The shape of input 193,259 of the 1,000,000-input run with FUZZ_SEED=856136368: edits that leave the report as it was.
    const b = new Uint8Array(fx.report);
    b[0x50] = fx.report[0x50]! ^ 0xff;
    b[0x50] = fx.report[0x50]!;
    expect(coveredBytesDiffer(fx.report, b)).toBe(false);
    expect(fuzzProperty(fx, { kind: 'mutated', bytes: b, coveredChange: coveredBytesDiffer(fx.report, b) })).toBe(true);
    b[SIG_RESERVED_START] = fx.report[SIG_RESERVED_START]! ^ 1; // the reserved tail of SIGNATURE is not covered
    expect(coveredBytesDiffer(fx.report, b)).toBe(false);
    b[SIG_RESERVED_START - 1] = fx.report[SIG_RESERVED_START - 1]! ^ 1;
    expect(coveredBytesDiffer(fx.report, b)).toBe(true);
    expect(fuzzProperty(fx, { kind: 'mutated', bytes: b, coveredChange: true })).toBe(true);
  });

  it('decoding random 1184-byte buffers throws only JoinguardError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1184, maxLength: 1184 }), fc.constantFrom(2, 3, 5), (b, v) => {
        b[0] = v;
        b[1] = b[2] = b[3] = 0;
        try {
          decodeReport(b);
        } catch (e) {
          return isJoinguardError(e);
        }
        return true;
      }),
      { numRuns: 2000, seed: 7 },
    );
  });
});
