// Long fuzz run of a whole verifier over HTTP (services/verifier/test/support/http-fuzz.ts): mutated evidence
// to /v1/attest, mutated results to the key broker, mutated record queries, for a simulated SNP and a simulated
// TDX node, in batches of 1,000 inputs (each batch then checks the store's chains and that every appraisal
// record is one a 200 named). A failure is a broken invariant, listed at the end; the exit code is 1 if any.
// Run: npx tsx scripts/fuzz-http.ts [runs per tee=10000]   (FUZZ_SEED repeats a run)
import { fuzzRuns, fuzzSeed } from './fuzz-common.js';
import { fuzzVerifier, type FuzzTally } from '../services/verifier/test/support/http-fuzz.js';
import { simHarness } from '../services/verifier/test/support/sim-verifier.js';

const runs = process.argv[2] === undefined ? 10_000 : fuzzRuns('scripts/fuzz-http.ts');
const seed = fuzzSeed();
const BATCH = 1_000;
console.error(`fuzz-http: ${runs} inputs per tee, seed ${seed}`);

const add = (into: Record<string, number>, from: Record<string, number>) => {
  for (const [k, n] of Object.entries(from)) into[k] = (into[k] ?? 0) + n;
};

let failed = false;
for (const tee of ['snp', 'tdx'] as const) {
  const h = await simHarness({ tee, edit: (c) => ({ ...c, rateLimit: { attestPerMinute: 1_000_000_000 } }) });
  const total: FuzzTally = { inputs: 0, statuses: {}, outcomes: {}, problems: [], slowestMs: 0 };
  const t0 = performance.now();
  try {
    for (let done = 0, batch = 0; done < runs; done += BATCH, batch++) {
      const t = await fuzzVerifier(h, Math.min(BATCH, runs - done), seed + 7919 * batch + (tee === 'tdx' ? 1 : 0));
      total.inputs += t.inputs;
      add(total.statuses, t.statuses);
      add(total.outcomes, t.outcomes);
      total.problems.push(...t.problems);
      total.slowestMs = Math.max(total.slowestMs, t.slowestMs);
      console.error(`  ${tee}: ${total.inputs} inputs, ${total.problems.length} problems`);
    }
  } finally {
    await h.close();
  }
  const s = (performance.now() - t0) / 1000;
  console.log(`${tee}: ${total.inputs} inputs in ${s.toFixed(0)} s, slowest answer ${total.slowestMs.toFixed(0)} ms`);
  console.log(`  statuses ${JSON.stringify(total.statuses)}`);
  console.log(`  outcomes ${JSON.stringify(total.outcomes)}`);
  for (const p of total.problems) console.log(`  PROBLEM ${p}`);
  if (total.problems.length > 0) failed = true;
}
process.exit(failed ? 1 : 0);
