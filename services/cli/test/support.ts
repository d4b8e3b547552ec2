// Runs the bundled joinguard command as a user would, and reads its JSON.
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '@joinguard/core/testing';

export interface CliRun {
  code: number;
  json: Record<string, unknown> | undefined;
  stdout: string;
  stderr: string;
}

export function cli(...args: string[]): CliRun {
  const r = spawnSync(process.execPath, [join(repoRoot, 'services/cli/bin/joinguard.js'), ...args], { encoding: 'utf8' });
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(r.stdout) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  return { code: r.status ?? -1, json, stdout: r.stdout, stderr: r.stderr };
}

export const errCode = (j: Record<string, unknown> | undefined): string | undefined => (j?.error as { code?: string } | undefined)?.code;

/** Bundles the CLI (atomic writes, so parallel test files may do this at once). */
export function buildCli(): void {
  execFileSync(process.execPath, [join(repoRoot, 'scripts/build.mjs')], { cwd: repoRoot });
}
