// Long fuzz run of the TPM quote decoders and verifier.
// Usage: npx tsx scripts/fuzz-tpm.ts [runs]   (default 1,000,000; FUZZ_SEED fixes the seed)
// Seeds: the trustee quote (RSASSA, AK as SPKI), the Azure quote (raw RSASSA, AK from JWK) and synthetic
// quotes with TPMT_PUBLIC AKs (ECDSA P-256, RSASSA RSA-2048). Each input mutates the quote, the signature,
// the AK or the PCR values (byte sets, 16/32-bit boundary values, truncation, insertion) or is random.
// A failure is: anything thrown that is not a JoinguardError (crash), an input taking more than 250 ms of CPU
// (slow; CPU time, since wall time on a shared machine measures the scheduler), or a changed quote, signature
// or PCR value that still verifies (forged).
import { createHash, createPublicKey, sign, type JsonWebKey } from 'node:crypto';
import { isJoinguardError, newKeyPair } from '@joinguard/core';
import { readVector, readVectorText } from '@joinguard/core/testing';
import { decodeAttest, decodePublic, decodeSignature, verifyQuote, type VerifyQuoteInput } from '@joinguard/tpm';
import { fuzzRuns, fuzzSeed, xorshift32 } from './fuzz-common.js';

const runs = fuzzRuns('scripts/fuzz-tpm.ts');
const seed = fuzzSeed();
const { rnd, below } = xorshift32(seed);

const u16 = (v: number) => Buffer.from([v >> 8, v & 0xff]);
const u32 = (v: number) => Buffer.from([v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]);
const b2 = (b: Uint8Array) => Buffer.concat([u16(b.length), Buffer.from(b)]);
const ATTRS = (1 << 1) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 16) | (1 << 18);
const ZERO_PCRS = { sha256: Object.fromEntries(Array.from({ length: 8 }, (_, i) => [i, '00'.repeat(32)])) };

function quoteFor(digest: Buffer): Buffer {
  return Buffer.concat([u32(0xff544347), u16(0x8018), b2(Buffer.alloc(34, 3)), b2(Buffer.alloc(16, 9)), Buffer.alloc(8, 1), u32(5), u32(1), Buffer.from([1]), Buffer.alloc(8, 2), u32(1), u16(0x0b), Buffer.from([3, 0xff, 0, 0]), b2(digest)]);
}
const zeroDigest = createHash('sha256').update(Buffer.alloc(8 * 32)).digest();

