import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isJoinguardError } from '@joinguard/core';
import { readVector, codeOf } from '@joinguard/core/testing';
import { EventType, LIMITS, comparePcrs, decodeDevicePath, parseCcel, parseEventLog, replayPcrs, replayRtmrs, summarizeEvent } from '@joinguard/eventlog';
import { decodedMemoUsage } from '../src/decode.js';
import { buildAgileLog } from './helpers.js';

const sep = (pcr: number) => ({ pcr, type: EventType.EV_SEPARATOR, data: new Uint8Array(4) });

describe('hostile logs give typed errors', () => {
  it('empty input', () => expect(codeOf(() => parseEventLog(new Uint8Array()))).toBe('EVENTLOG_EMPTY'));

  it('a huge declared event size is refused before reading', () => {
    const log = Buffer.from(buildAgileLog([0x000b], [sep(0)]));
    log.writeUInt32LE(0xfffffff0, log.length - 8); // eventSize of the separator
    expect(codeOf(() => parseEventLog(new Uint8Array(log)))).toBe('EVENTLOG_EVENT_TOO_LARGE');
  });

  it('zero and oversized digest sizes in the Spec ID event', () => {
    expect(codeOf(() => parseEventLog(buildAgileLog([0x000b], [sep(0)], { digestSizes: { 0x000b: 0 } })))).toBe('EVENTLOG_BAD_DIGEST_SIZE');
    expect(codeOf(() => parseEventLog(buildAgileLog([0x000b], [sep(0)], { digestSizes: { 0x000b: 20 } })))).toBe('EVENTLOG_BAD_DIGEST_SIZE');
  });

  it('an absurd number of algorithms', () => {
    const log = Buffer.from(buildAgileLog([0x000b], []));
    log.writeUInt32LE(0xffffffff, 32 + 24); // numberOfAlgorithms
    expect(codeOf(() => parseEventLog(new Uint8Array(log)))).toBe('EVENTLOG_BAD_SPEC_ID');
  });

  it('a digest for an algorithm the Spec ID event does not declare', () => {
    const log = buildAgileLog([0x000b], [{ ...sep(0), digests: [{ alg: 0x0004, digest: new Uint8Array(20) }] }]);
    expect(codeOf(() => parseEventLog(log))).toBe('EVENTLOG_UNKNOWN_ALGORITHM');
  });

  it('more digests than declared algorithms', () => {
    const log = Buffer.from(buildAgileLog([0x000b], [sep(0)]));
    log.writeUInt32LE(0x7fffffff, log.length - 4 - 4 - 32 - 2 - 4); // digests.count
    expect(codeOf(() => parseEventLog(new Uint8Array(log)))).toBe('EVENTLOG_BAD_DIGEST_COUNT');
  });

  it('the event count is capped', () => {
    const log = buildAgileLog([0x000b], Array.from({ length: 50 }, () => sep(1)));
    expect(codeOf(() => parseEventLog(log, { maxEvents: 20 }))).toBe('EVENTLOG_TOO_MANY_EVENTS');
    expect(parseEventLog(log).events.length).toBe(51);
  });

  it('every truncation of a real log is an error, never a shorter replay', () => {
    const bytes = readVector('eventlog/tpm_go_eventlog/glinux-alex.bin');
    const log = parseEventLog(bytes);
    const boundaries = new Set(log.events.map((e) => e.offset));
    for (let cut = 1; cut < bytes.length; cut += 7) {
      if (boundaries.has(cut)) continue;
      expect(codeOf(() => parseEventLog(bytes.subarray(0, cut)))).toMatch(/^EVENTLOG_(TRUNCATED|BAD_SPEC_ID)$/);
    }
  });

  it('PCR index out of range is refused at replay; CCEL MR index beyond RTMR3 too', () => {
    expect(codeOf(() => replayPcrs(parseEventLog(buildAgileLog([0x000b], [sep(24)]))))).toBe('EVENTLOG_BAD_PCR_INDEX');
    expect(codeOf(() => replayRtmrs(parseCcel(buildAgileLog([0x000c], [sep(5)]))))).toBe('EVENTLOG_BAD_MR_INDEX');
  });

  it('UTF-16 text with unpaired surrogates decodes to well-formed text, U+FFFD in their place', () => {
    // File path node "a<D800>b<DC00>" then the end node.
    const text = Buffer.from([0x61, 0, 0x00, 0xd8, 0x62, 0, 0x00, 0xdc, 0, 0]);
    const node = Buffer.concat([Buffer.from([4, 4, 4 + text.length, 0]), text, Buffer.from([0x7f, 0xff, 4, 0])]);
    const path = decodeDevicePath(node);
    expect(path).toBe('a\ufffdb\ufffd');
    expect((path as unknown as { isWellFormed(): boolean }).isWellFormed()).toBe(true);
  });

  it('a device path node of length 0 cannot loop', () => {
    expect(codeOf(() => decodeDevicePath(new Uint8Array([4, 4, 0, 0, 0x41, 0])))).toBe('EVENTLOG_BAD_DEVICE_PATH');
    const u64 = (v: number): Buffer => {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(BigInt(v));
      return b;
    };
    const data = Buffer.concat([u64(0), u64(0), u64(0), u64(4), Buffer.from([4, 4, 0, 0])]);
    const l = parseEventLog(buildAgileLog([0x000b], [{ pcr: 4, type: EventType.EV_EFI_BOOT_SERVICES_APPLICATION, data }]));
    expect(l.events[1]!.decoded).toMatchObject({ kind: 'malformed', code: 'EVENTLOG_BAD_DEVICE_PATH' });
  });

  it('a malformed EFI variable is reported per event, the log still replays', () => {
    const data = Buffer.concat([Buffer.alloc(16), Buffer.from('ffffffffffffff7f', 'hex'), Buffer.alloc(8)]);
    const l = parseEventLog(buildAgileLog([0x000b], [{ pcr: 7, type: EventType.EV_EFI_VARIABLE_DRIVER_CONFIG, data }]));
    expect(l.events[1]!.decoded).toMatchObject({ kind: 'malformed', code: 'EVENTLOG_BAD_EVENT_DATA' });
    expect(l.events[1]!.digestVerified).toBe(true);
    expect(Object.keys(replayPcrs(l).sha256!)).toEqual(['7']);
  });

  it('StartupLocality: only for PCR 0, only once, only before PCR 0 is extended', () => {
    const loc = (pcr: number) => ({ pcr, type: EventType.EV_NO_ACTION, data: Buffer.concat([Buffer.from('StartupLocality\0', 'latin1'), Buffer.from([3])]), digests: [{ alg: 0x000b, digest: new Uint8Array(32) }] });
    expect(parseEventLog(buildAgileLog([0x000b], [loc(0), sep(0)])).startupLocality).toBe(3);
    expect(codeOf(() => parseEventLog(buildAgileLog([0x000b], [loc(3)])))).toBe('EVENTLOG_BAD_STARTUP_LOCALITY');
    expect(codeOf(() => parseEventLog(buildAgileLog([0x000b], [loc(0), loc(0)])))).toBe('EVENTLOG_BAD_STARTUP_LOCALITY');
    expect(codeOf(() => parseEventLog(buildAgileLog([0x000b], [sep(0), loc(0)])))).toBe('EVENTLOG_BAD_STARTUP_LOCALITY');
  });

  it('a bank an event has no digest for cannot be replayed; a CCEL needs SHA-384 and its own replay', () => {
    const partial = buildAgileLog([0x0004, 0x000b], [sep(0), { ...sep(1), digests: [{ alg: 0x000b, digest: new Uint8Array(32) }] }]);
    expect(codeOf(() => replayPcrs(parseEventLog(partial)))).toBe('EVENTLOG_DIGEST_MISSING');
    expect(codeOf(() => replayRtmrs(parseCcel(buildAgileLog([0x000b], [sep(1)]))))).toBe('EVENTLOG_BANK_MISSING');
    expect(codeOf(() => replayPcrs(parseCcel(buildAgileLog([0x000c], [sep(1)]))))).toBe('EVENTLOG_WRONG_KIND');
    expect(codeOf(() => parseCcel(readVector('eventlog/tpm_go_eventlog/debian-10.bin')))).toBe('EVENTLOG_BAD_FORMAT');
  });

  it('an algorithm the Spec ID event declares but no one can compute is carried, not replayed', () => {
    const log = parseEventLog(
      buildAgileLog([0x000b, 0x7777], [{ ...sep(0), digests: [{ alg: 0x000b, digest: new Uint8Array(32) }, { alg: 0x7777, digest: new Uint8Array(32) }] }], { digestSizes: { 0x7777: 32 } }),
    );
    expect(log.banks).toEqual(['sha256', 'alg_0x7777']);
    expect(Object.keys(replayPcrs(log))).toEqual(['sha256']);
    expect(comparePcrs(log, { alg_0x7777: { 0: '00'.repeat(32) } }).banksNotInLog).toEqual(['alg_0x7777']);
  });

  it('trailing fill is accepted only when asked for, and only as fill', () => {
    const log = buildAgileLog([0x000b], [sep(0)]);
    const padded = new Uint8Array(log.length + 70);
    padded.set(log);
    expect(codeOf(() => parseEventLog(padded))).toBe('EVENTLOG_TRUNCATED');
    expect(parseEventLog(padded, { allowTrailingPadding: true }).events.length).toBe(2);
    // 16 zero bytes are a well-formed record (PCR 0, type 0, no digest, no data); without the option they are
    // events, which then have no digest to replay.
    const zeros = new Uint8Array(log.length + 64);
    zeros.set(log);
    expect(parseEventLog(zeros).events.length).toBe(6);
    expect(codeOf(() => replayPcrs(parseEventLog(zeros)))).toBe('EVENTLOG_DIGEST_MISSING');
    expect(parseEventLog(zeros, { allowTrailingPadding: true }).events.length).toBe(2);
    padded[padded.length - 1] = 1;
    expect(codeOf(() => parseEventLog(padded, { allowTrailingPadding: true }))).toBe('EVENTLOG_TRUNCATED');
  });

  it('quoted PCR values that are not hex of the bank size are refused', () => {
    const l = parseEventLog(buildAgileLog([0x000b], [sep(0)]));
    expect(codeOf(() => comparePcrs(l, { sha256: { 0: 'zz' } }))).toBe('EVENTLOG_BAD_QUOTED_PCR');
  });
});

