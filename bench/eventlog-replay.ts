// Event log replay throughput over the vector logs, next to tpm2_eventlog (tpm2-tools) on the same logs.
// Usage: npx tsx bench/eventlog-replay.ts [seconds-per-round]
// joinguard is timed in-process (parse + decode + digest checks + replay of every bank, and parse + replay
// without decoding); tpm2_eventlog is a separate process per log, so its figure includes process start and
// YAML output: that is how a script would use it. Its per-process floor is measured with `tpm2_eventlog --version`.
// The same logs are parsed round after round, so after the first their events' decodings and PCR extends come
// from the eventlog package's memos, as they do for the nodes of a pool that boot one image.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readVector, vectorPath } from '@joinguard/core/testing';
import { parseCcel, parseEventLog, replayPcrs, replayRtmrs } from '@joinguard/eventlog';

const seconds = Number(process.argv[2] ?? 2);
const TPM = ['arch-linux-workstation', 'debian-10', 'glinux-alex', 'rhel8-uefi', 'ubuntu-2104-no-secure-boot'].map((n) => `eventlog/tpm_go_eventlog/${n}.bin`);
const CCEL = ['eventlog/ccel_trustee/CCEL_data.bin', 'eventlog/ccel_trustee/CCEL_data_grub.bin', 'eventlog/ccel_trustee/CCEL_data_ovmf.bin', 'tdx/gotdxguest_cos113_v4_ccel/ccel_data.bin'];

function round(fn: () => void): { iters: number; secs: number } {
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  let iters = 0;
  while (performance.now() < end) {
    fn();
    iters++;
  }
  return { iters, secs: (performance.now() - t0) / 1000 };
}

function report(label: string, logs: number, bytes: number, r: { iters: number; secs: number }): void {
  const logsPerSec = (r.iters * logs) / r.secs;
  const mbPerSec = (r.iters * bytes) / r.secs / 1e6;
  console.log(`${label.padEnd(58)} ${logsPerSec.toFixed(0).padStart(8)} logs/s ${mbPerSec.toFixed(1).padStart(8)} MB/s`);
}

const tpmLogs = TPM.map((p) => readVector(p));
const tpmBytes = tpmLogs.reduce((n, b) => n + b.length, 0);
const ccelLogs = CCEL.map((p) => readVector(p));
const ccelUsed = ccelLogs.map((b) => parseCcel(b).length);
const ccelBytes = ccelUsed.reduce((n, b) => n + b, 0);
const events = tpmLogs.reduce((n, b) => n + parseEventLog(b).events.length, 0);

console.log(`node ${process.version}; ${TPM.length} TPM logs, ${tpmBytes} bytes, ${events} events; ${CCEL.length} CCELs, ${ccelBytes} bytes of events (regions ${ccelLogs.reduce((n, b) => n + b.length, 0)} bytes)`);
console.log(`${seconds}s per round`);

report('joinguard TPM logs: parse+decode+digest checks+replay', TPM.length, tpmBytes, round(() => {
  for (const b of tpmLogs) replayPcrs(parseEventLog(b));
}));
report('joinguard TPM logs: parse+replay (decode: false)', TPM.length, tpmBytes, round(() => {
  for (const b of tpmLogs) replayPcrs(parseEventLog(b, { decode: false }));
}));
report('joinguard CCELs: parse+decode+replay RTMRs (MB = event bytes)', CCEL.length, ccelBytes, round(() => {
  for (const b of ccelLogs) replayRtmrs(parseCcel(b));
}));

// tpm2_eventlog on the same TPM logs, one process per log as a user runs it.
const version = execFileSync('tpm2_eventlog', ['--version'], { encoding: 'utf8' }).trim();
const dir = mkdtempSync(join(tmpdir(), 'jg-bench-'));
TPM.forEach((p, i) => writeFileSync(join(dir, `${i}.bin`), tpmLogs[i]!));
report(`tpm2_eventlog (${/version="([^"]+)"/.exec(version)?.[1] ?? '?'}) TPM logs, process per log`, TPM.length, tpmBytes, round(() => {
  for (let i = 0; i < TPM.length; i++) {
    const r = spawnSync('tpm2_eventlog', [join(dir, `${i}.bin`)], { stdio: ['ignore', 'ignore', 'ignore'] });
    if (r.status !== 0) throw new Error(`tpm2_eventlog failed on ${TPM[i]}`);
  }
}));
report('tpm2_eventlog --version (process start floor, no log)', TPM.length, 0, round(() => {
  for (let i = 0; i < TPM.length; i++) spawnSync('tpm2_eventlog', ['--version'], { stdio: 'ignore' });
}));
console.log(`(vectors from ${vectorPath('')})`);
