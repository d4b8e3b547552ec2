import { createHash } from 'node:crypto';

/*
 * A synthetic TCG PC Client crypto-agile event log (TCG PC Client PFP spec, 10.2 and 10.4), laid out as
 * OVMF + shim + grub write it, with SHA-1 and SHA-256 digests. The digests of data-carrying events (EFI
 * variables, separators, S-CRTM version, grub strings) are the hashes of their data, so a verifier can
 * check the decoded content; boot applications carry a chosen Authenticode digest, as firmware does.
 */

export type SimBank = 'sha1' | 'sha256';
export const SIM_BANKS: readonly SimBank[] = ['sha1', 'sha256'];
const ALG_ID: Record<SimBank, number> = { sha1: 0x0004, sha256: 0x000b };
const DIGEST_SIZE: Record<SimBank, number> = { sha1: 20, sha256: 32 };

const EV_NO_ACTION = 0x3;
const EV_SEPARATOR = 0x4;
const EV_S_CRTM_VERSION = 0x8;
const EV_IPL = 0xd;
const EV_EFI_VARIABLE_DRIVER_CONFIG = 0x80000001;
const EV_EFI_BOOT_SERVICES_APPLICATION = 0x80000003;
const EV_EFI_ACTION = 0x80000007;

/** EFI GUIDs in their canonical text form; encoded mixed-endian as UEFI stores them. */
const EFI_GLOBAL_VARIABLE = '8be4df61-93ca-11d2-aa0d-00e098032b8c';
const EFI_IMAGE_SECURITY_DATABASE = 'd719b2cb-3d3a-4596-a3bc-dad00e67656f';
const EFI_CERT_X509 = 'a5c059a1-94e4-4aa7-87b5-ab155c2bf072';
const EFI_CERT_SHA256 = 'c1c41626-504c-4092-aca9-41f936934328';
const SIM_OWNER = '77fa9abd-0359-4d32-bd60-28f4e78f784b';

export function guidBytes(guid: string): Buffer {
  const h = guid.replace(/-/g, '');
  const le = (s: string) => Buffer.from(s, 'hex').reverse();
  return Buffer.concat([le(h.slice(0, 8)), le(h.slice(8, 12)), le(h.slice(12, 16)), Buffer.from(h.slice(16), 'hex')]);
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
}
function u64(v: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return b;
}
function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return b;
}

export interface SimEvent {
  pcr: number;
  type: number;
  data: Uint8Array;
  /** Per bank: what is extended. Absent banks default to the hash of `data`. */
  digests?: Partial<Record<SimBank, Uint8Array>>;
}

export interface BootApp {
  /** EFI file path, e.g. \EFI\redhat\shimx64.efi */
  path: string;
  /** The image's Authenticode SHA-256 digest (hex, 64 chars). */
  digestSha256: string;
}

export interface SimBootConfig {
  secureBoot: boolean;
  /** DER certificates for PK, KEK, db. */
  pk: Uint8Array[];
  kek: Uint8Array[];
  db: Uint8Array[];
  /** SHA-256 hashes (hex) revoked in dbx. */
  dbx: string[];
  bootApps: BootApp[];
  grubCommands: string[];
  kernelCmdline: string;
  crtmVersion?: string;
}

function hashOf(bank: SimBank, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash(bank).update(data).digest());
}

/** The digests an event extends, per bank. */
export function eventDigests(ev: SimEvent): Record<SimBank, Uint8Array> {
  const out = {} as Record<SimBank, Uint8Array>;
  for (const bank of SIM_BANKS) out[bank] = ev.digests?.[bank] ?? hashOf(bank, ev.data);
  return out;
}

function variableData(guid: string, name: string, data: Uint8Array): Buffer {
  return Buffer.concat([guidBytes(guid), u64(name.length), u64(data.length), Buffer.from(name, 'utf16le'), data]);
}

function signatureList(type: string, entries: Uint8Array[]): Buffer {
  if (entries.length === 0) return Buffer.alloc(0);
  // One list per entry keeps SignatureSize exact for certificates of different lengths.
  return Buffer.concat(
    entries.map((e) => Buffer.concat([guidBytes(type), u32(28 + 16 + e.length), u32(0), u32(16 + e.length), guidBytes(SIM_OWNER), e])),
  );
}

function devicePathFile(path: string): Buffer {
  const name = Buffer.from(`${path}\0`, 'utf16le');
  return Buffer.concat([Buffer.from([4, 4]), u16(4 + name.length), name, Buffer.from([0x7f, 0xff, 4, 0])]);
}

function imageLoad(path: string, index: number): Buffer {
  const dp = devicePathFile(path);
  return Buffer.concat([u64(0x7e000000 + index * 0x100000), u64(0x100000), u64(0), u64(dp.length), dp]);
}

