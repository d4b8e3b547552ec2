// What every long fuzz script shares: its arguments, a reproducible seed, a small PRNG, and a fast-check
// runner that goes in batches (progress on stderr) and never stops or shrinks at a failing input, so that
// a run counts all of them.
import fc from 'fast-check';

/** `[runs]` from the command line (default 1,000,000); exits 2 with a usage line when it is not a count. */
export function fuzzRuns(script: string): number {
  const runs = Number(process.argv[2] ?? 1_000_000);
  if (!Number.isSafeInteger(runs) || runs <= 0) {
    console.error(`usage: npx tsx ${script} [runs]`);
    process.exit(2);
  }
  return runs;
}

/** FUZZ_SEED repeats a run; otherwise a seed from the clock, printed by each script. */
export function fuzzSeed(): number {
  return Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
}

/** xorshift32: fast and reproducible from the seed. */
export function xorshift32(seed: number): { rnd: () => number; below: (n: number) => number } {
  let s = seed >>> 0 || 1;
  const rnd = (): number => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
  return { rnd, below: (n) => rnd() % n };
}

/**
 * Runs `check` on `runs` inputs drawn from `arb`, 50,000 per fast-check batch (batch k seeded with seed + k·50,000).
 * `check` records its own failures; `progress` says what to print after each batch. Returns the inputs run
 * and the seconds taken.
 */
export function runInBatches<T>(arb: fc.Arbitrary<T>, runs: number, seed: number, check: (input: T) => void, progress: (done: number, seconds: number) => string): { done: number; seconds: number } {
  const t0 = process.hrtime.bigint();
  const seconds = () => Number(process.hrtime.bigint() - t0) / 1e9;
  const batch = 50_000;
  let done = 0;
  while (done < runs) {
    const n = Math.min(batch, runs - done);
    const result = fc.check(
      fc.property(arb, (input) => {
        check(input);
        return true;
      }),
      { numRuns: n, seed: seed + done },
    );
    if (result.failed) throw new Error(`fast-check itself failed: ${String(result.errorInstance)}`);
    done += n;
    process.stderr.write(`  ${progress(done, seconds())}\n`);
  }
  return { done, seconds: seconds() };
}

export interface PropertyFuzzResult {
  done: number;
  seconds: number;
  failures: number;
  /** inputs run, per input kind */
  kinds: Record<string, number>;
  /** the first five failures, each as `describe(input)` with why the property failed */
  firstFailures: string[];
}

/**
 * Runs a boolean property over `runs` inputs that carry a `kind`: counts the kinds, treats a throw as a failure
 * (with its message) and keeps the first five failures, printed to stderr as they happen.
 */
export function runPropertyFuzz<T extends { kind: string }>(
  arb: fc.Arbitrary<T>,
  runs: number,
  seed: number,
  property: (input: T) => boolean,
  describe: (input: T, why: string) => string,
): PropertyFuzzResult {
  const kinds: Record<string, number> = {};
  const firstFailures: string[] = [];
  let failures = 0;
  const { done, seconds } = runInBatches(
    arb,
    runs,
    seed,
    (input) => {
      kinds[input.kind] = (kinds[input.kind] ?? 0) + 1;
      let ok: boolean;
      let why = 'property returned false';
      try {
        ok = property(input);
      } catch (e) {
        ok = false;
        why = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
      }
      if (!ok) {
        failures++;
        if (firstFailures.length < 5) {
          firstFailures.push(describe(input, why));
          process.stderr.write(`  failure: ${firstFailures[firstFailures.length - 1]}\n`);
        }
      }
    },
    (n, secs) => `${n}/${runs} inputs, ${failures} failures, ${secs.toFixed(0)} s`,
  );
  return { done, seconds, failures, kinds, firstFailures };
}
