import { createHash, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { readVector } from '@joinguard/core/testing';
import { EventType, Guid, comparePcrs, parseCcel, parseEventLog, replayPcrs, summarizeEvent, type DecodedEvent, type TcgEvent } from '@joinguard/eventlog';
import { buildAgileLog } from './helpers.js';

const rhel8 = (): Uint8Array => readVector('eventlog/tpm_go_eventlog/rhel8-uefi.bin');
const variable = (ev: TcgEvent): Extract<DecodedEvent, { kind: 'efiVariable' }> => {
  if (ev.decoded.kind !== 'efiVariable') throw new Error(`event ${ev.index} is ${ev.decoded.kind}`);
  return ev.decoded;
};
const byName = (events: TcgEvent[], name: string): TcgEvent =>
  events.find((e) => e.decoded.kind === 'efiVariable' && e.decoded.unicodeName === name)!;

describe('EFI variable events', () => {
  it('SecureBoot state follows the logs (rhel8 Secure Boot on, ubuntu-2104-no-secure-boot off)', () => {
    const on = parseEventLog(rhel8());
    expect(variable(byName(on.events, 'SecureBoot')).secureBoot).toBe(true);
    const off = parseEventLog(readVector('eventlog/tpm_go_eventlog/ubuntu-2104-no-secure-boot.bin'));
    expect(variable(byName(off.events, 'SecureBoot')).secureBoot).toBe(false);
  });

  it('PK, KEK and db certificates are DER certificates with the right fingerprints; dbx holds SHA-256 hashes', () => {
    const log = parseEventLog(rhel8());
    for (const name of ['PK', 'KEK', 'db']) {
      const ev = byName(log.events, name);
      expect(ev.eventType).toBe(EventType.EV_EFI_VARIABLE_DRIVER_CONFIG);
      expect(ev.digestVerified).toBe(true);
      const v = variable(ev);
      expect(v.variableName).toBe(name === 'db' ? 'd719b2cb-3d3a-4596-a3bc-dad00e67656f' : '8be4df61-93ca-11d2-aa0d-00e098032b8c');
      const certs = v.signatureLists!.flatMap((l) => l.entries);
      expect(certs.length).toBeGreaterThan(0);
      for (const c of certs) {
        const x = new X509Certificate(Buffer.from(c.data, 'hex'));
        expect(x.fingerprint256.replace(/:/g, '').toLowerCase()).toBe(c.sha256);
      }
    }
    const db = variable(byName(log.events, 'db'));
    expect(db.signatureLists!.flatMap((l) => l.entries).map((e) => new X509Certificate(Buffer.from(e.data, 'hex')).subject).join('\n')).toMatch(/Microsoft/);
    const dbx = variable(byName(log.events, 'dbx'));
    const hashes = dbx.signatureLists!.filter((l) => l.signatureTypeName === 'EFI_CERT_SHA256').flatMap((l) => l.entries);
    expect(hashes.length).toBeGreaterThan(10);
    for (const h of hashes) expect(h.data).toMatch(/^[0-9a-f]{64}$/);
  });

  it('boot variables decode to descriptions and device paths', () => {
    const log = parseEventLog(rhel8());
    const order = variable(byName(log.events, 'BootOrder')).bootOrder!;
    expect(order.length).toBeGreaterThan(0);
    for (const n of order) {
      const name = `Boot${n.toString(16).toUpperCase().padStart(4, '0')}`;
      const opt = variable(byName(log.events, name)).bootOption!;
      expect(opt.description.length).toBeGreaterThan(0);
    }
    const rhel = log.events.map((e) => e.decoded).find((d) => d.kind === 'efiVariable' && d.bootOption?.description === 'Red Hat Enterprise Linux');
    expect(rhel && rhel.kind === 'efiVariable' && rhel.bootOption!.devicePath).toMatch(/^HD\(1,GPT,[0-9a-f-]{36},0x[0-9a-f]+,0x[0-9a-f]+\)\/\\EFI\\redhat\\shimx64\.efi$/);
  });

  it('a variable whose content was changed keeps its digest but is no longer digestVerified', () => {
    const bytes = rhel8();
    const log = parseEventLog(bytes);
    const sb = byName(log.events, 'SecureBoot');
    const tampered = new Uint8Array(bytes);
    tampered[sb.data.byteOffset - bytes.byteOffset + sb.data.length - 1] ^= 1; // the SecureBoot byte
    const t = parseEventLog(tampered);
    expect(byName(t.events, 'SecureBoot').digestVerified).toBe(false);
    expect(variable(byName(t.events, 'SecureBoot')).secureBoot).toBe(false);
    expect(replayPcrs(t)).toEqual(replayPcrs(log));
  });
});

describe('decoded events shared between logs', () => {
  it('an event that recurs byte for byte in another log is decoded once: the same frozen result, no view into either buffer', () => {
    const a = rhel8();
    const b = new Uint8Array(a);
    const first = parseEventLog(a);
    const second = parseEventLog(b);
    const sbA = byName(first.events, 'SecureBoot');
    const sbB = byName(second.events, 'SecureBoot');
    expect(sbB.decoded).toBe(sbA.decoded);
    expect(Object.isFrozen(sbB.decoded)).toBe(true);
    const dbx = variable(byName(second.events, 'dbx'));
    expect(Object.isFrozen(dbx.signatureLists![0]!.entries[0])).toBe(true);
    expect(() => {
      (dbx.signatureLists as unknown[]).push({});
    }).toThrow(TypeError);
    // Each log keeps its own events, digests and data; only the decoding is shared.
    expect(sbB).not.toBe(sbA);
    expect(sbB.data.buffer).toBe(b.buffer);
    // Overwriting both source buffers changes nothing that was decoded from them.
    const before = Array.from(variable(sbA).variableData);
    a.fill(0);
    b.fill(0);
    expect(Array.from(variable(sbB).variableData)).toEqual(before);
    expect(variable(sbB).secureBoot).toBe(true);
  });
});

describe('EFI variable digests bind the variable name where the spec says so', () => {
  const u64 = (v: number): Buffer => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    return b;
  };
  const guid = Buffer.from('61dfe48bca93d211aa0d00e098032b8c', 'hex'); // EFI_GLOBAL_VARIABLE
  const uefiVariable = (name: string, data: Uint8Array): Buffer => Buffer.concat([guid, u64(name.length), u64(data.length), Buffer.from(name, 'utf16le'), data]);
  const sha256 = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest());

  it('real logs: DRIVER_CONFIG and AUTHORITY digests cover the whole UEFI_VARIABLE_DATA; only BOOT uses VariableData alone', () => {
    const files = ['rhel8-uefi', 'ubuntu-2104-no-secure-boot', 'glinux-alex', 'arch-linux-workstation', 'debian-10'];
    const covers = new Map<string, Set<string>>();
    for (const f of files) {
      for (const e of parseEventLog(readVector(`eventlog/tpm_go_eventlog/${f}.bin`)).events) {
        if (e.eventType === EventType.EV_EFI_VARIABLE_DRIVER_CONFIG || e.eventType === EventType.EV_EFI_VARIABLE_BOOT) expect(e.digestVerified, `${f} event ${e.index}`).toBe(true);
        if (e.decoded.kind !== 'efiVariable' || e.digestVerified !== true) continue;
        const set = covers.get(e.typeName) ?? new Set<string>();
        set.add(e.decoded.digestCovers!);
        covers.set(e.typeName, set);
      }
    }
    expect([...covers.get('EV_EFI_VARIABLE_DRIVER_CONFIG')!]).toEqual(['event']);
    expect([...covers.get('EV_EFI_VARIABLE_AUTHORITY')!]).toEqual(['event']);
    expect(covers.get('EV_EFI_VARIABLE_BOOT')).toEqual(new Set(['event', 'variableData']));
  });

  it('a Boot#### event relabelled as SecureBoot = 1 (digest over VariableData only) is not verified', () => {
    // The data of an active load option starts with attribute 0x00000001, which reads as SecureBoot = 1.
    const option = Buffer.concat([Buffer.from([1, 0, 0, 0]), Buffer.from('fake option', 'latin1')]);
    const forged = uefiVariable('SecureBoot', option);
    const digests = [{ alg: 0x000b, digest: sha256(option) }];
    const l = parseEventLog(
      buildAgileLog([0x000b], [
        { pcr: 1, type: EventType.EV_EFI_VARIABLE_BOOT, data: forged, digests },
        { pcr: 1, type: EventType.EV_EFI_VARIABLE_DRIVER_CONFIG, data: forged, digests },
        { pcr: 7, type: EventType.EV_EFI_VARIABLE_AUTHORITY, data: forged, digests },
        { pcr: 7, type: EventType.EV_EFI_VARIABLE_DRIVER_CONFIG, data: forged },
      ]),
    );
    const [, boot, driverConfig, authority, whole] = l.events;
    expect(boot!.digestVerified).toBe(true);
    expect(variable(boot!).digestCovers).toBe('variableData');
    expect(driverConfig!.digestVerified).toBe(false);
    expect(variable(driverConfig!).digestCovers).toBeUndefined();
    expect(authority!.digestVerified).toBe(false);
    expect(whole!.digestVerified).toBe(true);
    expect(variable(whole!)).toMatchObject({ digestCovers: 'event', secureBoot: true });
  });

  it('EV_EFI_VARIABLE_AUTHORITY: the db entry (EFI_SIGNATURE_DATA) and shim\'s bare vendor certificate', () => {
    const log = parseEventLog(rhel8());
    const auth = log.events.filter((e) => e.eventType === EventType.EV_EFI_VARIABLE_AUTHORITY);
    expect(auth.map((e) => [e.pcrIndex, variable(e).unicodeName, e.digestVerified])).toEqual([
      [7, 'db', true],
      [7, 'Shim', true],
    ]);
    const subjects = auth.map((e) => {
      const entry = variable(e).signatureLists![0]!.entries[0]!;
      const x = new X509Certificate(Buffer.from(entry.data, 'hex'));
      expect(x.fingerprint256.replace(/:/g, '').toLowerCase()).toBe(entry.sha256);
      return [entry.owner, x.subject.split('\n').find((l) => l.startsWith('CN='))];
    });
    expect(subjects[0]![1]).toBe('CN=Microsoft Corporation UEFI CA 2011');
    expect(subjects[0]![0]).toMatch(/^[0-9a-f-]{36}$/);
    // shim measures its vendor certificate as is, without a SignatureOwner.
    expect(subjects[1]).toEqual([undefined, 'CN=Red Hat Secure Boot CA 5']);
  });

  it('authority events that carry no certificate (SbatLevel) have no signature list; a hash entry is typed by size', () => {
    const ubuntu = parseEventLog(readVector('eventlog/tpm_go_eventlog/ubuntu-2104-no-secure-boot.bin'));
    const sbat = ubuntu.events.find((e) => e.eventType === EventType.EV_EFI_VARIABLE_AUTHORITY)!;
    expect(variable(sbat).unicodeName).toBe('SbatLevel');
    expect(variable(sbat).signatureLists).toBeUndefined();
    const owner = Buffer.from('bd9afa775903324dbd6028f4e78f784b', 'hex');
    const hash = createHash('sha256').update('image').digest();
    const l = parseEventLog(buildAgileLog([0x000b], [{ pcr: 7, type: EventType.EV_EFI_VARIABLE_AUTHORITY, data: uefiVariable('db', Buffer.concat([owner, hash])) }]));
    expect(variable(l.events[1]!).signatureLists).toEqual([
      { signatureType: Guid.EFI_CERT_SHA256, signatureTypeName: 'EFI_CERT_SHA256', entries: [{ owner: '77fa9abd-0359-4d32-bd60-28f4e78f784b', data: hash.toString('hex') }] },
    ]);
  });
});

