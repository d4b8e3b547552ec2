// Long fuzz run of the event log parser, decoders and replay (TPM PC Client logs and CCEL).
// Usage: npx tsx scripts/fuzz-eventlog.ts [runs]   (default 1,000,000; FUZZ_SEED fixes the seed)
// Inputs: mutated real logs (prefixes at event boundaries and whole logs: byte sets, 16/32-bit overwrites
// with boundary values, truncation, insertion, duplication), synthetic crypto-agile logs with random event
// types and contents, and random bytes. A failure is anything but a parsed log or a JoinguardError (crash),
// or an input taking more than 250 ms of CPU (slow; CPU time, since wall time on a shared machine measures
// the scheduler). Memory: peak RSS is reported (inputs are at most ~40 KB).
import { isJoinguardError } from '@joinguard/core';
import { readVector } from '@joinguard/core/testing';
import { EventType, comparePcrs, parseCcel, parseEventLog, replayPcrs, replayRtmrs, summarizeEvent } from '@joinguard/eventlog';
import { buildAgileLog } from '../packages/eventlog/test/helpers.js';
import { fuzzRuns, fuzzSeed, xorshift32 } from './fuzz-common.js';

const runs = fuzzRuns('scripts/fuzz-eventlog.ts');
const seed = fuzzSeed();
const { rnd, below } = xorshift32(seed);

const files = [
  'eventlog/tpm_go_eventlog/arch-linux-workstation.bin',
  'eventlog/tpm_go_eventlog/debian-10.bin',
  'eventlog/tpm_go_eventlog/glinux-alex.bin',
  'eventlog/tpm_go_eventlog/rhel8-uefi.bin',
  'eventlog/tpm_go_eventlog/ubuntu-2104-no-secure-boot.bin',
  'eventlog/crypto_agile_eventlog.bin',
];
const corpus = files.map((f) => {
  const b = readVector(f);
  return { bytes: b, cuts: parseEventLog(b).events.map((e) => e.offset).concat([b.length]) };
});
const ccel = readVector('eventlog/ccel_trustee/CCEL_data_grub.bin');
const ccelUsed = parseCcel(ccel).length;
corpus.push({ bytes: ccel.subarray(0, ccelUsed + 64), cuts: parseCcel(ccel).events.map((e) => e.offset).concat([ccelUsed + 64]) });

const INTERESTING = [0, 1, 2, 3, 4, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 20, 32, 48, 64];
const TYPES = Object.values(EventType);

function mutate(): { kind: string; bytes: Uint8Array } {
  const c = corpus[below(corpus.length)]!;
  // Mostly a prefix of 2..12 events (fast), sometimes the whole log.
  const end = below(10) === 0 ? c.bytes.length : c.cuts[Math.min(c.cuts.length - 1, 2 + below(11))]!;
  const b = Buffer.from(c.bytes.subarray(0, end));
  let out: Buffer = b;
  const n = 1 + below(4);
  for (let i = 0; i < n && out.length > 0; i++) {
    const p = below(out.length);
    switch (below(6)) {
      case 0:
        out[p] = rnd() & 0xff;
        break;
      case 1:
        if (p + 4 <= out.length) out.writeUInt32LE(INTERESTING[below(INTERESTING.length)]! >>> 0, p);
        break;
      case 2:
        if (p + 2 <= out.length) out.writeUInt16LE(INTERESTING[below(INTERESTING.length)]! & 0xffff, p);
        break;
      case 3:
        out = out.subarray(0, p);
        break;
      case 4: {
        const ins = Buffer.alloc(1 + below(16));
        for (let j = 0; j < ins.length; j++) ins[j] = rnd() & 0xff;
        out = Buffer.concat([out.subarray(0, p), ins, out.subarray(p)]);
        break;
      }
      default: {
        const len = Math.min(out.length - p, 1 + below(256));
        out = Buffer.concat([out.subarray(0, p + len), out.subarray(p, p + len), out.subarray(p + len)]);
      }
    }
  }
  return { kind: 'mutated', bytes: out };
}

