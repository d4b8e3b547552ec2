import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '@joinguard/core/testing';
import { tamperedCopy, useRecordsFixture, type RecordsFixture } from './records-fixture.js';

/*
 * A reader that goes away before the CLI has printed everything (`joinguard audit list --json | head -c 10`):
 * the process ends quietly, with the exit code of what it found (0 for a listing), not with Node's EPIPE stack
 * trace and exit 1, which the CLI contract keeps for rejected evidence.
 */

const BIN = join(repoRoot, 'services/cli/bin/joinguard.js');
let dir: string;
let fx: RecordsFixture;

/** Runs the CLI with a stdout whose reading end is closed at once, before the CLI writes anything. */
function withClosedStdout(...args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

// Large enough (≈ 1.2 MB of JSON) that the output cannot all sit in a pipe's buffer when `head` leaves.
useRecordsFixture(
  'jg-cli-closed-stdout-',
  (d, f) => {
    dir = d;
    fx = f;
  },
  { bodyBytes: 400_000 },
);

describe('a closed stdout (EPIPE)', () => {
  it('audit list --json | head -c 10: head gets its 10 bytes, joinguard exits 0 with nothing on stderr', () => {
    const script = `set -o pipefail; "${process.execPath}" "${BIN}" audit list --store "${fx.store}" --json 2>"${dir}/stderr" | head -c 10`;
    const r = spawnSync('bash', ['-c', script], { encoding: 'utf8' });
    expect(r.stdout).toBe('{\n  "recor');
    expect(readFileSync(join(dir, 'stderr'), 'utf8')).toBe('');
    expect(r.status).toBe(0);
  });

  it.each([
    ['audit list --json', () => ['audit', 'list', '--store', fx.store, '--json']],
    ['audit list (text)', () => ['audit', 'list', '--store', fx.store]],
    ['audit show --json', () => ['audit', 'show', fx.made.appraisals![0]!.record.id, '--store', fx.store, '--json']],
    ['audit verify --json', () => ['audit', 'verify', '--store', fx.store, '--keys', fx.keysDir, '--json']],
    ['policy default', () => ['policy', 'default']],
  ])('%s: exit 0, quietly', async (_what, args) => {
    const r = await withClosedStdout(...args());
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('a rejection keeps its exit 1, and unusable input its exit 2: a closed stdout changes no outcome', async () => {
    const copy = tamperedCopy(fx.store, dir, "UPDATE records SET jws = 'garbage' WHERE log = 'appraisals' AND seq = 1");
    const rejected = await withClosedStdout('audit', 'verify', '--store', copy, '--keys', fx.keysDir, '--json');
    expect(rejected.stderr).toBe('');
    expect(rejected.code).toBe(1);
    const unusable = await withClosedStdout('audit', 'verify', '--store', copy, '--json');
    expect(unusable.stderr).not.toMatch(/\n\s+at |EPIPE/);
    expect(unusable.stderr).toMatch(/--keys DIR/);
    expect(unusable.code).toBe(2);
  });
});
