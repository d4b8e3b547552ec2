import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { vectorPath } from '@joinguard/core/testing';
import { parseEventLog } from '@joinguard/eventlog';
import { bootEvents, encodeEventLog, guidBytes, type SimBootConfig, type SimEvent } from '@joinguard/simcvm';
import { bootClaims } from '../src/appraise/boot.js';

const EV_EFI_VARIABLE_DRIVER_CONFIG = 0x80000001;
const EFI_GLOBAL_VARIABLE = '8be4df61-93ca-11d2-aa0d-00e098032b8c';

const cfg: SimBootConfig = {
  secureBoot: false,
  pk: [],
  kek: [],
  db: [],
  dbx: [],
  bootApps: [{ path: '\\EFI\\BOOT\\BOOTX64.EFI', digestSha256: 'ab'.repeat(32) }],
  grubCommands: ['linux /vmlinuz'],
  kernelCmdline: 'BOOT_IMAGE=/vmlinuz ro',
};

function secureBootVar(pcr: number, enabled: boolean): SimEvent {
  const name = Buffer.from('SecureBoot', 'utf16le');
  const u64 = (n: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(n));
    return b;
  };
  return { pcr, type: EV_EFI_VARIABLE_DRIVER_CONFIG, data: Buffer.concat([guidBytes(EFI_GLOBAL_VARIABLE), u64(10), u64(1), name, Buffer.of(enabled ? 1 : 0)]) };
}

const claimsOf = (events: SimEvent[]) => bootClaims(parseEventLog(encodeEventLog(events)));

describe('boot claims: where the Secure Boot configuration may come from', () => {
  it('reads it from PCR 7 before the separator', () => {
    const b = claimsOf(bootEvents(cfg));
    expect(b.secureBoot).toBe(false);
    expect(b.unverifiedEvents).toEqual([]);
  });

  it('ignores a digest-correct SecureBoot = 1 event extended into PCR 7 after the separator', () => {
    const events = [...bootEvents(cfg), secureBootVar(7, true)];
    const b = claimsOf(events);
    expect(b.secureBoot).toBe(false);
    expect(b.unverifiedEvents).toEqual([expect.objectContaining({ eventIndex: events.length, pcr: 7, reason: expect.stringContaining('after the PCR 7 separator') })]);
  });

  it('ignores one measured into another PCR, and a second measurement before the separator', () => {
    const base = bootEvents(cfg);
    const b = claimsOf([...base, secureBootVar(14, true)]);
    expect(b.secureBoot).toBe(false);
    expect(b.unverifiedEvents![0]!.reason).toContain('into PCR 14');

    const firstSeparator = base.findIndex((e) => e.type === 4);
    const twice = [...base.slice(0, firstSeparator), secureBootVar(7, true), ...base.slice(firstSeparator)];
    const t = claimsOf(twice);
    expect(t.secureBoot).toBe(false);
    expect(t.unverifiedEvents![0]!.reason).toContain('second time');
  });

  it.each(['rhel8-uefi.bin', 'ubuntu-2104-no-secure-boot.bin', 'glinux-alex.bin', 'arch-linux-workstation.bin', 'debian-10.bin'])(
    'real log %s: no event is set aside by the PCR 7 window',
    (name) => {
      const b = bootClaims(parseEventLog(readFileSync(vectorPath(`eventlog/tpm_go_eventlog/${name}`))));
      const setAside = (b.unverifiedEvents ?? []).filter((u) => /separator|second time|into PCR/.test(u.reason ?? ''));
      expect(setAside).toEqual([]);
    },
  );
});