function synthetic(): { kind: string; bytes: Uint8Array } {
  const algs = [[0x000b], [0x0004, 0x000b], [0x000c], [0x0004, 0x000b, 0x000c]][below(4)]!;
  const events = Array.from({ length: 1 + below(8) }, () => {
    const data = Buffer.alloc(below(96));
    for (let j = 0; j < data.length; j++) data[j] = below(4) === 0 ? rnd() & 0xff : below(3);
    return { pcr: below(4) === 0 ? rnd() : below(24), type: below(5) === 0 ? rnd() : TYPES[below(TYPES.length)]!, data };
  });
  return { kind: 'synthetic', bytes: buildAgileLog(algs, events) };
}

function random(): { kind: string; bytes: Uint8Array } {
  const b = Buffer.alloc(below(600));
  for (let j = 0; j < b.length; j++) b[j] = rnd() & 0xff;
  return { kind: 'random', bytes: b };
}

function exercise(bytes: Uint8Array): string {
  let outcome = 'ok';
  try {
    const log = parseEventLog(bytes);
    for (const e of log.events) summarizeEvent(e);
    const pcrs = replayPcrs(log);
    comparePcrs(log, { sha256: { 0: '00'.repeat(32), 7: (pcrs.sha256?.[7] ?? '11'.repeat(32)) } });
  } catch (e) {
    if (!isJoinguardError(e)) throw e;
    outcome = e.code;
  }
  try {
    replayRtmrs(parseCcel(bytes));
  } catch (e) {
    if (!isJoinguardError(e)) throw e;
  }
  return outcome;
}

const t0 = performance.now();
const mix: Record<string, number> = {};
const outcomes: Record<string, number> = {};
let failures = 0;
const failureKinds = { crash: 0, slow: 0 };
let maxMs = 0;
let peakRss = 0;
const firstFailures: string[] = [];
for (let i = 0; i < runs; i++) {
  const r = below(10);
  const input = r < 7 ? mutate() : r < 9 ? synthetic() : random();
  mix[input.kind] = (mix[input.kind] ?? 0) + 1;
  const t = process.cpuUsage();
  try {
    const o = exercise(input.bytes);
    outcomes[o] = (outcomes[o] ?? 0) + 1;
  } catch (e) {
    failures++;
    failureKinds.crash++;
    if (firstFailures.length < 5) firstFailures.push(`${input.kind} ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)} ${Buffer.from(input.bytes).toString('hex').slice(0, 96)}…`);
  }
  const used = process.cpuUsage(t);
  const ms = (used.user + used.system) / 1000;
  if (ms > maxMs) maxMs = ms;
  if (ms > 250) {
    failures++;
    failureKinds.slow++;
    if (firstFailures.length < 5) firstFailures.push(`${input.kind} slow: ${ms.toFixed(0)} ms, ${input.bytes.length} bytes`);
  }
  if (i % 20000 === 0) {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    process.stderr.write(`\r${i}/${runs}`);
  }
}
const seconds = (performance.now() - t0) / 1000;
process.stderr.write('\n');
const top = Object.entries(outcomes).sort((a, b) => b[1] - a[1]).slice(0, 12);
console.log(`eventlog fuzz: inputs=${runs} failures=${failures} ${JSON.stringify(failureKinds)} time=${seconds.toFixed(1)}s seed=${seed} maxCpuPerInput=${maxMs.toFixed(1)}ms peakRss=${(peakRss / 2 ** 20).toFixed(0)}MiB mix=${JSON.stringify(mix)}`);
console.log(`outcomes: ${top.map(([k, v]) => `${k}=${v}`).join(' ')}`);
for (const f of firstFailures) console.log(`failure: ${f}`);
process.exit(failures === 0 ? 0 : 1);
