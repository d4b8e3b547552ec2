// vitest globalSetup: every test's temporary files (tmpdir()) go into one folder of this run, removed when the
// run ends, instead of the dozens of folders the suite's stores, keys, configs and vTPMs would leave in /tmp.
// Workers are started after this runs, so they inherit TMPDIR; a run that is killed leaves its one folder.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'joinguard-tests-'));
  // As /tmp is: tests run some children as an unprivileged user (a read-only keys folder), whose tools (tsx's
  // cache) make folders of their own in TMPDIR. The folders the tests make in it are 0700 (mkdtemp).
  chmodSync(dir, 0o1777);
  const before = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  return () => {
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
    if (process.env.JOINGUARD_KEEP_TEST_TMP !== '1') rmSync(dir, { recursive: true, force: true });
  };
}
