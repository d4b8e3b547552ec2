// SNP report verifications per second on one core, against raw ECDSA P-384 verifications.
// Usage: npx tsx bench/snp-verify.ts [seconds]   (runs about 5 × seconds)
// The full verify decodes the report, looks up the VCEK chain in a ChainCache (keyed by the SHA-256 of
// the certificates, holding the verified chain, its imported public key and validity window), checks
// the VCEK extensions against the report, verifies the signature and builds the claims.
import { readVector } from '@joinguard/core/testing';
import { ChainCache, decodeReport, p384Backends, parseAmdCert, reportSignatureP1363, useP384Backend, verifyReport } from '@joinguard/snp';

const seconds = Number(process.argv[2] ?? 1.5);
const report = readVector('snp/gosevguest_milan_v2/report.bin');
const vcek = readVector('snp/gosevguest_milan_v2/vcek.der');
const now = new Date('2026-11-23T00:00:00Z');
const cache = new ChainCache();

// Raw baseline: the same signature check alone, with a pre-imported key and a pre-converted signature.
const decoded = decodeReport(report);
const key = parseAmdCert(vcek, 'VCEK').publicKey;
const sig = reportSignatureP1363(decoded.signatureR, decoded.signatureS)!;
const signed = report.subarray(0, 0x2a0);

// Every backend this machine has (node:crypto always; Nettle where libhogweed loads), raw and inside the
// full verify, which uses the backend chosen last by useP384Backend.
const backends = p384Backends();
const raws = backends.map((b) => () => {
  if (!b.verify(key, signed, sig)) throw new Error(`raw verify failed (${b.name})`);
});
const fulls = backends.map(() => () => {
  verifyReport(report, { vcek }, { now, product: 'milan', cache });
});
// The first backend is node:crypto, the reference of every bench's "raw P-384" figure.
const names = backends.map((b) => `${b.name} (${b.library}) backend`);

// Warm up every path (JIT, the chain cache). Then interleave short batches of each and add up the time
// spent in each, so that load from other processes on the machine falls on all alike.
const BATCH = 25;
const runs = [...raws, ...fulls];
const ms = runs.map(() => 0);
for (const f of runs) for (let i = 0; i < 200; i++) f();
let batches = 0;
const end = performance.now() + seconds * 1000 * 5;
while (performance.now() < end) {
  runs.forEach((f, k) => {
    // The full verifies switch the backend once per batch, not per call.
    useP384Backend(backends[Math.max(0, k - raws.length)]!.name);
    const t = performance.now();
    for (let i = 0; i < BATCH; i++) f();
    ms[k]! += performance.now() - t;
  });
  batches++;
}
const perSec = ms.map((m) => (batches * BATCH) / (m / 1000));
raws.forEach((_, k) => console.log(`raw ECDSA P-384 verify, ${names[k]}: ${perSec[k]!.toFixed(0)} /s`));
fulls.forEach((_, k) => {
  const f = perSec[raws.length + k]!;
  console.log(`full SNP report verify (cached chain), ${backends[k]!.name}: ${f.toFixed(0)} /s, ${(f / perSec[0]!).toFixed(3)} × raw node:crypto (goal >= 0.85)`);
});
console.log(`${batches * BATCH} operations of each`);
