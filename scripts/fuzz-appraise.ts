// Long fuzz run of the appraisal engine (services/verifier/src/appraise):
//   A. mutated Azure HCL reports (the two published ones, MANIFEST azure/) through decodeHclReport;
//   B. mutated simulated SNP evidence bundles (byte flips, truncations, JSON swaps) through appraiseEvidence.
// A failure is an exception other than a JoinguardError (A), or any exception or a passing verdict for a
// mutated signed field (B), or an outcome that differs once the memo of parsed logs is emptied. Run: npx tsx scripts/fuzz-appraise.ts [hclRuns=1000000] [bundleRuns=20000]
import { randomBytes } from 'node:crypto';
import { isJoinguardError } from '@joinguard/core';
import { readVector } from '@joinguard/core/testing';
import { policyDigest } from '@joinguard/policy';
import type { Evidence } from '@joinguard/protocol';
import { createSimCvm } from '@joinguard/simcvm';
import { ChainCache } from '@joinguard/snp';
import { appraiseEvidence, decodeHclReport, defaultTrust, type AppraisalContext } from '../services/verifier/src/appraise/index.js';
import { forgetKnownLogs } from '../services/verifier/src/appraise/engine.js';

const hclRuns = Number(process.argv[2] ?? 1_000_000);
const bundleRuns = Number(process.argv[3] ?? 20_000);

let seed = 0x9e3779b9;
function rnd(n: number): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
}

function mutate(src: Uint8Array): Uint8Array {
  const b = Buffer.from(src);
  switch (rnd(5)) {
    case 0: {
      for (let k = 1 + rnd(4); k > 0; k--) b[rnd(b.length)]! ^= 1 + rnd(255);
      return b;
    }
    case 1:
      return b.subarray(0, rnd(b.length));
    case 2: {
      // sizes of the IGVM request data (0x4C0..0x4D4) are the interesting part of the layout
      const at = 0x4c0 + rnd(20);
      b.writeUInt8(rnd(256), Math.min(at, b.length - 1));
      return b;
    }
    case 3:
      return Buffer.concat([b, randomBytes(rnd(64))]);
    default:
      return randomBytes(rnd(3000));
  }
}

const t0 = Date.now();
const hcls = [readVector('azure/az_snp_vtpm_milan_v2/hcl-report.bin'), readVector('azure/az_tdx_vtpm/hcl-report.bin')];
let accepted = 0;
let rejected = 0;
let crashes = 0;
for (let i = 0; i < hclRuns; i++) {
  try {
    decodeHclReport(mutate(hcls[i & 1]!));
    accepted++;
  } catch (e) {
    if (isJoinguardError(e)) rejected++;
    else {
      crashes++;
      if (crashes <= 5) console.error('HCL crash:', e);
    }
  }
}
const t1 = Date.now();
console.log(`A. HCL decoder: ${hclRuns} inputs, ${accepted} decoded, ${rejected} rejected, ${crashes} failures (non-JoinguardError), ${((t1 - t0) / 1000).toFixed(1)} s`);

const sim = await createSimCvm({ tee: 'snp', vtpm: 'software' });
const policy = sim.goodPolicy();
const ctx: AppraisalContext = {
  now: new Date(),
  policy,
  policyRef: { id: policy.name, digest: policyDigest(policy) },
  trust: defaultTrust({ snpTestRootsPem: sim.trust.snpRootsPem }),
  caches: { snpChains: new ChainCache() },
};
const base = await sim.evidence();
type Field = 'report' | 'quote' | 'signature' | 'akPublic' | 'eventLog';
const FIELDS: Field[] = ['report', 'quote', 'signature', 'akPublic', 'eventLog'];
let bundleFailures = 0;
let passes = 0;
let fails = 0;
for (let i = 0; i < bundleRuns; i++) {
  const ev = structuredClone(base) as Evidence;
  const f = FIELDS[rnd(FIELDS.length)]!;
  const get = f === 'report' ? ev.hardware.report : f === 'eventLog' ? ev.eventLog : ev.tpm[f];
  const bytes = Buffer.from(get, 'base64');
  let signedField = true;
  let mutated: Buffer;
  if (rnd(2) === 0) {
    const pos = rnd(bytes.length);
    bytes[pos]! ^= 1 + rnd(255);
    mutated = bytes;
    // bytes no signature or digest covers (see appraise-fuzz.test.ts)
    if ((f === 'report' && pos >= 0x330) || f === 'eventLog') signedField = false;
  } else mutated = bytes.subarray(0, 1 + rnd(bytes.length - 1));
  const v = mutated.toString('base64');
  if (f === 'report') ev.hardware.report = v;
  else if (f === 'eventLog') ev.eventLog = v;
  else ev.tpm[f] = v;
  try {
    const o = await appraiseEvidence(ev, ctx);
    // The engine's memo of parsed logs must not change any outcome: the same bundle with the memo emptied (a
    // log parsed afresh), and again (that log remembered), gives the same checks and boot claims.
    if (f === 'eventLog' || f === 'quote') {
      const seen = JSON.stringify([o.appraisal.checks, o.claims?.boot]);
      forgetKnownLogs();
      const fresh = await appraiseEvidence(ev, ctx);
      const again = await appraiseEvidence(ev, ctx);
      if (JSON.stringify([fresh.appraisal.checks, fresh.claims?.boot]) !== seen || JSON.stringify([again.appraisal.checks, again.claims?.boot]) !== seen) {
        bundleFailures++;
        if (bundleFailures <= 5) console.error(`mutated ${f}: the outcome depends on the memo of parsed logs`);
      }
    }
    if (o.appraisal.verdict === 'pass') {
      passes++;
      if (signedField) {
        bundleFailures++;
        if (bundleFailures <= 5) console.error(`mutated ${f} passed`);
      }
    } else fails++;
  } catch (e) {
    bundleFailures++;
    if (bundleFailures <= 5) console.error('appraisal threw:', e);
  }
}
await sim.close();
const t2 = Date.now();
console.log(`B. appraiseEvidence: ${bundleRuns} mutated bundles, ${fails} failed, ${passes} passed (unsigned bytes only), ${bundleFailures} failures, ${((t2 - t1) / 1000).toFixed(1)} s`);
console.log(`total: ${hclRuns + bundleRuns} inputs, ${crashes + bundleFailures} failures, ${((t2 - t0) / 1000).toFixed(1)} s`);
if (crashes + bundleFailures > 0) process.exitCode = 1;
