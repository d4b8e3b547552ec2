// Long property-based fuzz run of the SNP decoder and verifier.
// Usage: npx tsx scripts/fuzz-snp.ts [runs]   (default 1,000,000)
import { fuzzRuns, fuzzSeed, runInBatches } from './fuzz-common.js';
import { fuzzFixtures, fuzzInput, fuzzProperty } from '../packages/snp/test/fuzz-props.js';

const runs = fuzzRuns('scripts/fuzz-snp.ts');
const fx = fuzzFixtures();
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
      if (firstFailures.length < 5) firstFailures.push(`${input.kind} ${why} ${Buffer.from(input.bytes).toString('hex').slice(0, 64)}…`);
    }
  },
  (n, secs) => `${n}/${runs} inputs, ${failures} failures, ${secs.toFixed(0)} s`,
);
console.log(`snp fuzz: inputs=${done} failures=${failures} time=${seconds.toFixed(1)}s seed=${seed} mix=${JSON.stringify(kinds)}`);
for (const f of firstFailures) console.log(`failure: ${f}`);
process.exit(failures === 0 ? 0 : 1);
