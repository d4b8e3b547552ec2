#!/usr/bin/env bash
# The project's test command (npm test): build, type-check, lint, then the whole vitest suite.
set -uo pipefail
cd "$(dirname "$0")/.."
set -e
node scripts/build.mjs
npx tsc -p tsconfig.json
npx eslint .
set +e
rm -f test-results.json
npx vitest run --reporter=default --reporter=json --outputFile.json=test-results.json "$@"
status=$?
node scripts/test-summary.mjs test-results.json
exit $status
