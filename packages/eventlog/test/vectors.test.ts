import { describe, expect, it } from 'vitest';
import { expectedDecodedFields, readVector, readVectorText, vectorPath } from '@joinguard/core/testing';
import { isJoinguardError } from '@joinguard/core';
import { EventType, parseCcel, parseEventLog, replayPcrs, replayRtmrs } from '@joinguard/eventlog';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CCEL_LOGS, TPM_LOGS, manifestEventCounts, tpm2Eventlog, tpmLogPath } from './helpers.js';

/** go-eventlog's extract_test.go names its logs; the vector files are named after the source files. */
const RAW_TO_FILE: Record<string, string> = {
  Rhel8EventLog: 'rhel8-uefi',
  Ubuntu2104NoSecureBootEventLog: 'ubuntu-2104-no-secure-boot',
  GlinuxAlexEventLog: 'glinux-alex',
  ArchLinuxWorkstationEventLog: 'arch-linux-workstation',
  Debian10EventLog: 'debian-10',
};

const expectedPcrs = JSON.parse(readVectorText('eventlog/tpm_go_eventlog/expected_pcrs.from_extract_test.json')) as Record<string, { raw: string; banks: Record<string, Record<string, string>> }>;
const expectedRtmrs = JSON.parse(readVectorText('eventlog/ccel_trustee/expected_rtmrs.from_lib_rs_test.json')) as Record<string, string[]>;
const counts = manifestEventCounts(readVectorText('MANIFEST.md'));

describe('TPM event logs replay to the PCRs go-eventlog asserts', () => {
  const cases = Object.entries(expectedPcrs);
  it('covers every vector log', () => {
    expect(new Set(cases.map(([, v]) => RAW_TO_FILE[v.raw]))).toEqual(new Set(TPM_LOGS));
  });
  for (const [name, exp] of cases) {
    it(`${name} (${RAW_TO_FILE[exp.raw]}.bin)`, () => {
      const log = parseEventLog(readVector(`eventlog/tpm_go_eventlog/${RAW_TO_FILE[exp.raw]}.bin`));
      const pcrs = replayPcrs(log);
      let checked = 0;
      for (const [bank, values] of Object.entries(exp.banks)) {
        for (const [pcr, hex] of Object.entries(values)) {
          expect(pcrs[bank.toLowerCase()]?.[Number(pcr)], `${bank} PCR ${pcr}`).toBe(hex.toLowerCase());
          checked++;
        }
      }
      expect(checked).toBeGreaterThan(0);
    });
  }
});

describe('event counts match MANIFEST.md', () => {
  it('lists the files', () => expect(counts.size).toBeGreaterThanOrEqual(9));
  for (const [file, n] of counts) {
    it(file, () => {
      const bytes = readVector(file);
      const log = file.includes('ccel') ? parseCcel(bytes) : parseEventLog(bytes);
      expect(log.events.length).toBe(n);
      const line = readVectorText('MANIFEST.md').split('\n').find((l) => l.includes(file + ':'))!;
      expect(line).toContain(`format ${log.format}`);
      for (const bank of log.banks) expect(line).toContain(`'${bank}'`);
    });
  }
});

describe('CCEL replays to the RTMRs', () => {
  for (const name of CCEL_LOGS) {
    it(`${name} matches trustee's lib.rs test`, () => {
      const r = replayRtmrs(parseCcel(readVector(`eventlog/ccel_trustee/${name}.bin`)));
      expect([r.rtmr0, r.rtmr1, r.rtmr2, r.rtmr3]).toEqual(expectedRtmrs[name]);
    });
  }
  it('gotdxguest cos113 ccel_data.bin gives the RTMRs of the quote it came with', () => {
    const body = expectedDecodedFields()['tdx/gotdxguest_cos113_v4_ccel/quote.dat']!.body as Record<string, string>;
    const log = parseCcel(readVector('tdx/gotdxguest_cos113_v4_ccel/ccel_data.bin'));
    expect(log.events.length).toBe(44); // MANIFEST: "44 events"
    expect(replayRtmrs(log)).toEqual({ rtmr0: body.rtmr0, rtmr1: body.rtmr1, rtmr2: body.rtmr2, rtmr3: body.rtmr3 });
  });
});

describe('crypto_agile_eventlog.bin and the derived truncated log', () => {
  it('parses the go-attestation crypto-agile log', () => {
    const log = parseEventLog(readVector('eventlog/crypto_agile_eventlog.bin'));
    expect(log.format).toBe('crypto-agile');
    expect(Object.keys(replayPcrs(log))).toEqual(['sha256']);
  });
  it('rejects rhel8-uefi_truncated_20000.bin instead of a partial replay', () => {
    let err: unknown;
    try {
      replayPcrs(parseEventLog(readVector('eventlog/derived/rhel8-uefi_truncated_20000.bin')));
    } catch (e) {
      err = e;
    }
    expect(isJoinguardError(err) && err.code).toBe('EVENTLOG_TRUNCATED');
    expect(isJoinguardError(err) && err.details.event).toBe(14);
  });
});

