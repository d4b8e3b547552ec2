import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '@joinguard/core/testing';
import { tamperedCopy, useRecordsFixture, type RecordsFixture } from './records-fixture.js';

/*
 * A reader that goes away before the CLI has printed everything (`joinguard audit list --json | head -c 10`):
 * the process ends quietly, with the exit code of what it found (0 for a listing), not with Node's EPIPE stack
 * trace and exit 1, which the CLI contract keeps for rejected evidence. A stdout whose writes fail (/dev/full:
 * ENOSPC, a full disk under `> report.json`) did lose output: one line on stderr, and a success ends 2, not 0.
 */

const BIN = join(repoRoot, 'services/cli/bin/joinguard.js');
let dir: string;
let fx: RecordsFixture;

/** Runs the CLI with `stdout` as its standard output (a pipe whose reading end is closed at once, or a file). */
function withStdout(stdout: 'closed' | number, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', stdout === 'closed' ? 'pipe' : stdout, 'pipe'] });
    child.stdout?.destroy();
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

/** Runs the CLI with a stdout whose reading end is closed at once, before the CLI writes anything. */
const withClosedStdout = (...args: string[]) => withStdout('closed', args);

/** Runs the CLI with stdout on /dev/full, where every write fails with ENOSPC (a full disk under `> file`). */
async function withFullStdout(...args: string[]): Promise<{ code: number | null; stderr: string }> {
  const fd = openSync('/dev/full', 'w');
  try {
    return await withStdout(fd, args);
  } finally {
    closeSync(fd);
  }
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

const ENOSPC_LINE = /^joinguard: cannot write to stdout: ENOSPC[^\n]*\n$/;

describe.skipIf(!existsSync('/dev/full'))('a stdout that cannot be written (/dev/full: ENOSPC)', () => {
  it.each([
    ['audit list --json (1.2 MB)', () => ['audit', 'list', '--store', fx.store, '--json']],
    ['audit list (text)', () => ['audit', 'list', '--store', fx.store]],
    ['audit verify --json', () => ['audit', 'verify', '--store', fx.store, '--keys', fx.keysDir, '--json']],
    ['audit verify (text)', () => ['audit', 'verify', '--store', fx.store, '--keys', fx.keysDir]],
    ['policy default', () => ['policy', 'default']],
    ['--help', () => ['--help']],
  ])('%s, which succeeded: exit 2 and one line on stderr, no stack trace', async (_what, args) => {
    const r = await withFullStdout(...args());
    expect(r.stderr).toMatch(ENOSPC_LINE);
    expect(r.code).toBe(2);
  });

  it('a rejection keeps its exit 1, and unusable input its exit 2, each with the line on stderr', async () => {
    const copy = tamperedCopy(fx.store, dir, "UPDATE records SET jws = 'garbage' WHERE log = 'appraisals' AND seq = 1");
    const rejected = await withFullStdout('audit', 'verify', '--store', copy, '--keys', fx.keysDir, '--json');
    expect(rejected.stderr).toMatch(ENOSPC_LINE);
    expect(rejected.code).toBe(1);
    const unusable = await withFullStdout('audit', 'verify', '--store', copy, '--json');
    expect(unusable.stderr).toMatch(/--keys DIR/);
    expect(unusable.stderr).toMatch(/^joinguard: cannot write to stdout: ENOSPC/m);
    expect(unusable.stderr).not.toMatch(/\n\s+at /);
    expect(unusable.code).toBe(2);
  });
});
