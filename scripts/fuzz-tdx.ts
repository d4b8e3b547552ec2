// Long property-based fuzz run of the TDX quote decoder and signature/chain verifier.
// Usage: npx tsx scripts/fuzz-tdx.ts [runs]   (default 1,000,000; FUZZ_SEED=n to replay)
// Property: every input is either rejected with a JoinguardError of kind "rejected", or it verifies and
// everything the verification vouches for (signed header ‖ body, signatures, attestation key, QE report,
// QE auth data, PCK certificates) is byte-identical to the original quote it was derived from.
import fc from 'fast-check';
import { fuzzRuns, fuzzSeed, runInBatches } from './fuzz-common.js';
import { JoinguardError, equalBytes } from '@joinguard/core';
import { readVector } from '@joinguard/core/testing';
import { PckChainCache, decodeQuote, intelSgxRootCa, parsePemChain, verifyQuoteSignatures, type TdxQuote, type TrustAnchor } from '@joinguard/tdx';
import { buildQuote, createTestPki } from '@joinguard/tdx/testing';

const runs = fuzzRuns('scripts/fuzz-tdx.ts');

interface Fixture {
  name: string;
  bytes: Uint8Array;
  quote: TdxQuote;
  chain: Buffer[];
  now: Date;
  anchor: TrustAnchor;
  /** End of the structured part (through the nested certification data header). */
  structEnd: number;
}

function fixture(name: string, bytes: Uint8Array, now: string, anchor: TrustAnchor): Fixture {
  const quote = decodeQuote(bytes);
  const cd = quote.signatureData.certificationData;
  const sigStart = quote.signedData.length + 4;
  return {
    name, bytes, quote, now: new Date(now), anchor,
    chain: parsePemChain(cd.pckCertChainPem, 'PCK chain').map((c) => c.raw),
    structEnd: sigStart + 134 + 384 + 64 + 2 + cd.qeAuthData.length + 6,
  };
}

const pki = await createTestPki();
const pck = await pki.issuePck({ fmspc: '00906ed50000', sgxTcbComponents: new Array<number>(16).fill(3), pceSvn: 11 });
const fixtures: Fixture[] = [
  fixture('v4spr', readVector('tdx/gotdxguest_v4_spr/quote.dat'), '2023-07-01T00:00:00Z', intelSgxRootCa()),
  fixture('v5', readVector('tdx/gotdxguest_v5/quote.dat'), '2026-02-03T00:00:00Z', intelSgxRootCa()),
  fixture('cos113', readVector('tdx/gotdxguest_cos113_v4_ccel/quote.dat'), '2025-01-01T00:00:00Z', intelSgxRootCa()),
  fixture('azure', readVector('azure/az_tdx_vtpm/td-quote.bin'), '2025-01-01T00:00:00Z', intelSgxRootCa()),
  fixture('sim-v5-td15', buildQuote({ version: 5, pck, body: { reportData: new Uint8Array(64).fill(9) } }), '2025-01-01T00:00:00Z', pki.anchor),
];
const cache = new PckChainCache();

interface Input {
  kind: string;
  fx: number;
  bytes: Uint8Array;
}

function mutate(fxIdx: number, muts: [number, number][], kind: string): Input {
  const f = fixtures[fxIdx]!;
  const b = new Uint8Array(f.bytes);
  for (const [o, v] of muts) b[o % b.length] = v;
  return { kind, fx: fxIdx, bytes: b };
}

