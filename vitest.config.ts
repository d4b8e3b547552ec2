import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'services/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Parsers and crypto are CPU-bound; two workers match the two-core CI machine.
    maxWorkers: 2,
    // One temporary folder per run, removed at its end (JOINGUARD_KEEP_TEST_TMP=1 keeps it for a post-mortem).
    globalSetup: ['scripts/vitest-tmpdir.ts'],
  },
});