describe('hostile logs cost time linear in their size', () => {
  // CPU time, not wall time: the suite shares the machine. The bounds are ~20x what these inputs take.
  const cpuMs = (f: () => void): number => {
    const t = process.cpuUsage();
    f();
    const d = process.cpuUsage(t);
    return (d.user + d.system) / 1000;
  };

  it('the most events allowed, each minimal (16 bytes), parse and decode quickly', () => {
    const head = buildAgileLog([0x000b], []);
    const b = new Uint8Array(head.length + (LIMITS.maxEvents - 1) * 16);
    b.set(head); // the rest: events with PCR 0, type 0, no digest, no data
    let n = 0;
    expect(cpuMs(() => (n = parseEventLog(b).events.length))).toBeLessThan(4000);
    expect(n).toBe(LIMITS.maxEvents);
    expect(codeOf(() => parseEventLog(new Uint8Array([...b, ...new Uint8Array(16)])))).toBe('EVENTLOG_TOO_MANY_EVENTS');
  });

  it('a long zero run ending in a stray byte, with allowTrailingPadding, is one scan, not one per event', () => {
    const head = buildAgileLog([0x000b], []);
    const b = new Uint8Array(head.length + 40000 * 16 + 1);
    b.set(head);
    b[b.length - 1] = 1;
    // Quadratic before (a scan of the rest of the buffer at every event): about 8 s of CPU for this input.
    expect(cpuMs(() => expect(codeOf(() => parseEventLog(b, { allowTrailingPadding: true }))).toBe('EVENTLOG_TRUNCATED'))).toBeLessThan(1500);
  });

  it('declared sizes are checked against the bytes present before anything is allocated', () => {
    // A 4 GiB, a 1 MiB and a 2^64 declaration inside a few hundred bytes: refused without reading or copying.
    const big = Buffer.from(buildAgileLog([0x000b], [sep(0)]));
    big.writeUInt32LE(LIMITS.maxEventSize, big.length - 8);
    const before = process.memoryUsage().arrayBuffers;
    expect(codeOf(() => parseEventLog(new Uint8Array(big)))).toBe('EVENTLOG_TRUNCATED');
    const data = Buffer.concat([Buffer.alloc(16), Buffer.from('ffffffffffffffff', 'hex'), Buffer.from('ffffffffffffffff', 'hex')]);
    const l = parseEventLog(buildAgileLog([0x000b], [{ pcr: 7, type: EventType.EV_EFI_VARIABLE_DRIVER_CONFIG, data }]));
    expect(l.events[1]!.decoded).toMatchObject({ kind: 'malformed', code: 'EVENTLOG_BAD_EVENT_DATA' });
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(1 << 20);
  });
});

