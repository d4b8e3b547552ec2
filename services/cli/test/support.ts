// Runs the bundled joinguard command as a user would, and reads its JSON.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '@joinguard/core/testing';

export interface CliRun {
  code: number;
  json: Record<string, unknown> | undefined;
  stdout: string;
  stderr: string;
}

const BIN = join(repoRoot, 'services/cli/bin/joinguard.js');

function parsed(code: number | null, stdout: string, stderr: string): CliRun {
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(stdout) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  return { code: code ?? -1, json, stdout, stderr };
}

export function cli(...args: string[]): CliRun {
  return cliWith({}, ...args);
}

/** The same, with options for node itself (`--import` of a test hook) and variables added to the environment. */
export function cliWith(o: { nodeArgs?: string[]; env?: Record<string, string> }, ...args: string[]): CliRun {
  const r = spawnSync(process.execPath, [...(o.nodeArgs ?? []), BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...o.env } });
  return parsed(r.status, r.stdout, r.stderr);
}

/**
 * The same, without blocking the event loop: for commands that talk to a verifier running in this process
 * (spawnSync would stall the verifier the child is waiting for).
 */
export function cliAsync(...args: string[]): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code) => resolve(parsed(code, stdout, stderr)));
  });
}

export const errCode = (j: Record<string, unknown> | undefined): string | undefined => (j?.error as { code?: string } | undefined)?.code;

/** Bundles the CLI (atomic writes, so parallel test files may do this at once). */
export function buildCli(): void {
  execFileSync(process.execPath, [join(repoRoot, 'scripts/build.mjs')], { cwd: repoRoot });
}