describe('agreement with tpm2_eventlog (tpm2-tools) on the same files', () => {
  // tpm2_eventlog ignores the locality of the StartupLocality event, so where a log has one its PCR 0 is
  // wrong (MANIFEST.md "Note on tpm2-tools"). These are the only disagreements allowed, named here.
  const KNOWN_TPM2_TOOLS_WRONG: Record<string, string[]> = { 'glinux-alex': ['sha1/0', 'sha256/0'] };

  for (const name of TPM_LOGS) {
    it(`${name}.bin`, () => {
      const log = parseEventLog(readVector(`eventlog/tpm_go_eventlog/${name}.bin`));
      const ours = replayPcrs(log);
      const theirs = tpm2Eventlog(tpmLogPath(name));
      expect(Object.keys(theirs).sort()).toEqual(Object.keys(ours).sort());
      const differ: string[] = [];
      for (const [bank, values] of Object.entries(ours)) {
        expect(Object.keys(theirs[bank]!).sort()).toEqual(Object.keys(values).sort());
        for (const [pcr, hex] of Object.entries(values)) if (theirs[bank]![Number(pcr)] !== hex) differ.push(`${bank}/${pcr}`);
      }
      expect(differ).toEqual(KNOWN_TPM2_TOOLS_WRONG[name] ?? []);
      if (differ.length) {
        // The explanation holds: replayed from zero, with the StartupLocality event's (zero) digest extended
        // like any other event, our replay gives exactly tpm2_eventlog's PCR 0.
        expect(log.startupLocality).toBe(3);
        const events = log.events.map((e) => (e.decoded.kind === 'startupLocality' ? { ...e, eventType: EventType.EV_POST_CODE } : e));
        const noLocality = replayPcrs({ ...log, events, startupLocality: undefined });
        for (const d of differ) {
          const [bank, pcr] = d.split('/') as [string, string];
          expect(noLocality[bank]![Number(pcr)]).toBe(theirs[bank]![Number(pcr)]);
        }
      }
    });
  }

  it('crypto_agile_eventlog.bin (go-attestation; MANIFEST gives no PCRs, so tpm2_eventlog is the reference)', () => {
    const ours = replayPcrs(parseEventLog(readVector('eventlog/crypto_agile_eventlog.bin')));
    const theirs = tpm2Eventlog(vectorPath('eventlog/crypto_agile_eventlog.bin'));
    expect(Object.keys(ours.sha256!).length).toBeGreaterThanOrEqual(8);
    expect(theirs).toEqual(ours);
  });

  const KNOWN_HEADER_MR_INDEX: Record<string, number> = { CCEL_data_grub: 1, CCEL_data_ovmf: 1, cos113: 1 };
  const ccels: [string, string][] = [...CCEL_LOGS.map((n): [string, string] => [n, `eventlog/ccel_trustee/${n}.bin`]), ['cos113', 'tdx/gotdxguest_cos113_v4_ccel/ccel_data.bin']];
  for (const [name, path] of ccels) {
    it(`${path} (CCEL, MR index n = RTMR n-1)`, () => {
      const bytes = readVector(path);
      const log = parseCcel(bytes);
      // tpm2_eventlog does not know CCEL padding and fails on the zero fill, so it gets the used part only.
      // It also refuses a header event whose index is not 0, which CCEL_data_grub and CCEL_data_ovmf have
      // (MR index 1); the header is never extended, so its index is set to 0 in the copy.
      const copy = Buffer.from(bytes.subarray(0, log.length));
      const headerIndex = copy.readUInt32LE(0);
      expect(headerIndex).toBe(KNOWN_HEADER_MR_INDEX[name] ?? 0);
      copy.writeUInt32LE(0, 0);
      const f = join(mkdtempSync(join(tmpdir(), 'jg-ccel-')), `${name}.bin`);
      writeFileSync(f, copy);
      const theirs = tpm2Eventlog(f).sha384!;
      const r = replayRtmrs(log);
      const rtmrs = [r.rtmr0, r.rtmr1, r.rtmr2, r.rtmr3];
      for (const [mr, hex] of Object.entries(theirs)) expect(rtmrs[Number(mr) - 1]).toBe(hex);
      expect(Object.keys(theirs).length).toBeGreaterThan(0);
    });
  }

  it('tpm2_eventlog also refuses the truncated log', () => {
    expect(() => tpm2Eventlog(vectorPath('eventlog/derived/rhel8-uefi_truncated_20000.bin'))).toThrow();
  });
});