describe('other decoders', () => {
  const log = parseEventLog(rhel8());
  it('separators: normal, digest = hash of the 4 bytes', () => {
    const seps = log.events.filter((e) => e.eventType === EventType.EV_SEPARATOR);
    expect(seps.map((e) => e.pcrIndex).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    for (const s of seps) {
      expect(s.decoded).toEqual({ kind: 'separator', value: 0, error: false });
      expect(s.digestVerified).toBe(true);
    }
  });
  it('an error separator is flagged', () => {
    const err = new Uint8Array([1, 0, 0, 0]);
    const l = parseEventLog(buildAgileLog([0x000b], [{ pcr: 4, type: EventType.EV_SEPARATOR, data: err }]));
    expect(l.events[1]!.decoded).toEqual({ kind: 'separator', value: 1, error: true });
    expect(l.events[1]!.digestVerified).toBe(true);
  });
  it('a TCG 1.2 error separator (0xFFFFFFFF) is flagged too; a separator that is not 4 bytes is malformed', () => {
    const l = parseEventLog(
      buildAgileLog([0x000b], [
        { pcr: 0, type: EventType.EV_SEPARATOR, data: new Uint8Array([0xff, 0xff, 0xff, 0xff]) },
        { pcr: 1, type: EventType.EV_SEPARATOR, data: new Uint8Array([0, 0, 0]) },
      ]),
    );
    expect(l.events[1]!.decoded).toEqual({ kind: 'separator', value: 0xffffffff, error: true });
    expect(summarizeEvent(l.events[1]!)).toBe('separator ERROR 0xffffffff');
    expect(l.events[2]!.decoded).toMatchObject({ kind: 'malformed', code: 'EVENTLOG_BAD_SEPARATOR' });
    expect(l.events[2]!.digestVerified).toBe(true);
  });
  it('EV_EFI_ACTION strings', () => {
    const actions = log.events.filter((e) => e.eventType === EventType.EV_EFI_ACTION).map((e) => (e.decoded.kind === 'action' ? e.decoded.text : ''));
    expect(actions).toContain('Exit Boot Services Invocation');
    expect(log.events.filter((e) => e.eventType === EventType.EV_EFI_ACTION).every((e) => e.digestVerified === true)).toBe(true);
  });
  it('GPT event: partitions, digest over the whole UEFI_GPT_DATA', () => {
    const g = log.events.find((e) => e.eventType === EventType.EV_EFI_GPT_EVENT)!;
    expect(g.digestVerified).toBe(true);
    expect(g.decoded.kind === 'gpt' && g.decoded.partitions.length).toBe(2);
    // The EFI system partition type GUID is C12A7328-F81F-11D2-BA4B-00A0C93EC93B (UEFI spec 5.3.3).
    expect(g.decoded.kind === 'gpt' && g.decoded.partitions.map((p) => p.partitionTypeGuid)).toContain('c12a7328-f81f-11d2-ba4b-00a0c93ec93b');
  });
  it('boot applications carry their device path; the digest cannot be checked from the log', () => {
    const apps = log.events.filter((e) => e.eventType === EventType.EV_EFI_BOOT_SERVICES_APPLICATION);
    expect(apps.length).toBe(3);
    expect(apps.every((a) => a.digestVerified === undefined && a.decoded.kind === 'imageLoad')).toBe(true);
    expect(apps[1]!.decoded.kind === 'imageLoad' && apps[1]!.decoded.devicePath).toBe('\\EFI\\redhat\\grubx64.efi');
  });
  it('grub commands and the kernel command line, digest = hash of the text without the prefix', () => {
    const kc = log.events.find((e) => e.decoded.kind === 'ipl' && e.decoded.kernelCmdline !== undefined)!;
    const cmdline = kc.decoded.kind === 'ipl' ? kc.decoded.kernelCmdline! : '';
    expect(cmdline).toMatch(/vmlinuz-4\.18\.0-240\.22\.1\.el8_3\.x86_64 root=UUID=/);
    expect(kc.digests.find((d) => d.bank === 'sha256')!.digest).toEqual(new Uint8Array(createHash('sha256').update(cmdline).digest()));
    expect(kc.digestVerified).toBe(true);
    const cmds = log.events.filter((e) => e.decoded.kind === 'ipl' && e.decoded.grubCommand !== undefined);
    expect(cmds.length).toBeGreaterThan(40);
    expect(cmds.every((e) => e.digestVerified === true)).toBe(true);
  });
  it('shim MokList entries are recognised and not claimed verified', () => {
    const mok = log.events.filter((e) => e.decoded.kind === 'ipl' && e.decoded.shimVariable);
    expect(mok.map((e) => (e.decoded.kind === 'ipl' ? e.decoded.shimVariable : ''))).toEqual(['MokList', 'MokListX']);
    expect(mok.every((e) => e.pcrIndex === 14 && e.digestVerified === undefined)).toBe(true);
  });
  it('a grub command whose digest does not match its text is not verified', () => {
    const l = parseEventLog(buildAgileLog([0x000b], [{ pcr: 8, type: EventType.EV_IPL, data: Buffer.from('kernel_cmdline: console=ttyS0\0'), digests: [{ alg: 0x000b, digest: createHash('sha256').update('init=/bin/sh').digest() }] }]));
    expect(l.events[1]!.decoded.kind === 'ipl' && l.events[1]!.decoded.kernelCmdline).toBe('console=ttyS0');
    expect(l.events[1]!.digestVerified).toBe(false);
  });
  it('firmware blobs and handoff tables', () => {
    const u64 = (v: bigint): Buffer => {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(v);
      return b;
    };
    const blob2 = Buffer.concat([Buffer.from([4]), Buffer.from('PEIF'), u64(0xffc00000n), u64(0x40000n)]);
    const guid = Buffer.from('61dfe48bca93d211aa0d00e098032b8c', 'hex');
    const tables2 = Buffer.concat([Buffer.from([3]), Buffer.from('SMB'), u64(1n), guid, u64(0x7f000000n)]);
    const l = parseEventLog(
      buildAgileLog([0x000b], [
        { pcr: 0, type: EventType.EV_EFI_PLATFORM_FIRMWARE_BLOB, data: Buffer.concat([u64(0x100000n), u64(0x2000n)]) },
        { pcr: 0, type: EventType.EV_EFI_PLATFORM_FIRMWARE_BLOB2, data: blob2 },
        { pcr: 1, type: EventType.EV_EFI_HANDOFF_TABLES2, data: tables2 },
        { pcr: 1, type: 0x80000fff, data: Buffer.from('vendor') },
        { pcr: 1, type: EventType.EV_EFI_HANDOFF_TABLES, data: Buffer.concat([u64(2n), guid, u64(0x1000n), guid, u64(0x2000n)]) },
        { pcr: 1, type: EventType.EV_EFI_HANDOFF_TABLES, data: Buffer.concat([u64(3n), guid, u64(0x1000n)]) },
        { pcr: 0, type: EventType.EV_EFI_PLATFORM_FIRMWARE_BLOB2, data: Buffer.from([200, 1, 2]) },
      ]),
    );
    expect(l.events[5]!.decoded).toEqual({
      kind: 'handoffTables',
      tables: [
        { vendorGuid: '8be4df61-93ca-11d2-aa0d-00e098032b8c', vendorTable: '0x1000' },
        { vendorGuid: '8be4df61-93ca-11d2-aa0d-00e098032b8c', vendorTable: '0x2000' },
      ],
    });
    // Counts and sizes beyond the data are malformed content, not a failed log.
    expect(l.events[6]!.decoded).toMatchObject({ kind: 'malformed', code: 'EVENTLOG_BAD_EVENT_DATA' });
    expect(l.events[7]!.decoded).toMatchObject({ kind: 'malformed', code: 'EVENTLOG_BAD_EVENT_DATA' });
    expect(l.events.slice(1).every((e) => e.digestVerified === undefined)).toBe(true);
    expect(l.events[1]!.decoded).toEqual({ kind: 'firmwareBlob', blobBase: '0x100000', blobLength: '0x2000' });
    expect(l.events[2]!.decoded).toEqual({ kind: 'firmwareBlob', description: 'PEIF', blobBase: '0xffc00000', blobLength: '0x40000' });
    expect(l.events[3]!.decoded).toEqual({ kind: 'handoffTables', description: 'SMB', tables: [{ vendorGuid: '8be4df61-93ca-11d2-aa0d-00e098032b8c', vendorTable: '0x7f000000' }] });
    // Unknown event types are kept, and still replayed.
    expect(l.events[4]!.typeName).toBe('UNKNOWN_0x80000fff');
    expect(l.events[4]!.decoded.kind).toBe('unknown');
    expect(Object.keys(replayPcrs(l).sha256!)).toEqual(['0', '1']);
  });
  it('real handoff tables and firmware blob 2 events (CCEL from OVMF)', () => {
    const ccel = parseCcel(readVector('eventlog/ccel_trustee/CCEL_data_ovmf.bin'));
    const tables = ccel.events.find((e) => e.eventType === EventType.EV_EFI_HANDOFF_TABLES2)!;
    expect(tables.decoded).toMatchObject({ kind: 'handoffTables', description: expect.stringMatching(/\S/) });
    expect(tables.decoded.kind === 'handoffTables' && tables.decoded.tables.length).toBeGreaterThan(0);
    const blob = ccel.events.find((e) => e.eventType === EventType.EV_EFI_PLATFORM_FIRMWARE_BLOB2)!;
    expect(blob.decoded).toMatchObject({ kind: 'firmwareBlob', description: expect.stringMatching(/\S/), blobBase: expect.stringMatching(/^0x[0-9a-f]+$/) });
  });
  it('every event has a one-line summary', () => {
    for (const e of log.events) expect(summarizeEvent(e)).not.toMatch(/\n/);
  });
});

describe('StartupLocality and replay', () => {
  it('sets PCR 0 start value to the locality; EV_NO_ACTION is not extended', () => {
    const loc = Buffer.concat([Buffer.from('StartupLocality\0', 'latin1'), Buffer.from([3])]);
    const crtm = Buffer.from('crtm');
    const l = parseEventLog(
      buildAgileLog([0x0004, 0x000b], [
        { pcr: 0, type: EventType.EV_NO_ACTION, data: loc, digests: [{ alg: 0x0004, digest: new Uint8Array(20) }, { alg: 0x000b, digest: new Uint8Array(32) }] },
        { pcr: 0, type: EventType.EV_S_CRTM_CONTENTS, data: crtm },
        { pcr: 7, type: EventType.EV_NO_ACTION, data: Buffer.from('SP800-155 Event\0') },
      ]),
    );
    expect(l.startupLocality).toBe(3);
    const start = Buffer.alloc(32);
    start[31] = 3;
    const expected = createHash('sha256').update(start).update(createHash('sha256').update(crtm).digest()).digest('hex');
    const r = replayPcrs(l);
    expect(r.sha256).toEqual({ 0: expected });
    expect(Object.keys(r.sha1!)).toEqual(['0']);
  });
});

describe('comparePcrs', () => {
  const bytes = rhel8();
  const log = parseEventLog(bytes);
  const replayed = replayPcrs(log);
  it('matches the log against its own PCRs', () => {
    const c = comparePcrs(log, { sha256: replayed.sha256! });
    expect(c.match).toBe(true);
    expect(c.compared.length).toBe(Object.keys(replayed.sha256!).length);
  });
  it('names the PCR and its first event when a quoted value is unrelated to the log', () => {
    const quoted = { sha256: { ...replayed.sha256!, 7: 'ab'.repeat(32) } };
    const c = comparePcrs(log, quoted);
    expect(c.match).toBe(false);
    expect(c.first).toMatchObject({ bank: 'sha256', pcr: 7, reason: 'diverged', firstDifferingEvent: log.events.find((e) => e.pcrIndex === 7)!.index });
    expect(c.mismatches.length).toBe(1);
  });
  it('names the first extra event when the log runs past the quote', () => {
    // Quote taken when only the events before #50 had been extended: replay a log cut at that record.
    const cut = parseEventLog(bytes.subarray(0, log.events[50]!.offset));
    const c = comparePcrs(log, cut.banks.includes('sha256') ? { sha256: replayPcrs(cut).sha256! } : {});
    expect(c.match).toBe(false);
    const firstExtra = log.events.slice(50).find((e) => e.eventType !== EventType.EV_NO_ACTION)!;
    expect(c.first).toMatchObject({ pcr: firstExtra.pcrIndex, reason: 'log-longer', firstDifferingEvent: firstExtra.index });
  });
  it('accepts bank names as SHA256 or sha-256', () => {
    expect(comparePcrs(log, { SHA256: replayed.sha256! }).match).toBe(true);
    expect(comparePcrs(log, { 'sha-1': replayed.sha1! }).match).toBe(true);
  });
  it('reports quoted banks the log lacks and PCRs the quote leaves out', () => {
    const c = comparePcrs(log, { sha512: { 0: '00'.repeat(64) }, sha1: { 0: replayed.sha1![0]! } });
    expect(c.banksNotInLog).toEqual(['sha512']);
    expect(c.notQuoted.some((p) => p.bank === 'sha1' && p.pcr === 7)).toBe(true);
    expect(c.match).toBe(true);
  });
});
