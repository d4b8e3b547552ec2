import { getHashes } from 'node:crypto';
import { BoundedMap, ByteReader, JoinguardError, deepFreeze, digest, reject, toHex } from '@joinguard/core';
import { EventType, Guid, HashAlg, LIMITS } from './constants.js';
import type { SpecIdEvent, TcgEvent } from './parse.js';

export interface SignatureEntry {
  /** SignatureOwner GUID; absent for a bare certificate (shim's vendor certificate in its "Shim" authority event). */
  owner?: string;
  /** EFI_CERT_X509: the DER certificate; hash types: the hash. */
  data: string;
  /** SHA-256 of a certificate's DER (the fingerprint a policy pins); absent for hash entries. */
  sha256?: string;
}

/** One EFI_SIGNATURE_LIST (UEFI spec 32.4.1) of PK, KEK, db, dbx, MokList. */
export interface SignatureList {
  signatureType: string;
  signatureTypeName: string;
  entries: SignatureEntry[];
}

export interface GptPartition {
  partitionTypeGuid: string;
  uniquePartitionGuid: string;
  startingLba: string;
  endingLba: string;
  attributes: string;
  partitionName: string;
}

export type DecodedEvent =
  | { kind: 'unknown' }
  | { kind: 'malformed'; code: string; message: string }
  | { kind: 'specId'; specId: SpecIdEvent }
  | { kind: 'startupLocality'; locality: number }
  | { kind: 'noAction'; signature: string }
  | {
      kind: 'efiVariable';
      variableName: string;
      unicodeName: string;
      variableData: Uint8Array;
      /**
       * Which bytes the digest was found to cover: the whole UEFI_VARIABLE_DATA or only VariableData (accepted
       * for EV_EFI_VARIABLE_BOOT only, as EDK2 measures it; the GUID and name are then not bound by the digest).
       */
      digestCovers?: 'event' | 'variableData';
      secureBoot?: boolean;
      signatureLists?: SignatureList[];
      bootOrder?: number[];
      bootOption?: { attributes: number; description: string; devicePath: string };
    }
  | { kind: 'separator'; value: number; error: boolean }
  | { kind: 'action'; text: string }
  | { kind: 'string'; text: string }
  | {
      kind: 'imageLoad';
      imageLocationInMemory: string;
      imageLengthInMemory: string;
      imageLinkTimeAddress: string;
      devicePath: string;
    }
  | { kind: 'gpt'; diskGuid: string; revision: number; partitions: GptPartition[] }
  | {
      kind: 'ipl';
      text: string;
      grubCommand?: string;
      kernelCmdline?: string;
      /** shim measures MokList, MokListX, MokSBState … into PCR 14 with the variable name as the event data. */
      shimVariable?: string;
    }
  | { kind: 'firmwareBlob'; description?: string; blobBase: string; blobLength: string }
  | { kind: 'handoffTables'; description?: string; tables: { vendorGuid: string; vendorTable: string }[] };

const nodeHashes = new Set(getHashes());

function hashOf(alg: number, data: Uint8Array): Uint8Array | undefined {
  const h = HashAlg[alg];
  if (!h || !nodeHashes.has(h.node)) return undefined;
  return digest(h.node, data);
}