/** The events of a Secure Boot shim → grub → kernel boot, in log order. */
export function bootEvents(cfg: SimBootConfig): SimEvent[] {
  const ev: SimEvent[] = [];
  ev.push({ pcr: 0, type: EV_S_CRTM_VERSION, data: Buffer.from(`${cfg.crtmVersion ?? 'joinguard simulated firmware 1.0'}\0`, 'utf16le') });
  const sbVar = (guid: string, name: string, data: Uint8Array) => ev.push({ pcr: 7, type: EV_EFI_VARIABLE_DRIVER_CONFIG, data: variableData(guid, name, data) });
  sbVar(EFI_GLOBAL_VARIABLE, 'SecureBoot', Uint8Array.of(cfg.secureBoot ? 1 : 0));
  sbVar(EFI_GLOBAL_VARIABLE, 'PK', signatureList(EFI_CERT_X509, cfg.pk));
  sbVar(EFI_GLOBAL_VARIABLE, 'KEK', signatureList(EFI_CERT_X509, cfg.kek));
  sbVar(EFI_IMAGE_SECURITY_DATABASE, 'db', signatureList(EFI_CERT_X509, cfg.db));
  const dbxEntries = cfg.dbx.map((h) => Buffer.from(h, 'hex'));
  sbVar(EFI_IMAGE_SECURITY_DATABASE, 'dbx', signatureList(EFI_CERT_SHA256, dbxEntries));
  for (let pcr = 0; pcr <= 7; pcr++) ev.push({ pcr, type: EV_SEPARATOR, data: u32(0) });
  ev.push({ pcr: 4, type: EV_EFI_ACTION, data: Buffer.from('Calling EFI Application from Boot Option', 'latin1') });
  cfg.bootApps.forEach((app, i) => {
    const sha256 = Buffer.from(app.digestSha256, 'hex');
    // The SHA-1 bank carries the image's SHA-1 Authenticode digest; any fixed value derived from the image will do here.
    ev.push({ pcr: 4, type: EV_EFI_BOOT_SERVICES_APPLICATION, data: imageLoad(app.path, i), digests: { sha256, sha1: hashOf('sha1', sha256) } });
  });
  // grub measures each command and the kernel command line into PCR 8, hashing the text after its prefix.
  for (const cmd of cfg.grubCommands) {
    const data = Buffer.from(`grub_cmd: ${cmd}\0`, 'latin1');
    ev.push({ pcr: 8, type: EV_IPL, data, digests: { sha1: hashOf('sha1', Buffer.from(cmd, 'latin1')), sha256: hashOf('sha256', Buffer.from(cmd, 'latin1')) } });
  }
  const cl = Buffer.from(cfg.kernelCmdline, 'latin1');
  ev.push({ pcr: 8, type: EV_IPL, data: Buffer.from(`kernel_cmdline: ${cfg.kernelCmdline}\0`, 'latin1'), digests: { sha1: hashOf('sha1', cl), sha256: hashOf('sha256', cl) } });
  return ev;
}

function specIdEvent(): Buffer {
  const spec = Buffer.concat([
    Buffer.from('Spec ID Event03\0', 'latin1'),
    u32(0), // platformClass: client
    Buffer.from([0, 2, 0, 2]), // specVersionMinor 0, specVersionMajor 2, specErrata 0, uintnSize 2 (UINT64)
    u32(SIM_BANKS.length),
    ...SIM_BANKS.map((b) => {
      const x = Buffer.alloc(4);
      x.writeUInt16LE(ALG_ID[b], 0);
      x.writeUInt16LE(DIGEST_SIZE[b], 2);
      return x;
    }),
    Buffer.from([0]), // vendorInfoSize
  ]);
  // The header event uses the TCG 1.2 (SHA-1) event format, so older parsers can read the Spec ID.
  return Buffer.concat([u32(0), u32(EV_NO_ACTION), Buffer.alloc(20), u32(spec.length), spec]);
}

/** Serialises events as a crypto-agile log (Spec ID header first). */
export function encodeEventLog(events: SimEvent[]): Uint8Array {
  const parts: Buffer[] = [specIdEvent()];
  for (const ev of events) {
    const d = eventDigests(ev);
    parts.push(u32(ev.pcr), u32(ev.type), u32(SIM_BANKS.length));
    for (const b of SIM_BANKS) parts.push(u16(ALG_ID[b]), Buffer.from(d[b]));
    parts.push(u32(ev.data.length), Buffer.from(ev.data));
  }
  return new Uint8Array(Buffer.concat(parts));
}

/** The PCR values the events leave behind (PCRs start at zero: no StartupLocality event, no D-RTM). */
export function replayEvents(events: SimEvent[]): Record<SimBank, Map<number, Uint8Array>> {
  const out = { sha1: new Map<number, Uint8Array>(), sha256: new Map<number, Uint8Array>() };
  for (const ev of events) {
    const d = eventDigests(ev);
    for (const bank of SIM_BANKS) {
      const prev = out[bank].get(ev.pcr) ?? new Uint8Array(DIGEST_SIZE[bank]);
      out[bank].set(ev.pcr, new Uint8Array(createHash(bank).update(prev).update(d[bank]).digest()));
    }
  }
  return out;
}

/** A log with only the Spec ID header: it extends nothing (for evidence whose real log is unavailable). */
export function headerOnlyEventLog(): Uint8Array {
  return encodeEventLog([]);
}
