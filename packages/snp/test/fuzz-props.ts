// Properties shared by the bounded CI fuzz test and the long run (scripts/fuzz-snp.ts).
import fc from 'fast-check';
import { isJoinguardError } from '@joinguard/core';
import { readVector } from '@joinguard/core/testing';
import { ALL_SNP_ERROR_CODES, ChainCache, p384Backends, parseAmdCert, REPORT_SIZE, reportSignatureP1363, verifyReport, type P384Backend } from '../src/index.js';

const NOW = new Date('2026-11-23T00:00:00Z');
const KNOWN = new Set(ALL_SNP_ERROR_CODES);
/** Bytes the signature does not cover and the decoder does not read: the reserved tail of SIGNATURE. */
export const SIG_RESERVED_START = 0x2a0 + 144;

export interface FuzzInput {
  kind: 'random' | 'mutated' | 'resized' | 'cert' | 'signature';
  bytes: Uint8Array;
  /** For mutated reports: whether a byte the verifier depends on changed. */
  coveredChange: boolean;
}

/** Whether `bytes` differs from the genuine `report` anywhere in the covered range [0, SIG_RESERVED_START). */
export function coveredBytesDiffer(report: Uint8Array, bytes: Uint8Array): boolean {
  for (let i = 0; i < SIG_RESERVED_START; i++) if (report[i] !== bytes[i]) return true;
  return false;
}

export function fuzzFixtures() {
  const vcek = readVector('snp/gosevguest_milan_v2/vcek.der');
  return {
    report: readVector('snp/gosevguest_milan_v2/report.bin'),
    vcek,
    vcekKey: parseAmdCert(vcek, 'VCEK').publicKey,
    cache: new ChainCache(),
    backends: p384Backends() as readonly P384Backend[],
  };
}

/** Every ECDSA P-384 backend gives the same answer for this report's signature (node:crypto is the reference). */
export function backendsAgree(fx: ReturnType<typeof fuzzFixtures>, bytes: Uint8Array): boolean {
  if (bytes.length !== REPORT_SIZE) return true;
  const signed = bytes.subarray(0, 0x2a0);
  // r and s at 0x2A0 and 0x2E8; a value wider than 48 bytes is refused before any backend is asked.
  const sig = reportSignatureP1363(bytes.subarray(0x2a0, 0x2e8), bytes.subarray(0x2e8, 0x330));
  if (!sig) return true;
  const answers = fx.backends.map((b) => b.verify(fx.vcekKey, signed, sig));
  return answers.every((a) => a === answers[0]);
}

export function fuzzInput(fx: ReturnType<typeof fuzzFixtures>): fc.Arbitrary<FuzzInput> {
  const random = fc.uint8Array({ minLength: 0, maxLength: REPORT_SIZE + 64 }).map((b) => ({ kind: 'random' as const, bytes: b, coveredChange: true }));
  const randomFull = fc.uint8Array({ minLength: REPORT_SIZE, maxLength: REPORT_SIZE }).map((b) => ({ kind: 'random' as const, bytes: b, coveredChange: true }));
  const mutated = fc.array(fc.tuple(fc.nat({ max: REPORT_SIZE - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }).map((edits) => {
    const b = new Uint8Array(fx.report);
    for (const [off, val] of edits) b[off] = val;
    // Decided on the final bytes, not the edit history: a later edit at the same offset can restore the original byte.
    return { kind: 'mutated' as const, bytes: b, coveredChange: coveredBytesDiffer(fx.report, b) };
  });
  const resized = fc.integer({ min: 0, max: REPORT_SIZE * 2 }).filter((n) => n !== REPORT_SIZE).map((n) => {
    const b = new Uint8Array(n);
    b.set(fx.report.subarray(0, Math.min(n, REPORT_SIZE)));
    return { kind: 'resized' as const, bytes: b, coveredChange: true };
  });
  const cert = fc.array(fc.tuple(fc.nat({ max: fx.vcek.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }).map((edits) => {
    const b = new Uint8Array(fx.vcek);
    for (const [off, val] of edits) b[off] = val;
    return { kind: 'cert' as const, bytes: b, coveredChange: true };
  });
  // Edits to r and s only (and sometimes one signed byte): the signature check is then the step that decides.
  const signature = fc
    .tuple(fc.array(fc.tuple(fc.nat({ max: 95 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }), fc.option(fc.nat({ max: 0x29f })))
    .map(([edits, signedAt]) => {
      const b = new Uint8Array(fx.report);
      for (const [off, val] of edits) b[off < 48 ? 0x2a0 + off : 0x2e8 + off - 48] = val;
      if (signedAt !== null) b[signedAt]! ^= 0x01;
      return { kind: 'signature' as const, bytes: b, coveredChange: coveredBytesDiffer(fx.report, b) };
    });
  return fc.oneof(random, randomFull, mutated, mutated, resized, cert, signature);
}

/**
 * The property: hostile input never crashes the decoder or verifier with anything but a JoinguardError
 * carrying a known SNP code, any change to covered bytes of a good report is rejected, and every P-384
 * backend agrees on each edited report's signature.
 */
export function fuzzProperty(fx: ReturnType<typeof fuzzFixtures>, input: FuzzInput): boolean {
  try {
    if (input.kind === 'cert') {
      verifyReport(fx.report, { vcek: input.bytes }, { now: NOW, product: 'milan' });
      return true; // an edit that leaves the certificate valid (e.g. in an unsigned part it cannot reach) is fine
    }
    if ((input.kind === 'signature' || input.kind === 'mutated') && !backendsAgree(fx, input.bytes)) return false;
    verifyReport(input.bytes, { vcek: fx.vcek }, { now: NOW, product: 'milan', cache: fx.cache });
    return !input.coveredChange;
  } catch (e) {
    if (!isJoinguardError(e)) throw e;
    if (!KNOWN.has(e.code)) throw new Error(`unknown code ${e.code}: ${e.message}`);
    return true;
  }
}

export function certParseProperty(bytes: Uint8Array): boolean {
  try {
    parseAmdCert(bytes, 'fuzz');
    return true;
  } catch (e) {
    if (!isJoinguardError(e)) throw e;
    return true;
  }
}
