import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { JoinguardError, equalBytes } from '@joinguard/core';
import { readVector, readVectorText } from '@joinguard/core/testing';
import { decodeQuote, parsePckExtensions, parsePemChain, parseSignedJson, checkTcbInfoShape, verifyQuoteSignatures, type TdxQuote } from '../src/index.js';
import { QUOTES } from './vectors.js';

/** Runs f; a thrown value must be a JoinguardError of kind "rejected" (never a raw exception). */
function rejectsCleanly<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch (e) {
    if (!(e instanceof JoinguardError) || e.kind !== 'rejected') throw e;
    return undefined;
  }
}

const original = readVector(QUOTES.v4spr.path);
const originalQuote = decodeQuote(original);
const originalChain = parsePemChain(originalQuote.signatureData.certificationData.pckCertChainPem, 'PCK chain').map((c) => c.raw);
const NOW = new Date(QUOTES.v4spr.at);

/** What a verification vouches for: if a mutated quote verifies, all of this must be unchanged. */
function sameVerifiedContent(q: TdxQuote): boolean {
  const a = q.signatureData;
  const b = originalQuote.signatureData;
  const chain = parsePemChain(a.certificationData.pckCertChainPem, 'PCK chain').map((c) => c.raw);
  return equalBytes(q.signedData, originalQuote.signedData) && equalBytes(a.quoteSignature, b.quoteSignature) && equalBytes(a.attestationKey, b.attestationKey) &&
    equalBytes(a.certificationData.qeReport.raw, b.certificationData.qeReport.raw) && equalBytes(a.certificationData.qeAuthData, b.certificationData.qeAuthData) &&
    chain.length === originalChain.length && chain.every((c, i) => c.equals(originalChain[i]!));
}

describe('property-based: hostile quotes never crash and never verify altered content', () => {
  it('arbitrary bytes (with and without a valid v4/v5 header prefix) are rejected with a JoinguardError', () => {
    const prefix = fc.constantFrom(new Uint8Array(0), original.subarray(0, 8), readVector(QUOTES.v5.path).subarray(0, 54));
    fc.assert(
      fc.property(prefix, fc.uint8Array({ maxLength: 6000 }), (p, rest) => {
        const q = new Uint8Array(p.length + rest.length);
        q.set(p);
        q.set(rest, p.length);
        const d = rejectsCleanly(() => decodeQuote(q));
        if (d) rejectsCleanly(() => verifyQuoteSignatures(d, { now: NOW }));
      }),
      { numRuns: 300 },
    );
  });

  it('byte mutations, truncations and extensions of a real quote: rejected, or the verified content is unchanged', () => {
    const mutation = fc.oneof(
      fc.array(fc.tuple(fc.nat({ max: original.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }).map((muts) => {
        const q = new Uint8Array(original);
        for (const [o, v] of muts) q[o] = v;
        return q;
      }),
      fc.nat({ max: original.length }).map((n) => original.subarray(0, n)),
      fc.uint8Array({ minLength: 1, maxLength: 64 }).map((extra) => new Uint8Array([...original, ...extra])),
      // Length fields set to boundary values.
      fc.tuple(fc.constantFrom(0x278, 0x27c + 130, 0x27c + 134 + 448), fc.constantFrom(0, 1, 0xff, 0xffff, 0x7fffffff, 0xffffffff)).map(([o, v]) => {
        const q = new Uint8Array(original);
        new DataView(q.buffer).setUint32(o, v >>> 0, true);
        return q;
      }),
    );
    fc.assert(
      fc.property(mutation, (q) => {
        const d = rejectsCleanly(() => decodeQuote(q));
        if (!d) return;
        const ok = rejectsCleanly(() => verifyQuoteSignatures(d, { now: NOW }));
        if (ok) expect(sameVerifiedContent(d)).toBe(true);
      }),
      { numRuns: 400 },
    );
  });

  it('the SGX extensions parser and the signed-JSON splitter reject garbage cleanly', () => {
    const tcbText = readVectorText('tdx/gotdxguest_v4_spr/tcbinfo_fmspc_50806f000000.json');
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.nat({ max: tcbText.length }), fc.string({ maxLength: 8 }), (der, cut, ins) => {
        rejectsCleanly(() => parsePckExtensions(der));
        const text = tcbText.slice(0, cut) + ins + tcbText.slice(cut + ins.length);
        const s = rejectsCleanly(() => parseSignedJson<unknown>(text, 'tcbInfo', 'TCB info'));
        if (s) rejectsCleanly(() => checkTcbInfoShape(s.value));
      }),
      { numRuns: 500 },
    );
  });
});