/** Either a parsed, replayable log or a JoinguardError: nothing else escapes, and it ends quickly. */
function exercise(bytes: Uint8Array): void {
  try {
    const log = parseEventLog(bytes);
    for (const e of log.events) summarizeEvent(e);
    replayPcrs(log);
  } catch (e) {
    if (!isJoinguardError(e)) throw e;
  }
  try {
    replayRtmrs(parseCcel(bytes));
  } catch (e) {
    if (!isJoinguardError(e)) throw e;
  }
}

describe('property-based (bounded)', () => {
  const seeds = [
    readVector('eventlog/tpm_go_eventlog/glinux-alex.bin'),
    readVector('eventlog/tpm_go_eventlog/debian-10.bin'),
    readVector('eventlog/ccel_trustee/CCEL_data_ovmf.bin').subarray(0, 12000),
    buildAgileLog([0x0004, 0x000b], [sep(0), { pcr: 7, type: EventType.EV_EFI_VARIABLE_DRIVER_CONFIG, data: new Uint8Array(40) }]),
  ];

  it('random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), (b) => exercise(b)), { numRuns: 300 });
  });

  it('mutated real logs: byte flips, 32-bit overwrites, truncation', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: seeds.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 2 }), fc.nat({ max: 0xffffffff })), { minLength: 1, maxLength: 4 }),
        fc.option(fc.nat(), { nil: undefined }),
        (s, muts, cut) => {
          const b = Buffer.from(seeds[s]!);
          for (const [pos, kind, v] of muts) {
            const p = pos % b.length;
            if (kind === 0) b[p] = v & 0xff;
            else if (kind === 1 && p + 4 <= b.length) b.writeUInt32LE(v, p);
            else if (p + 4 <= b.length) b.writeUInt32LE(v & 0xffff, p);
          }
          exercise(new Uint8Array(cut === undefined ? b : b.subarray(0, cut % (b.length + 1))));
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('CCEL end of events', () => {
  const log = buildAgileLog([0x000c], [sep(1), sep(2)]);
  it('stops at 0x00 or 0xFF fill, not at a few stray bytes', () => {
    for (const fill of [0x00, 0xff]) {
      const padded = new Uint8Array(log.length + 100).fill(fill);
      padded.set(log);
      expect(parseCcel(padded).events.length).toBe(3);
    }
    const stray = new Uint8Array(log.length + 5);
    stray.set(log);
    stray.set([1, 2, 3, 4, 5], log.length);
    expect(codeOf(() => parseCcel(stray))).toBe('EVENTLOG_TRUNCATED');
  });
});

describe('the memo of decoded events stays bounded under logs of one-off events', () => {
  it('thousands of distinct small events: at most maxEntries remembered, and a recurring event still decodes right', () => {
    const text = (i: number) => new Uint8Array(Buffer.from(`one-off action ${i}`, 'latin1'));
    const n = decodedMemoUsage().maxEntries + 500;
    const log = parseEventLog(buildAgileLog([0x000b], Array.from({ length: n }, (_, i) => ({ pcr: 4, type: EventType.EV_EFI_ACTION, data: text(i) }))));
    expect(log.events.length).toBe(n + 1);
    expect(log.events.every((e, i) => i === 0 || (e.decoded.kind === 'action' && e.decoded.text === `one-off action ${i - 1}` && e.digestVerified === true))).toBe(true);
    expect(decodedMemoUsage().entries).toBeLessThanOrEqual(decodedMemoUsage().maxEntries);
  });

  it('large distinct events: the bytes held stay under maxBytes', () => {
    const { maxBytes } = decodedMemoUsage();
    // 60 KiB events with distinct content, more of them than maxBytes can hold.
    const count = Math.ceil(maxBytes / (3 * 60 * 1024)) + 20;
    for (let i = 0; i < count; i += 10) {
      const events = Array.from({ length: 10 }, (_, j) => ({ pcr: 4, type: EventType.EV_EFI_ACTION, data: new Uint8Array(60 * 1024).fill(0x41 + ((i + j) % 26)).map((x, k) => (k < 4 ? (i + j) >> (8 * k) : x)) }));
      parseEventLog(buildAgileLog([0x000b], events), { maxEventSize: 64 * 1024 });
      expect(decodedMemoUsage().bytes).toBeLessThanOrEqual(maxBytes);
    }
    expect(decodedMemoUsage().bytes).toBeGreaterThan(maxBytes / 2);
  });
});
