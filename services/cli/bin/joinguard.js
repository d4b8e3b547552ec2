#!/usr/bin/env node
// The CLI is bundled by scripts/build.mjs (run by `npm install` through the root `prepare` script).
import { existsSync } from 'node:fs';

const bundle = new URL('../dist/joinguard.js', import.meta.url);
if (!existsSync(bundle)) {
  process.stderr.write('joinguard: the CLI is not built yet; run `npm run build` in the repository root\n');
  process.exit(2);
}
await import(bundle.href);