const fxArb = fc.nat({ max: fixtures.length - 1 });
const input: fc.Arbitrary<Input> = fc.oneof(
  fc.tuple(fxArb, fc.array(fc.tuple(fc.nat({ max: 8000 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 })).map(([i, m]) => mutate(i, m, 'mutate-anywhere')),
  fxArb.chain((i) => fc.array(fc.tuple(fc.nat({ max: fixtures[i]!.structEnd - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }).map((m) => mutate(i, m, 'mutate-structure'))),
  fxArb.chain((i) => fc.nat({ max: fixtures[i]!.bytes.length }).map((n) => ({ kind: 'truncate', fx: i, bytes: fixtures[i]!.bytes.subarray(0, n) }))),
  fc.tuple(fxArb, fc.uint8Array({ minLength: 1, maxLength: 64 })).map(([i, extra]) => ({ kind: 'extend', fx: i, bytes: new Uint8Array([...fixtures[i]!.bytes, ...extra]) })),
  fc.tuple(fxArb, fc.constantFrom(0, 1, 0xff, 0xffff, 0x10000, 0x7fffffff, 0xffffffff), fc.nat({ max: 5 })).map(([i, v, which]) => {
    const f = fixtures[i]!;
    const sig = f.quote.signedData.length;
    const offs = [sig, sig + 130, sig + 4 + 134 + 448, sig + 4 + 134 + 450 + f.quote.signatureData.certificationData.qeAuthData.length + 2, 50, 48];
    const b = new Uint8Array(f.bytes);
    const o = offs[which]!;
    if (o === 48) new DataView(b.buffer).setUint16(o, v & 0xffff, true);
    else new DataView(b.buffer).setUint32(o, v >>> 0, true);
    return { kind: 'length-fields', fx: i, bytes: b };
  }),
  fc.tuple(fxArb, fc.uint8Array({ maxLength: 6000 })).map(([i, rest]) => {
    const head = fixtures[i]!.bytes.subarray(0, 8);
    return { kind: 'random-after-header', fx: i, bytes: new Uint8Array([...head, ...rest]) };
  }),
);

function property(inp: Input): { ok: boolean; accepted?: boolean; why?: string } {
  const f = fixtures[inp.fx]!;
  let q: TdxQuote;
  try {
    q = decodeQuote(inp.bytes);
  } catch (e) {
    return e instanceof JoinguardError && e.kind === 'rejected' ? { ok: true } : { ok: false, why: `decode threw ${String(e)}` };
  }
  try {
    verifyQuoteSignatures(q, { now: f.now, trustAnchor: f.anchor, cache });
  } catch (e) {
    return e instanceof JoinguardError && e.kind === 'rejected' ? { ok: true } : { ok: false, why: `verify threw ${String(e)}` };
  }
  const a = q.signatureData;
  const b = f.quote.signatureData;
  const chain = parsePemChain(a.certificationData.pckCertChainPem, 'PCK chain').map((c) => c.raw);
  const same = equalBytes(q.signedData, f.quote.signedData) && equalBytes(a.quoteSignature, b.quoteSignature) && equalBytes(a.attestationKey, b.attestationKey) &&
    equalBytes(a.certificationData.qeReport.raw, b.certificationData.qeReport.raw) && equalBytes(a.certificationData.qeAuthData, b.certificationData.qeAuthData) &&
    chain.length === f.chain.length && chain.every((c, i) => c.equals(f.chain[i]!));
  return same ? { ok: true, accepted: true } : { ok: false, why: 'accepted a quote whose verified content differs from the original' };
}

const seed = fuzzSeed();
const kinds: Record<string, number> = {};
let failures = 0;
let accepted = 0;
const firstFailures: string[] = [];
const { done, seconds: secs } = runInBatches(
  input,
  runs,
  seed,
  (inp) => {
    kinds[inp.kind] = (kinds[inp.kind] ?? 0) + 1;
    const r = property(inp);
    if (!r.ok) {
      failures++;
      if (firstFailures.length < 5) firstFailures.push(`${inp.kind}/${fixtures[inp.fx]!.name}: ${r.why}`);
    } else if (r.accepted) accepted++;
  },
  (n, s) => `${n} inputs, ${failures} failures, ${s.toFixed(0)} s`,
);

console.log(`fuzz-tdx: ${done} inputs, ${failures} failures, ${secs.toFixed(1)} s (${(done / secs).toFixed(0)} inputs/s), seed ${seed}`);
console.log(`  accepted (verified, content unchanged: e.g. trailing bytes, PEM whitespace): ${accepted}`);
console.log(`  by kind: ${Object.entries(kinds).map(([k, v]) => `${k} ${v}`).join(', ')}`);
console.log(`  fixtures: ${fixtures.map((f) => f.name).join(', ')}; PCK chain cache entries: ${cache.size}`);
for (const f of firstFailures) console.log(`  FAIL ${f}`);
process.exitCode = failures === 0 ? 0 : 1;
