// Long property-based fuzz run of policy reading, claims validation, evaluation and learning.
// Usage: npx tsx scripts/fuzz-policy.ts [runs]   (default 1,000,000; FUZZ_SEED to repeat a run)
import { fuzzRuns, fuzzSeed, runPropertyFuzz } from './fuzz-common.js';
import { fuzzFixtures, fuzzInput, fuzzProperty } from '../packages/policy/test/fuzz-props.js';

const runs = fuzzRuns('scripts/fuzz-policy.ts');
// Text mutations run over the compact default policy here (YAML parsing dominates the cost per input);
// the CI test mutates the larger example policy as well.
const base = fuzzFixtures();
const fx = { ...base, texts: base.texts.slice(1) };
const seed = fuzzSeed();
const r = runPropertyFuzz(fuzzInput(fx), runs, seed, (input) => fuzzProperty(fx, input), (input, why) => `${input.kind}: ${why}: ${JSON.stringify(input).slice(0, 400)}`);
console.log(`fuzz-policy: ${r.done} inputs (${Object.entries(r.kinds).map(([k, v]) => `${k} ${v}`).join(', ')}), ${r.failures} failures, ${r.seconds.toFixed(1)} s, seed ${seed}`);
for (const f of r.firstFailures) console.log(`  failure: ${f}`);
process.exitCode = r.failures === 0 ? 0 : 1;