function eccSeed(): VerifyQuoteInput {
  const { publicKey, privateKey } = newKeyPair({ type: 'ec', namedCurve: 'P-256' });
  const k = publicKey.export({ format: 'jwk' });
  const akPublic = Buffer.concat([u16(0x23), u16(0x0b), u32(ATTRS), b2(new Uint8Array()), u16(0x10), u16(0x18), u16(0x0b), u16(0x03), u16(0x10), b2(Buffer.from(k.x!, 'base64url')), b2(Buffer.from(k.y!, 'base64url'))]);
  const quote = quoteFor(zeroDigest);
  const raw = sign('sha256', quote, { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return { quote, signature: Buffer.concat([u16(0x18), u16(0x0b), b2(raw.subarray(0, 32)), b2(raw.subarray(32))]), akPublic, pcrs: ZERO_PCRS, expectedExtraData: Buffer.alloc(16, 9) };
}
function rsaSeed(): VerifyQuoteInput {
  const { publicKey, privateKey } = newKeyPair({ type: 'rsa', modulusLength: 2048 });
  const k = publicKey.export({ format: 'jwk' });
  const akPublic = Buffer.concat([u16(0x01), u16(0x0b), u32(ATTRS), b2(new Uint8Array()), u16(0x10), u16(0x14), u16(0x0b), u16(2048), u32(0), b2(Buffer.from(k.n!, 'base64url'))]);
  const quote = quoteFor(zeroDigest);
  return { quote, signature: Buffer.concat([u16(0x14), u16(0x0b), b2(sign('sha256', quote, privateKey))]), akPublic, pcrs: ZERO_PCRS, expectedExtraData: Buffer.alloc(16, 9) };
}
const t = JSON.parse(readVectorText('tpm/trustee_tpm_evidence/tpm_evidence.json')) as { ak_public: string; tpm_quote: { message: string; signature: string; pcrs: string[] } };
const hcl = Buffer.from(readVector('azure/az_snp_vtpm_milan_v2/hcl-report.bin'));
const at = 0x20 + 1184;
const jwk = (JSON.parse(hcl.subarray(at + 20, at + 20 + hcl.readUInt32LE(at + 16)).toString('utf8')) as { keys: (JsonWebKey & { kid: string })[] }).keys.find((k) => k.kid === 'HCLAkPub')!;
const az = JSON.parse(readVectorText('azure/az_snp_vtpm_milan_v2/tpm-quote-v1.json')) as { message: string; signature: string; pcrs: string[] };
const seeds: VerifyQuoteInput[] = [
  { quote: Buffer.from(t.tpm_quote.message, 'base64'), signature: Buffer.from(t.tpm_quote.signature, 'base64'), akPublic: Buffer.from(t.ak_public, 'base64'), pcrs: { sha256: Object.fromEntries(t.tpm_quote.pcrs.map((v, i) => [i, v])) }, allowAkWithoutAttributes: true },
  { quote: Buffer.from(az.message, 'hex'), signature: { sigAlg: 'rsassa', hash: 0x0b, signature: Buffer.from(az.signature, 'hex') }, akPublic: createPublicKey({ key: jwk, format: 'jwk' }), pcrs: { sha256: Object.fromEntries(az.pcrs.map((v, i) => [i, v])) }, expectedExtraData: Buffer.from('challenge'), allowAkWithoutAttributes: true },
  eccSeed(),
  rsaSeed(),
];
for (const x of seeds) verifyQuote(x); // every seed verifies before mutation

const INTERESTING = [0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0xffffffff, 0x0b, 0x0c, 0x14, 0x16, 0x18, 0x23, 0x8018];
function mutateBytes(src: Uint8Array): Buffer {
  let out = Buffer.from(src);
  const n = 1 + below(3);
  for (let i = 0; i < n && out.length > 0; i++) {
    const p = below(out.length);
    switch (below(5)) {
      case 0:
        out[p] = out[p]! ^ (1 + below(255));
        break;
      case 1:
        if (p + 2 <= out.length) out.writeUInt16BE(INTERESTING[below(INTERESTING.length)]! & 0xffff, p);
        break;
      case 2:
        if (p + 4 <= out.length) out.writeUInt32BE(INTERESTING[below(INTERESTING.length)]! >>> 0, p);
        break;
      case 3:
        out = out.subarray(0, p);
        break;
      default: {
        const ins = Buffer.alloc(1 + below(8));
        for (let j = 0; j < ins.length; j++) ins[j] = rnd() & 0xff;
        out = Buffer.concat([out.subarray(0, p), ins, out.subarray(p)]);
      }
    }
  }
  return out;
}

const t0 = performance.now();
const mix: Record<string, number> = {};
const outcomes: Record<string, number> = {};
let failures = 0;
const failureKinds = { crash: 0, forged: 0, slow: 0 };
let maxMs = 0;
const firstFailures: string[] = [];
for (let i = 0; i < runs; i++) {
  const base = seeds[below(seeds.length)]!;
  const input: VerifyQuoteInput = { ...base };
  const r = below(20);
  let kind: string;
  if (r < 9) {
    kind = 'quote';
    input.quote = mutateBytes(base.quote);
  } else if (r < 14) {
    kind = 'signature';
    input.signature = base.signature instanceof Uint8Array ? mutateBytes(base.signature) : { ...base.signature, signature: mutateBytes((base.signature as { signature: Uint8Array }).signature) } as VerifyQuoteInput['signature'];
  } else if (r < 17) {
    kind = 'ak';
    if (base.akPublic instanceof Uint8Array) input.akPublic = mutateBytes(base.akPublic);
  } else if (r < 19) {
    kind = 'pcrs';
    const bank = { ...base.pcrs!.sha256! };
    const idx = Number(Object.keys(bank)[below(Object.keys(bank).length)]);
    bank[idx] = mutateBytes(Buffer.from(bank[idx]!, 'hex')).toString('hex');
    input.pcrs = { sha256: bank };
  } else {
    kind = 'random';
    const b = Buffer.alloc(below(400));
    for (let j = 0; j < b.length; j++) b[j] = rnd() & 0xff;
    input.quote = b;
    input.signature = Buffer.from(b.subarray(0, below(b.length + 1)));
  }
  mix[kind] = (mix[kind] ?? 0) + 1;
  const t = process.cpuUsage();
  let outcome = 'verified';
  try {
    if (input.quote instanceof Uint8Array) try { decodeAttest(input.quote); } catch (e) { if (!isJoinguardError(e)) throw e; }
    if (input.signature instanceof Uint8Array) try { decodeSignature(input.signature); } catch (e) { if (!isJoinguardError(e)) throw e; }
    if (input.akPublic instanceof Uint8Array && input.akPublic[0] !== 0x30) try { decodePublic(input.akPublic); } catch (e) { if (!isJoinguardError(e)) throw e; }
    verifyQuote(input);
  } catch (e) {
    if (!isJoinguardError(e)) {
      failures++;
      failureKinds.crash++;
      if (firstFailures.length < 5) firstFailures.push(`${kind} ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    }
    outcome = isJoinguardError(e) ? e.code : 'crash';
  }
  const changed =
    (kind === 'quote' && Buffer.compare(Buffer.from(input.quote), Buffer.from(base.quote)) !== 0) ||
    (kind === 'signature' && JSON.stringify(input.signature) !== JSON.stringify(base.signature)) ||
    (kind === 'pcrs' && JSON.stringify(input.pcrs) !== JSON.stringify(base.pcrs));
  if (outcome === 'verified' && changed) {
    failures++;
    failureKinds.forged++;
    if (firstFailures.length < 5) firstFailures.push(`${kind}: a changed input verified`);
  }
  outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
  const used = process.cpuUsage(t);
  const ms = (used.user + used.system) / 1000;
  if (ms > maxMs) maxMs = ms;
  if (ms > 250) {
    failures++;
    failureKinds.slow++;
    if (firstFailures.length < 5) firstFailures.push(`${kind} slow: ${ms.toFixed(0)} ms`);
  }
  if (i % 20000 === 0) process.stderr.write(`\r${i}/${runs}`);
}
const seconds = (performance.now() - t0) / 1000;
process.stderr.write('\n');
const top = Object.entries(outcomes).sort((a, b) => b[1] - a[1]).slice(0, 14);
console.log(`tpm fuzz: inputs=${runs} failures=${failures} ${JSON.stringify(failureKinds)} time=${seconds.toFixed(1)}s seed=${seed} maxCpuPerInput=${maxMs.toFixed(1)}ms peakRss=${(process.memoryUsage().rss / 2 ** 20).toFixed(0)}MiB mix=${JSON.stringify(mix)}`);
console.log(`outcomes: ${top.map(([k, v]) => `${k}=${v}`).join(' ')}`);
for (const f of firstFailures) console.log(`failure: ${f}`);
process.exit(failures === 0 ? 0 : 1);
