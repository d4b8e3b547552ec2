// Bundles each service entry point with esbuild. Workspace packages (@joinguard/*) are TypeScript
// sources and are bundled in; third-party packages stay external and load from node_modules.
import { build } from 'esbuild';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

const entries = [
  { in: 'services/cli/src/entry.ts', out: 'services/cli/dist/joinguard.js' },
].filter((e) => existsSync(e.in));

const externalThirdParty = {
  name: 'external-third-party',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith('@joinguard/')) return undefined;
      return { path: args.path, external: true };
    });
  },
};

// Tests build the CLI in their set-up while other test files may be running it: each output is written to a
// temporary file and renamed into place, so a reader never sees a half-written bundle.
for (const e of entries) {
  const result = await build({
    entryPoints: [e.in],
    outfile: e.out,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: true,
    logLevel: 'warning',
    plugins: [externalThirdParty],
    write: false,
  });
  for (const f of result.outputFiles) {
    mkdirSync(dirname(f.path), { recursive: true });
    const tmp = `${f.path}.${process.pid}.tmp`;
    writeFileSync(tmp, f.contents);
    renameSync(tmp, f.path);
  }
}
console.log(`built ${entries.map((e) => e.out).join(', ')}`);