function eq(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

/**
 * true if every computable digest equals the hash of one of the candidate contents (the same candidate
 * for every bank), false if none matches, undefined if no digest can be computed.
 */
function digestsCover(ev: TcgEvent, candidates: Uint8Array[]): { ok: boolean | undefined; which: number } {
  // The first computable bank picks the candidate; the other banks must then agree on it.
  const computable = ev.digests.filter((d) => HashAlg[d.alg] && nodeHashes.has(HashAlg[d.alg]!.node));
  if (computable.length === 0) return { ok: undefined, which: -1 };
  const [first, ...rest] = computable;
  for (let c = 0; c < candidates.length; c++) {
    if (!eq(hashOf(first!.alg, candidates[c]!)!, first!.digest)) continue;
    return { ok: rest.every((d) => eq(hashOf(d.alg, candidates[c]!)!, d.digest)), which: c };
  }
  return { ok: false, which: -1 };
}

const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Registry form of an EFI_GUID: the first three fields are little-endian, the last two are bytes in order. */
export function formatGuid(b: Uint8Array): string {
  if (b.length !== 16) throw reject('EVENTLOG_BAD_GUID', `a GUID is 16 bytes, not ${b.length}`);
  const x = (i: number): string => HEX_BYTE[b[i]!]!;
  // Dbx lists carry hundreds of owner GUIDs per event log: built from a table, without a regex or arrays.
  return `${x(3)}${x(2)}${x(1)}${x(0)}-${x(5)}${x(4)}-${x(7)}${x(6)}-${x(8)}${x(9)}-${x(10)}${x(11)}${x(12)}${x(13)}${x(14)}${x(15)}`;
}

/**
 * UTF-16LE text from firmware. Unpaired surrogates are not Unicode text (they could not go into a JSON record or
 * be compared as text): each becomes U+FFFD. The event's digest still covers the bytes as they were.
 */
function utf16le(b: Uint8Array): string {
  const s = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf16le');
  return (s as unknown as { toWellFormed(): string }).toWellFormed();
}

function utf16(b: Uint8Array): string {
  let end = b.length - (b.length % 2);
  for (let i = 0; i + 1 < end; i += 2) {
    if (b[i] === 0 && b[i + 1] === 0) {
      end = i;
      break;
    }
  }
  return utf16le(b.subarray(0, end));
}

function ascii(b: Uint8Array): string {
  let end = b.length;
  while (end > 0 && b[end - 1] === 0) end--;
  return Buffer.from(b.buffer, b.byteOffset, end).toString('latin1');
}

const hex64 = (v: bigint): string => `0x${v.toString(16)}`;

function reader(b: Uint8Array, what: string): ByteReader {
  return new ByteReader(b, { truncatedCode: 'EVENTLOG_BAD_EVENT_DATA', what });
}

const sigTypeNames: Record<string, string> = {
  [Guid.EFI_CERT_X509]: 'EFI_CERT_X509',
  [Guid.EFI_CERT_SHA256]: 'EFI_CERT_SHA256',
  [Guid.EFI_CERT_SHA1]: 'EFI_CERT_SHA1',
  [Guid.EFI_CERT_SHA384]: 'EFI_CERT_SHA384',
  [Guid.EFI_CERT_SHA512]: 'EFI_CERT_SHA512',
  [Guid.EFI_CERT_X509_SHA256]: 'EFI_CERT_X509_SHA256',
};

/** EFI_SIGNATURE_LIST sequence (the content of PK, KEK, db, dbx, MokList). */
export function decodeSignatureLists(data: Uint8Array): SignatureList[] {
  const r = reader(data, 'EFI_SIGNATURE_LIST');
  const lists: SignatureList[] = [];
  let total = 0;
  while (r.remaining > 0) {
    const start = r.offset;
    const signatureType = formatGuid(r.bytes(16, 'SignatureType'));
    const listSize = r.u32le('SignatureListSize');
    const headerSize = r.u32le('SignatureHeaderSize');
    const sigSize = r.u32le('SignatureSize');
    if (listSize < 28 || listSize - 28 > r.remaining + 0 || sigSize < 16 || headerSize > listSize - 28 || (listSize - 28 - headerSize) % sigSize !== 0) {
      throw reject('EVENTLOG_BAD_SIGNATURE_LIST', `EFI_SIGNATURE_LIST at ${start} has inconsistent sizes (list ${listSize}, header ${headerSize}, signature ${sigSize})`, { offset: start, listSize, headerSize, sigSize });
    }
    r.skip(headerSize, 'SignatureHeader');
    const n = (listSize - 28 - headerSize) / sigSize;
    total += n;
    if (total > LIMITS.maxEntries) throw reject('EVENTLOG_BAD_SIGNATURE_LIST', `signature lists hold more than ${LIMITS.maxEntries} entries`, { limit: LIMITS.maxEntries });
    const entries: SignatureEntry[] = [];
    for (let i = 0; i < n; i++) {
      const owner = formatGuid(r.bytes(16, 'SignatureOwner'));
      const body = r.bytes(sigSize - 16, 'SignatureData');
      const entry: SignatureEntry = { owner, data: toHex(body) };
      if (signatureType === Guid.EFI_CERT_X509) entry.sha256 = digest('sha256', body, 'hex');
      entries.push(entry);
    }
    lists.push({ signatureType, signatureTypeName: sigTypeNames[signatureType] ?? 'unknown', entries });
  }
  return lists;
}

/** An EFI device path (UEFI spec 10.3) in the usual text form; unknown nodes as Path(type,subtype,hex). */
export function decodeDevicePath(data: Uint8Array): string {
  const r = reader(data, 'device path');
  const parts: string[] = [];
  while (r.remaining > 0) {
    if (parts.length >= LIMITS.maxEntries) throw reject('EVENTLOG_BAD_DEVICE_PATH', `device path has more than ${LIMITS.maxEntries} nodes`);
    const type = r.u8('Type');
    const subType = r.u8('SubType');
    const len = r.u16le('Length');
    // A node shorter than its own header would loop forever on hostile input.
    if (len < 4) throw reject('EVENTLOG_BAD_DEVICE_PATH', `device path node at ${r.offset - 4} has length ${len} < 4`, { length: len });
    const body = r.bytes(len - 4, 'node');
    if (type === 0x7f) {
      if (subType === 0xff) break;
      parts.push('|');
      continue;
    }
    parts.push(devicePathNode(type, subType, body));
  }
  return parts.join('/').replace(/\/\|\//g, ',');
}

function devicePathNode(type: number, subType: number, body: Uint8Array): string {
  const b = reader(body, 'device path node');
  const generic = (): string => `Path(${type},${subType},${toHex(body)})`;
  try {
    if (type === 1 && subType === 1) {
      const fn = b.u8('Function');
      const dev = b.u8('Device');
      return `Pci(0x${dev.toString(16)},0x${fn.toString(16)})`;
    }
    if (type === 2 && subType === 1) {
      const hid = b.u32le('HID');
      const uid = b.u32le('UID');
      if ((hid & 0xffff) === 0x41d0) return `PciRoot(0x${uid.toString(16)})`.replace('PciRoot', (hid >>> 16) === 0x0a03 || (hid >>> 16) === 0x0a08 ? 'PciRoot' : `Acpi(PNP${(hid >>> 16).toString(16).toUpperCase().padStart(4, '0')})`);
      return `Acpi(0x${hid.toString(16)},0x${uid.toString(16)})`;
    }
    if (type === 4 && subType === 1) {
      const part = b.u32le('PartitionNumber');
      const start = b.u64le('PartitionStart');
      const size = b.u64le('PartitionSize');
      const sig = b.bytes(16, 'PartitionSignature');
      const fmt = b.u8('PartitionFormat');
      const sigType = b.u8('SignatureType');
      const sigText = sigType === 2 ? formatGuid(sig) : toHex(sig.subarray(0, 4));
      return `HD(${part},${fmt === 2 ? 'GPT' : 'MBR'},${sigText},${hex64(start)},${hex64(size)})`;
    }
    if (type === 4 && subType === 4) return utf16(body);
    if (type === 4 && subType === 6) return `FvFile(${formatGuid(b.bytes(16, 'FvFileName'))})`;
    if (type === 4 && subType === 7) return `Fv(${formatGuid(b.bytes(16, 'FvName'))})`;
    if (type === 4 && subType === 3) return `VenMedia(${formatGuid(b.bytes(16, 'Guid'))})`;
    if (type === 3 && subType === 18) return `Sata(0x${b.u16le('HBA').toString(16)},0x${b.u16le('PM').toString(16)},0x${b.u16le('LUN').toString(16)})`;
    if (type === 3 && subType === 23) return `NVMe(0x${b.u32le('NSID').toString(16)})`;
    if (type === 3 && subType === 2) return `Scsi(0x${b.u16le('Target').toString(16)},0x${b.u16le('LUN').toString(16)})`;
    if (type === 3 && subType === 5) return `USB(0x${b.u8('Port').toString(16)},0x${b.u8('Interface').toString(16)})`;
    if (type === 3 && subType === 11) return `MAC(${toHex(body.subarray(0, 6))})`;
    if (type === 1 && subType === 4) return `VenHw(${formatGuid(b.bytes(16, 'Guid'))})`;
    if (type === 3 && subType === 10) return `VenMsg(${formatGuid(b.bytes(16, 'Guid'))})`;
  } catch {
    return generic();
  }
  return generic();
}

const VARIABLE_EVENTS = new Set<number>([
  EventType.EV_EFI_VARIABLE_DRIVER_CONFIG,
  EventType.EV_EFI_VARIABLE_BOOT,
  EventType.EV_EFI_VARIABLE_BOOT2,
  EventType.EV_EFI_VARIABLE_AUTHORITY,
]);

/** Event types whose digest the PFP spec defines as the hash of the event data itself. */
const DIGEST_OF_DATA = new Set<number>([
  EventType.EV_SEPARATOR,
  EventType.EV_ACTION,
  EventType.EV_EFI_ACTION,
  EventType.EV_EFI_GPT_EVENT,
  EventType.EV_EFI_GPT_EVENT2,
  EventType.EV_S_CRTM_VERSION,
  EventType.EV_OMIT_BOOT_DEVICE_EVENTS,
]);

const SIGNATURE_DB_NAMES = new Set(['PK', 'KEK', 'db', 'dbx', 'dbt', 'dbr', 'MokList', 'MokListX', 'MokListRT', 'MokListXRT', 'MokListTrusted']);

function decodeVariable(ev: TcgEvent): { decoded: DecodedEvent; digestVerified: boolean | undefined } {
  const r = reader(ev.data, 'UEFI_VARIABLE_DATA');
  const variableName = formatGuid(r.bytes(16, 'VariableName'));
  const nameLen = r.u64le('UnicodeNameLength');
  const dataLen = r.u64le('VariableDataLength');
  if (nameLen > BigInt(r.remaining) || dataLen > BigInt(r.remaining)) {
    throw reject('EVENTLOG_BAD_EVENT_DATA', `UEFI_VARIABLE_DATA declares name ${nameLen} chars and data ${dataLen} bytes, more than the ${r.remaining} bytes present`, { nameLen: String(nameLen), dataLen: String(dataLen) });
  }
  const unicodeName = utf16le(r.bytes(Number(nameLen) * 2, 'UnicodeName'));
  const variableData = r.bytes(Number(dataLen), 'VariableData');
  // PFP: the digest is over the whole UEFI_VARIABLE_DATA, which binds the GUID and name to the data. EDK2
  // measures EV_EFI_VARIABLE_BOOT over VariableData alone (a known deviation every real log shows), so only
  // for that type is the data-only form accepted. Accepting it elsewhere would let a log relabel a Boot####
  // event (whose data starts with attribute byte 0x01) as SecureBoot = 1 with a matching digest.
  const cover = digestsCover(ev, ev.eventType === EventType.EV_EFI_VARIABLE_BOOT ? [ev.data, variableData] : [ev.data]);
  const decoded: Extract<DecodedEvent, { kind: 'efiVariable' }> = { kind: 'efiVariable', variableName, unicodeName, variableData };
  if (cover.ok) decoded.digestCovers = cover.which === 0 ? 'event' : 'variableData';
  try {
    if (unicodeName === 'SecureBoot' && variableData.length >= 1) decoded.secureBoot = variableData[0] === 1;
    else if (SIGNATURE_DB_NAMES.has(unicodeName) && ev.eventType !== EventType.EV_EFI_VARIABLE_AUTHORITY) decoded.signatureLists = decodeSignatureLists(variableData);
    else if (ev.eventType === EventType.EV_EFI_VARIABLE_AUTHORITY) {
      const lists = authorityEntry(variableData);
      if (lists) decoded.signatureLists = lists;
    } else if (unicodeName === 'BootOrder') {
      const br = reader(variableData, 'BootOrder');
      decoded.bootOrder = [];
      while (br.remaining >= 2 && decoded.bootOrder.length < LIMITS.maxEntries) decoded.bootOrder.push(br.u16le('BootOrder'));
    } else if (/^Boot[0-9A-Fa-f]{4}$/.test(unicodeName)) {
      const br = reader(variableData, 'EFI_LOAD_OPTION');
      const attributes = br.u32le('Attributes');
      const fpLen = br.u16le('FilePathListLength');
      let descEnd = br.offset;
      while (descEnd + 1 < variableData.length && !(variableData[descEnd] === 0 && variableData[descEnd + 1] === 0)) descEnd += 2;
      const description = utf16le(variableData.subarray(br.offset, descEnd));
      br.offset = Math.min(descEnd + 2, variableData.length);
      const devicePath = decodeDevicePath(br.bytes(fpLen, 'FilePathList'));
      decoded.bootOption = { attributes, description, devicePath };
    }
  } catch (e) {
    // The variable itself decoded; a malformed payload (e.g. a broken signature list) is reported, not fatal.
    if (!(e instanceof JoinguardError)) throw e;
    return { decoded: { kind: 'malformed', code: e.code, message: e.message }, digestVerified: cover.ok };
  }
  return { decoded, digestVerified: cover.ok };
}

/** Total length of the DER SEQUENCE that starts `b` (definite length, at most 3 length bytes), if it does. */
function derSequenceLength(b: Uint8Array): number | undefined {
  if (b.length < 2 || b[0] !== 0x30) return undefined;
  const first = b[1]!;
  if (first < 0x80) return 2 + first;
  const n = first & 0x7f;
  if (n === 0 || n > 3 || b.length < 2 + n) return undefined;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + b[2 + i]!;
  return 2 + n + len;
}

const HASH_TYPE_BY_SIZE: Record<number, string> = { 20: Guid.EFI_CERT_SHA1, 32: Guid.EFI_CERT_SHA256, 48: Guid.EFI_CERT_SHA384, 64: Guid.EFI_CERT_SHA512 };

/**
 * What an EV_EFI_VARIABLE_AUTHORITY event says allowed an image to load: the EFI_SIGNATURE_DATA (owner GUID,
 * then a certificate or a hash) of the db/MokList entry that matched, or, for shim's "Shim" event, its bare
 * vendor certificate. Other authority data (e.g. SbatLevel's text) is not a signature entry.
 */
function authorityEntry(data: Uint8Array): SignatureList[] | undefined {
  const cert = (owner: string | undefined, der: Uint8Array): SignatureList[] => [
    {
      signatureType: Guid.EFI_CERT_X509,
      signatureTypeName: owner === undefined ? 'X509 certificate' : 'EFI_SIGNATURE_DATA',
      entries: [{ ...(owner !== undefined ? { owner } : {}), data: toHex(der), sha256: digest('sha256', der, 'hex') }],
    },
  ];
  if (derSequenceLength(data) === data.length) return cert(undefined, data);
  if (data.length <= 16) return undefined;
  const owner = formatGuid(data.subarray(0, 16));
  const body = data.subarray(16);
  if (derSequenceLength(body) === body.length) return cert(owner, body);
  const hashType = HASH_TYPE_BY_SIZE[body.length];
  if (hashType) return [{ signatureType: hashType, signatureTypeName: sigTypeNames[hashType]!, entries: [{ owner, data: toHex(body) }] }];
  return undefined;
}

const GRUB_PREFIXES: [string, 'grubCommand' | 'kernelCmdline'][] = [
  ['grub_cmd: ', 'grubCommand'],
  ['grub_cmd ', 'grubCommand'],
  ['kernel_cmdline: ', 'kernelCmdline'],
  ['kernel_cmdline ', 'kernelCmdline'],
  ['grub_kernel_cmdline ', 'kernelCmdline'],
];

function decodeIpl(ev: TcgEvent): { decoded: DecodedEvent; digestVerified: boolean | undefined } {
  // systemd-boot and some loaders log UTF-16 strings (the kernel command line); grub and shim log ASCII.
  const wide = ev.data.length >= 4 && ev.data.length % 2 === 0 && ev.data[1] === 0 && ev.data[3] === 0;
  const text = wide ? utf16(ev.data) : ascii(ev.data);
  const decoded: Extract<DecodedEvent, { kind: 'ipl' }> = { kind: 'ipl', text };
  if (/^Mok[A-Za-z]*$/.test(text) || text === 'SbatLevel') {
    // The digest is over the variable's content, which the log does not carry.
    decoded.shimVariable = text;
    return { decoded, digestVerified: undefined };
  }
  const candidates = [ev.data, Buffer.from(text, 'latin1')];
  let grub = false;
  for (const [prefix, field] of GRUB_PREFIXES) {
    if (!grub && text.startsWith(prefix)) {
      grub = true;
      const rest = text.slice(prefix.length);
      decoded[field] = rest;
      // grub measures the command or command line without its log prefix (and without the NUL).
      candidates.push(Buffer.from(rest, 'latin1'), Buffer.from(rest + '\0', 'latin1'));
    }
  }
  const ok = digestsCover(ev, candidates).ok;
  // A grub string event must hash to its text. Other EV_IPL events (a file path whose digest is over the
  // file, systemd-boot's UTF-16 command line) are verified when a form matches, otherwise not checkable.
  return { decoded, digestVerified: grub ? ok : ok === true ? true : undefined };
}

/**
 * How many decoded events are remembered, and the largest event data that is. The nodes of a pool boot the
 * same firmware, Secure Boot variables and boot chain, so most events of one node's log recur, byte for
 * byte, in the next node's: those are decoded (and their digests checked) once.
 */
const DECODED_MEMO_SIZE = 2048;
const DECODED_MEMO_MAX_DATA = 64 * 1024;
/** Bound on what the memo holds, counting an entry as three times its data (the key and the hex it decodes to). */
const DECODED_MEMO_MAX_BYTES = 16 * 1024 * 1024;
interface Remembered {
  decoded: DecodedEvent;
  digestVerified: boolean | undefined;
}
/** By key (see decodeEventShared; a flat string, hashed and compared natively), the decoded event. */
const decodedMemo = new BoundedMap<string, Remembered>(DECODED_MEMO_SIZE, DECODED_MEMO_MAX_BYTES);

/** What the memo of decoded events holds now (for tests of its bounds). */
export function decodedMemoUsage(): { entries: number; bytes: number; maxEntries: number; maxBytes: number } {
  return { entries: decodedMemo.size, bytes: decodedMemo.cost, maxEntries: DECODED_MEMO_SIZE, maxBytes: DECODED_MEMO_MAX_BYTES };
}

const memoCost = (key: string): number => 3 * key.length + 256;


/**
 * decodeEvent, remembered by everything its result depends on: the event type, the digests and the data. The
 * caller names them by `key`: the event's bytes as they stand in the log (pcrIndex, type, digests, size, data)
 * after the log's layout (legacy or crypto-agile, and the digest sizes its Spec ID declares, which decide where
 * those bytes split), one string made without decoding anything. A Spec ID header, which depends on the log's
 * header too, is never remembered. The result is frozen and may be shared by several logs; it holds no view
 * into any log's buffer.
 */
export function decodeEventShared(ev: TcgEvent, specId: SpecIdEvent | undefined, key: () => string): { decoded: DecodedEvent; digestVerified: boolean | undefined } {
  if (specId !== undefined || ev.data.length > DECODED_MEMO_MAX_DATA) return decodeEvent(ev, specId);
  const k = key();
  const known = decodedMemo.get(k);
  if (known !== undefined) return { decoded: known.decoded, digestVerified: known.digestVerified };
  const fresh = decodeEvent(ev, specId);
  const d = fresh.decoded;
  const kept: Remembered = { decoded: deepFreeze(d.kind === 'efiVariable' ? { ...d, variableData: d.variableData.slice() } : d), digestVerified: fresh.digestVerified };
  // Oldest first out: hostile logs full of one-off events only push out each other.
  decodedMemo.set(k, kept, memoCost(k));
  return { decoded: kept.decoded, digestVerified: kept.digestVerified };
}

/** Decodes one event's content and checks its digests where the spec defines them over that content. */
export function decodeEvent(ev: TcgEvent, specId: SpecIdEvent | undefined): { decoded: DecodedEvent; digestVerified: boolean | undefined } {
  try {
    return decodeEventUnchecked(ev, specId);
  } catch (e) {
    if (!(e instanceof JoinguardError)) throw e;
    const ok = DIGEST_OF_DATA.has(ev.eventType) || VARIABLE_EVENTS.has(ev.eventType) ? digestsCover(ev, [ev.data]).ok : undefined;
    return { decoded: { kind: 'malformed', code: e.code, message: e.message }, digestVerified: ok };
  }
}

function decodeEventUnchecked(ev: TcgEvent, specId: SpecIdEvent | undefined): { decoded: DecodedEvent; digestVerified: boolean | undefined } {
  const t = ev.eventType;
  if (t === EventType.EV_NO_ACTION) {
    if (specId) return { decoded: { kind: 'specId', specId }, digestVerified: undefined };
    const sig = ascii(ev.data.subarray(0, 16));
    if (sig === 'StartupLocality' && ev.data.length >= 17) return { decoded: { kind: 'startupLocality', locality: ev.data[16]! }, digestVerified: undefined };
    return { decoded: { kind: 'noAction', signature: sig }, digestVerified: undefined };
  }
  if (VARIABLE_EVENTS.has(t)) return decodeVariable(ev);
  if (t === EventType.EV_SEPARATOR) {
    const ok = digestsCover(ev, [ev.data]).ok;
    if (ev.data.length !== 4) return { decoded: { kind: 'malformed', code: 'EVENTLOG_BAD_SEPARATOR', message: `separator data is ${ev.data.length} bytes, not 4` }, digestVerified: ok };
    const value = reader(ev.data, 'separator').u32le('value');
    // 0 ends a phase normally; PFP uses 1 (TCG 1.2 logs 0xFFFFFFFF) to record a firmware error.
    return { decoded: { kind: 'separator', value, error: value !== 0 }, digestVerified: ok };
  }
  if (t === EventType.EV_EFI_ACTION || t === EventType.EV_ACTION) return { decoded: { kind: 'action', text: ascii(ev.data) }, digestVerified: digestsCover(ev, [ev.data]).ok };
  if (t === EventType.EV_S_CRTM_VERSION) {
    const text = ev.data.length % 2 === 0 && ev.data.length >= 2 && ev.data[1] === 0 ? utf16(ev.data) : ascii(ev.data);
    return { decoded: { kind: 'string', text }, digestVerified: digestsCover(ev, [ev.data]).ok };
  }
  if (t === EventType.EV_POST_CODE || t === EventType.EV_EFI_HCRTM_EVENT || t === EventType.EV_OMIT_BOOT_DEVICE_EVENTS) {
    return { decoded: { kind: 'string', text: ascii(ev.data) }, digestVerified: t === EventType.EV_OMIT_BOOT_DEVICE_EVENTS ? digestsCover(ev, [ev.data]).ok : undefined };
  }
  if (t === EventType.EV_EFI_BOOT_SERVICES_APPLICATION || t === EventType.EV_EFI_BOOT_SERVICES_DRIVER || t === EventType.EV_EFI_RUNTIME_SERVICES_DRIVER) {
    const r = reader(ev.data, 'UEFI_IMAGE_LOAD_EVENT');
    const loc = r.u64le('ImageLocationInMemory');
    const len = r.u64le('ImageLengthInMemory');
    const link = r.u64le('ImageLinkTimeAddress');
    const dpLen = r.u64le('LengthOfDevicePath');
    if (dpLen > BigInt(r.remaining)) throw reject('EVENTLOG_BAD_EVENT_DATA', `image load event declares a ${dpLen}-byte device path, ${r.remaining} bytes remain`);
    const devicePath = decodeDevicePath(r.bytes(Number(dpLen), 'DevicePath'));
    // The digest is the PE/COFF Authenticode hash of the image, which the log does not carry.
    return { decoded: { kind: 'imageLoad', imageLocationInMemory: hex64(loc), imageLengthInMemory: hex64(len), imageLinkTimeAddress: hex64(link), devicePath }, digestVerified: undefined };
  }
  if (t === EventType.EV_EFI_GPT_EVENT || t === EventType.EV_EFI_GPT_EVENT2) {
    const ok = digestsCover(ev, [ev.data]).ok;
    const r = reader(ev.data, 'UEFI_GPT_DATA');
    const signature = ascii(r.bytes(8, 'Signature'));
    if (signature !== 'EFI PART') throw reject('EVENTLOG_BAD_EVENT_DATA', `GPT header signature is ${JSON.stringify(signature)}, not "EFI PART"`);
    const revision = r.u32le('Revision');
    r.skip(4 + 4 + 4 + 8 + 8 + 8 + 8, 'header');
    const diskGuid = formatGuid(r.bytes(16, 'DiskGUID'));
    r.skip(8 + 4, 'PartitionEntryLBA');
    const entrySize = r.u32le('SizeOfPartitionEntry');
    r.skip(4, 'PartitionEntryArrayCRC32');
    const n = r.u64le('NumberOfPartitions');
    if (entrySize < 128 || n > BigInt(LIMITS.maxEntries) || n * BigInt(entrySize) > BigInt(r.remaining)) {
      throw reject('EVENTLOG_BAD_EVENT_DATA', `GPT event declares ${n} partitions of ${entrySize} bytes, ${r.remaining} bytes remain`);
    }
    const partitions: GptPartition[] = [];
    for (let i = 0; i < Number(n); i++) {
      const pr = reader(r.bytes(entrySize, 'partition'), 'partition entry');
      partitions.push({
        partitionTypeGuid: formatGuid(pr.bytes(16, 'PartitionTypeGUID')),
        uniquePartitionGuid: formatGuid(pr.bytes(16, 'UniquePartitionGUID')),
        startingLba: hex64(pr.u64le('StartingLBA')),
        endingLba: hex64(pr.u64le('EndingLBA')),
        attributes: hex64(pr.u64le('Attributes')),
        partitionName: utf16(pr.bytes(72, 'PartitionName')),
      });
    }
    return { decoded: { kind: 'gpt', diskGuid, revision, partitions }, digestVerified: ok };
  }
  if (t === EventType.EV_IPL) return decodeIpl(ev);
  if (t === EventType.EV_EFI_PLATFORM_FIRMWARE_BLOB || t === EventType.EV_EFI_PLATFORM_FIRMWARE_BLOB2) {
    const r = reader(ev.data, 'UEFI_PLATFORM_FIRMWARE_BLOB');
    let description: string | undefined;
    if (t === EventType.EV_EFI_PLATFORM_FIRMWARE_BLOB2) description = ascii(r.bytes(r.u8('BlobDescriptionSize'), 'BlobDescription'));
    const base = r.u64le('BlobBase');
    const length = r.u64le('BlobLength');
    return { decoded: { kind: 'firmwareBlob', ...(description !== undefined ? { description } : {}), blobBase: hex64(base), blobLength: hex64(length) }, digestVerified: undefined };
  }
  if (t === EventType.EV_EFI_HANDOFF_TABLES || t === EventType.EV_EFI_HANDOFF_TABLES2) {
    const r = reader(ev.data, 'UEFI_HANDOFF_TABLE_POINTERS');
    let description: string | undefined;
    if (t === EventType.EV_EFI_HANDOFF_TABLES2) description = ascii(r.bytes(r.u8('TableDescriptionSize'), 'TableDescription'));
    const n = r.u64le('NumberOfTables');
    if (n > BigInt(LIMITS.maxEntries) || n * 24n > BigInt(r.remaining)) throw reject('EVENTLOG_BAD_EVENT_DATA', `handoff tables event declares ${n} tables, ${r.remaining} bytes remain`);
    const tables = [];
    for (let i = 0; i < Number(n); i++) tables.push({ vendorGuid: formatGuid(r.bytes(16, 'VendorGuid')), vendorTable: hex64(r.u64le('VendorTable')) });
    return { decoded: { kind: 'handoffTables', ...(description !== undefined ? { description } : {}), tables }, digestVerified: undefined };
  }
  return { decoded: { kind: 'unknown' }, digestVerified: undefined };
}

/** A one-line description of an event for tables and error messages. */
export function summarizeEvent(ev: TcgEvent): string {
  const d = ev.decoded;
  const clip = (raw: string, n = 80): string => {
    // Event data is attacker-chosen: no control characters reach a terminal or a log line.
    const s = raw.replace(/[\t\n\r]+/g, ' ').replace(/[\x00-\x1f\x7f]/g, '.');
    return s.length > n ? s.slice(0, n - 1) + '…' : s;
  };
  switch (d.kind) {
    case 'specId':
      return `Spec ID ${d.specId.specVersionMajor}.${d.specId.specVersionMinor} algs ${d.specId.algorithms.map((a) => a.bank).join(',')}`;
    case 'startupLocality':
      return `StartupLocality ${d.locality}`;
    case 'noAction':
      return clip(d.signature);
    case 'efiVariable': {
      let s = `${d.unicodeName} (${d.variableData.length} B)`;
      if (d.secureBoot !== undefined) s += ` = ${d.secureBoot ? 'enabled' : 'disabled'}`;
      if (d.signatureLists) s += ` ${d.signatureLists.reduce((n, l) => n + l.entries.length, 0)} signatures`;
      if (d.bootOption) s += ` "${d.bootOption.description}" ${d.bootOption.devicePath}`;
      if (d.bootOrder) s += ` ${d.bootOrder.map((x) => x.toString(16).padStart(4, '0')).join(',')}`;
      return clip(s);
    }
    case 'separator':
      return d.error ? `separator ERROR 0x${d.value.toString(16)}` : 'separator';
    case 'action':
    case 'string':
      return clip(d.text);
    case 'imageLoad':
      return clip(d.devicePath || `image at ${d.imageLocationInMemory}`);
    case 'gpt':
      return `GPT ${d.diskGuid} ${d.partitions.length} partitions`;
    case 'ipl':
      return clip(d.text);
    case 'firmwareBlob':
      return `${d.description ? d.description + ' ' : ''}blob ${d.blobBase} +${d.blobLength}`;
    case 'handoffTables':
      return `${d.description ? d.description + ' ' : ''}${d.tables.length} tables`;
    case 'malformed':
      return clip(`malformed: ${d.code}`);
    default:
      return `${ev.data.length} B`;
  }
}
