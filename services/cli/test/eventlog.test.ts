import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readVectorText, vectorPath } from '@joinguard/core/testing';
import { buildCli, cli, errCode } from './support.js';

let dir: string;


beforeAll(() => {
  buildCli();
  dir = mkdtempSync(join(tmpdir(), 'jg-eventlog-cli-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const RAW_TO_FILE: Record<string, string> = {
  Rhel8EventLog: 'rhel8-uefi',
  Ubuntu2104NoSecureBootEventLog: 'ubuntu-2104-no-secure-boot',
  GlinuxAlexEventLog: 'glinux-alex',
  ArchLinuxWorkstationEventLog: 'arch-linux-workstation',
  Debian10EventLog: 'debian-10',
};
const expected = JSON.parse(readVectorText('eventlog/tpm_go_eventlog/expected_pcrs.from_extract_test.json')) as Record<string, { raw: string; banks: Record<string, Record<string, string>> }>;
const manifest = readVectorText('MANIFEST.md');
const countOf = (file: string): number => Number(new RegExp(`^- eventlog/tpm_go_eventlog/${file}\\.bin: (\\d+) events`, 'm').exec(manifest)![1]);

describe('joinguard eventlog replay --json', () => {
  for (const exp of Object.values(expected)) {
    const file = RAW_TO_FILE[exp.raw]!;
    it(`${file}.bin: exactly {events, pcrs}, the MANIFEST event count, go-eventlog's PCRs`, () => {
      const r = cli('eventlog', 'replay', vectorPath(`eventlog/tpm_go_eventlog/${file}.bin`), '--json');
      expect(r.code).toBe(0);
      expect(Object.keys(r.json!)).toEqual(['events', 'pcrs']);
      expect(r.json!.events).toBe(countOf(file));
      const pcrs = r.json!.pcrs as Record<string, Record<string, string>>;
      for (const [bank, values] of Object.entries(exp.banks)) for (const [pcr, hex] of Object.entries(values)) expect(pcrs[bank.toLowerCase()]![pcr]).toBe(hex);
    });
  }

  it('the truncated derived log is rejected (exit 1, EVENTLOG_TRUNCATED), no partial replay', () => {
    const r = cli('eventlog', 'replay', vectorPath('eventlog/derived/rhel8-uefi_truncated_20000.bin'), '--json');
    expect(r.code).toBe(1);
    expect(errCode(r.json)).toBe('EVENTLOG_TRUNCATED');
    expect(r.json!.pcrs).toBeUndefined();
  });

  it('a CCEL with --ccel gives the RTMRs trustee asserts', () => {
    const exp = JSON.parse(readVectorText('eventlog/ccel_trustee/expected_rtmrs.from_lib_rs_test.json')) as Record<string, string[]>;
    const r = cli('eventlog', 'replay', vectorPath('eventlog/ccel_trustee/CCEL_data_grub.bin'), '--ccel', '--json');
    expect(r.code).toBe(0);
    expect(r.json).toEqual({ events: 38, rtmrs: { rtmr0: exp.CCEL_data_grub![0], rtmr1: exp.CCEL_data_grub![1], rtmr2: exp.CCEL_data_grub![2], rtmr3: exp.CCEL_data_grub![3] } });
  });

  it('a missing file is unusable input (exit 2, message on stderr, no stack)', () => {
    const r = cli('eventlog', 'replay', join(dir, 'nope.bin'), '--json');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/INPUT_NOT_FOUND/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('garbage is rejected with a typed error', () => {
    const f = join(dir, 'garbage.bin');
    writeFileSync(f, Buffer.from('00000000030000000000', 'hex'));
    const r = cli('eventlog', 'replay', f, '--json');
    expect(r.code).toBe(1);
    expect(errCode(r.json)).toMatch(/^EVENTLOG_/);
  });
});

describe('joinguard eventlog show', () => {
  it('prints one row per event with index, PCR, type, digest prefix and summary', () => {
    const r = cli('eventlog', 'show', vectorPath('eventlog/tpm_go_eventlog/rhel8-uefi.bin'));
    expect(r.code).toBe(0);
    const rows = r.stdout.split('\n').filter((l) => /^\d+\s/.test(l));
    expect(rows.length).toBe(countOf('rhel8-uefi'));
    expect(r.stdout).toMatch(/^#\s+PCR\s+type\s+sha256/m);
    expect(rows.find((l) => l.includes('EV_EFI_VARIABLE_DRIVER_CONFIG') && l.includes('SecureBoot'))).toMatch(/^3\s+7\s+EV_EFI_VARIABLE_DRIVER_CONFIG\s+[0-9a-f]{16} v\s+SecureBoot \(1 B\) = enabled/);
  });
  it('--json lists decoded events', () => {
    const r = cli('eventlog', 'show', vectorPath('eventlog/tpm_go_eventlog/debian-10.bin'), '--json');
    expect(r.code).toBe(0);
    expect(r.json!.events).toBe(countOf('debian-10'));
    expect(r.json!.format).toBe('sha1-legacy');
    expect((r.json!.list as unknown[]).length).toBe(countOf('debian-10'));
  });
});

describe('joinguard eventlog compare', () => {
  const exp = Object.values(expected).find((e) => e.raw === 'Rhel8EventLog')!;
  const sha256 = exp.banks.SHA256!;
  it('matches the quoted PCRs go-eventlog gives (exit 0)', () => {
    const r = cli('eventlog', 'compare', vectorPath('eventlog/tpm_go_eventlog/rhel8-uefi.bin'), '--pcrs', JSON.stringify({ sha256 }), '--json');
    expect(r.code).toBe(0);
    expect(r.json!.match).toBe(true);
  });
  it('names the PCR and event where they part (exit 1)', () => {
    const f = join(dir, 'pcrs.json');
    writeFileSync(f, JSON.stringify({ sha256: { ...sha256, 9: '00'.repeat(32) } }));
    const r = cli('eventlog', 'compare', vectorPath('eventlog/tpm_go_eventlog/rhel8-uefi.bin'), '--pcrs', f, '--json');
    expect(r.code).toBe(1);
    expect(errCode(r.json)).toBe('EVENTLOG_PCR_MISMATCH');
    expect((r.json!.error as { message: string }).message).toMatch(/^sha256 PCR 9: .* from event \d+: EV_IPL/);
  });
});
