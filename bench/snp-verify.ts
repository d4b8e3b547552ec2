// SNP report verifications per second on one core, against raw ECDSA P-384 verifications.
// Usage: npx tsx bench/snp-verify.ts [seconds]   (runs about 5 × seconds)
// The full verify decodes the report, looks up the VCEK chain in a ChainCache (keyed by the SHA-256 of
// the certificates, holding the verified chain, its imported public key and validity window), checks
// the VCEK extensions against the report, verifies the signature and builds the claims.
import { verify as cryptoVerify } from 'node:crypto';
import { readVector } from '@joinguard/core/testing';
import { ChainCache, decodeReport, verifyReport, parseAmdCert } from '@joinguard/snp';

const seconds = Number(process.argv[2] ?? 1.5);
const report = readVector('snp/gosevguest_milan_v2/report.bin');
const vcek = readVector('snp/gosevguest_milan_v2/vcek.der');
const now = new Date('2026-11-23T00:00:00Z');
const cache = new ChainCache();

// Raw baseline: the same signature check alone, with a pre-imported key and a pre-converted signature.
const decoded = decodeReport(report);
const key = parseAmdCert(vcek, 'VCEK').publicKey;
const sig = Buffer.alloc(96);
for (let i = 0; i < 48; i++) {
  sig[47 - i] = decoded.signatureR[i]!;
  sig[95 - i] = decoded.signatureS[i]!;
}
const signed = report.subarray(0, 0x2a0);

const raw = () => {
  if (!cryptoVerify('sha384', signed, { key, dsaEncoding: 'ieee-p1363' }, sig)) throw new Error('raw verify failed');
};
const full = () => {
  verifyReport(report, { vcek }, { now, product: 'milan', cache });
};

// Warm up both paths (JIT, the chain cache). Then interleave short batches of each and add up the time
// spent in each, so that load from other processes on the machine falls on both alike.
for (let i = 0; i < 200; i++) {
  raw();
  full();
}
const BATCH = 25;
let rawMs = 0;
let fullMs = 0;
let batches = 0;
const end = performance.now() + seconds * 1000 * 5;
while (performance.now() < end) {
  let t = performance.now();
  for (let i = 0; i < BATCH; i++) raw();
  rawMs += performance.now() - t;
  t = performance.now();
  for (let i = 0; i < BATCH; i++) full();
  fullMs += performance.now() - t;
  batches++;
}
const r = (batches * BATCH) / (rawMs / 1000);
const f = (batches * BATCH) / (fullMs / 1000);
console.log(`raw ECDSA P-384 verify (node:crypto): ${r.toFixed(0)} /s`);
console.log(`full SNP report verify (cached chain): ${f.toFixed(0)} /s`);
console.log(`ratio full/raw: ${(f / r).toFixed(3)} (goal >= 0.85); ${batches * BATCH} operations of each`);
