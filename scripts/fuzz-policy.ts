// Long property-based fuzz run of policy reading, claims validation, evaluation and learning.
// Usage: npx tsx scripts/fuzz-policy.ts [runs]   (default 1,000,000; FUZZ_SEED to repeat a run)
import { fuzzRuns, fuzzSeed, runInBatches } from './fuzz-common.js';
import { fuzzFixtures, fuzzInput, fuzzProperty } from '../packages/policy/test/fuzz-props.js';

const runs = fuzzRuns('scripts/fuzz-policy.ts');
// Text mutations run over the compact default policy here (YAML parsing dominates the cost per input);
// the CI test mutates the larger example policy as well.
const base = fuzzFixtures();
const fx = { ...base, texts: base.texts.slice(1) };
const seed = fuzzSeed();
const kinds: Record<string, number> = {};
let failures = 0;
const firstFailures: string[] = [];
const { done, seconds } = runInBatches(
  fuzzInput(fx),
  runs,
  seed,
  (input) => {
    kinds[input.kind] = (kinds[input.kind] ?? 0) + 1;
    let ok: boolean;
    let why = 'property returned false';
    try {
      ok = fuzzProperty(fx, input);
    } catch (e) {
      ok = false;
      why = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    }
    if (!ok) {
      failures++;
      if (firstFailures.length < 5) {
        firstFailures.push(`${input.kind}: ${why}: ${JSON.stringify(input).slice(0, 400)}`);
        process.stderr.write(`  failure: ${firstFailures[firstFailures.length - 1]}\n`);
      }
    }
  },
  (n, secs) => `${n} inputs, ${failures} failures, ${secs.toFixed(0)} s`,
);
console.log(`fuzz-policy: ${done} inputs (${Object.entries(kinds).map(([k, v]) => `${k} ${v}`).join(', ')}), ${failures} failures, ${seconds.toFixed(1)} s, seed ${seed}`);
for (const f of firstFailures) console.log(`  failure: ${f}`);
process.exitCode = failures === 0 ? 0 : 1;
