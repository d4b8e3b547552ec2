// Long property-based fuzz run of the SNP decoder and verifier.
// Usage: npx tsx scripts/fuzz-snp.ts [runs]   (default 1,000,000; FUZZ_SEED to repeat a run)
import { fuzzRuns, fuzzSeed, runPropertyFuzz } from './fuzz-common.js';
import { fuzzFixtures, fuzzInput, fuzzProperty } from '../packages/snp/test/fuzz-props.js';

const runs = fuzzRuns('scripts/fuzz-snp.ts');
const fx = fuzzFixtures();
const seed = fuzzSeed();
const r = runPropertyFuzz(fuzzInput(fx), runs, seed, (input) => fuzzProperty(fx, input), (input, why) => `${input.kind} ${why} ${Buffer.from(input.bytes).toString('hex').slice(0, 64)}…`);
console.log(`snp fuzz: inputs=${r.done} failures=${r.failures} time=${r.seconds.toFixed(1)}s seed=${seed} mix=${JSON.stringify(r.kinds)}`);
for (const f of r.firstFailures) console.log(`failure: ${f}`);
process.exit(r.failures === 0 ? 0 : 1);
