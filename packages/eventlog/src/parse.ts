import { ByteReader, JoinguardError, inputError, reject, toHex } from '@joinguard/core';
import { EventType, HashAlg, LIMITS, algName, eventTypeName } from './constants.js';
import { decodeEventShared, type DecodedEvent } from './decode.js';

export interface EventDigest {
  /** TPM_ALG_ID of the bank. */
  alg: number;
  /** Bank name (sha1, sha256, …) or alg_0xNNNN for an algorithm this package cannot compute. */
  bank: string;
  digest: Uint8Array;
}

export interface TcgEvent {
  /** Position in the log; the Spec ID header event of a crypto-agile log is 0. */
  index: number;
  /** Byte offset of the record in the log. */
  offset: number;
  /** PCR index (TPM logs) or MR index (CCEL: 0 = MRTD, 1..4 = RTMR0..3). */
  pcrIndex: number;
  eventType: number;
  typeName: string;
  digests: EventDigest[];
  data: Uint8Array;
  /** What the event data says, decoded for the event types a policy needs; `unknown` for the rest. */
  decoded: DecodedEvent;
  /**
   * true: every computable digest of this event equals the hash of its content where the PFP spec says it must
   * (EFI variables, separators, actions, GPT, …), so `decoded` may be trusted. false: a digest does not match,
   * so the content must not be trusted (the digest is still what was extended). undefined: the digest covers
   * something else (an image in memory, firmware), so the content cannot be checked from the log.
   */
  digestVerified: boolean | undefined;
}

export interface SpecIdAlgorithm {
  alg: number;
  bank: string;
  digestSize: number;
}

/** TCG_EfiSpecIDEventStruct, from the first event of a crypto-agile log. */
export interface SpecIdEvent {
  signature: string;
  platformClass: number;
  specVersionMajor: number;
  specVersionMinor: number;
  specErrata: number;
  uintnSize: number;
  algorithms: SpecIdAlgorithm[];
  vendorInfo: Uint8Array;
}

export interface EventLog {
  kind: 'tpm' | 'ccel';
  format: 'crypto-agile' | 'sha1-legacy';
  specId: SpecIdEvent | undefined;
  /** Every record, the header event included, in log order. */
  events: TcgEvent[];
  /** Banks the log carries, in Spec ID order (legacy logs: sha1). */
  banks: string[];
  /** Locality from the StartupLocality EV_NO_ACTION event, if the log has one. */
  startupLocality: number | undefined;
  /** Bytes consumed by events; a CCEL region's padding after the last event is not counted. */
  length: number;
}

export interface ParseOptions {
  maxEvents?: number;
  maxEventSize?: number;
  /** Decode event content and check digests against it (default true). Replay alone does not need it. */
  decode?: boolean;
  /** TPM logs only: accept 0x00/0xFF fill after the last event (a log read from a fixed-size firmware buffer). */
  allowTrailingPadding?: boolean;
}

const SPEC_ID_03 = 'Spec ID Event03\0';
const TRUNC = 'EVENTLOG_TRUNCATED';

function readCString(b: Uint8Array): string {
  let end = b.indexOf(0);
  if (end < 0) end = b.length;
  return Buffer.from(b.buffer, b.byteOffset, end).toString('latin1');
}

function isSpecId03(data: Uint8Array): boolean {
  if (data.length < 16) return false;
  return Buffer.from(data.buffer, data.byteOffset, 16).toString('latin1') === SPEC_ID_03;
}

function parseSpecId(data: Uint8Array): SpecIdEvent {
  const r = new ByteReader(data, { truncatedCode: 'EVENTLOG_BAD_SPEC_ID', what: 'Spec ID event' });
  const signature = readCString(r.bytes(16, 'signature'));
  const platformClass = r.u32le('platformClass');
  const specVersionMinor = r.u8('specVersionMinor');
  const specVersionMajor = r.u8('specVersionMajor');
  const specErrata = r.u8('specErrata');
  const uintnSize = r.u8('uintnSize');
  const n = r.u32le('numberOfAlgorithms');
  if (n === 0 || n > LIMITS.maxAlgorithms) {
    throw reject('EVENTLOG_BAD_SPEC_ID', `Spec ID event declares ${n} algorithms; expected 1..${LIMITS.maxAlgorithms}`, { numberOfAlgorithms: n });
  }
  const algorithms: SpecIdAlgorithm[] = [];
  for (let i = 0; i < n; i++) {
    const alg = r.u16le('algorithmId');
    const digestSize = r.u16le('digestSize');
    if (digestSize === 0 || digestSize > LIMITS.maxDigestSize) {
      throw reject('EVENTLOG_BAD_DIGEST_SIZE', `Spec ID event gives algorithm ${algName(alg)} a digest size of ${digestSize}; expected 1..${LIMITS.maxDigestSize}`, { alg, digestSize });
    }
    const known = HashAlg[alg];
    if (known && known.size !== digestSize) {
      throw reject('EVENTLOG_BAD_DIGEST_SIZE', `Spec ID event gives ${known.name} a digest size of ${digestSize}, not ${known.size}`, { alg, digestSize });
    }
    if (algorithms.some((a) => a.alg === alg)) {
      throw reject('EVENTLOG_BAD_SPEC_ID', `Spec ID event lists algorithm ${algName(alg)} twice`, { alg });
    }
    algorithms.push({ alg, bank: algName(alg), digestSize });
  }
  const vendorInfoSize = r.u8('vendorInfoSize');
  const vendorInfo = r.bytes(vendorInfoSize, 'vendorInfo');
  return { signature, platformClass, specVersionMajor, specVersionMinor, specErrata, uintnSize, algorithms, vendorInfo };
}

/** Padding that ends a CCEL region (and sometimes a firmware log buffer): all 0x00 or all 0xFF. */
function isPadding(b: Uint8Array): boolean {
  if (b.length === 0) return true;
  const first = b[0];
  if (first !== 0 && first !== 0xff) return false;
  for (let i = 1; i < b.length; i++) if (b[i] !== first) return false;
  return true;
}

/** Offset of the run of 0x00 (or 0xFF) bytes that ends the buffer; the buffer's length when it ends otherwise. */
function trailingFillStart(b: Uint8Array): number {
  const last = b[b.length - 1];
  if (last !== 0 && last !== 0xff) return b.length;
  let i = b.length - 1;
  while (i > 0 && b[i - 1] === last) i--;
  return i;
}

function parseLog(bytes: Uint8Array, kind: 'tpm' | 'ccel', opts: ParseOptions): EventLog {
  const maxEvents = opts.maxEvents ?? LIMITS.maxEvents;
  const maxEventSize = opts.maxEventSize ?? LIMITS.maxEventSize;
  const decode = opts.decode ?? true;
  if (!(bytes instanceof Uint8Array)) throw inputError('EVENTLOG_BAD_INPUT', 'event log must be a Uint8Array');
  if (bytes.length === 0) throw reject('EVENTLOG_EMPTY', 'event log is empty');
  const r = new ByteReader(bytes, { truncatedCode: TRUNC, what: 'event log' });
  const events: TcgEvent[] = [];

  // The first record is always in the SHA-1 TCG_PCR_EVENT form; in a crypto-agile log it is the Spec ID header.
  const first = readLegacyEvent(r, 0, maxEventSize);
  let specId: SpecIdEvent | undefined;
  let format: EventLog['format'];
  if (first.eventType === EventType.EV_NO_ACTION && isSpecId03(first.data)) {
    specId = parseSpecId(first.data);
    format = 'crypto-agile';
  } else {
    format = 'sha1-legacy';
  }
  if (kind === 'ccel' && format !== 'crypto-agile') {
    throw reject('EVENTLOG_BAD_FORMAT', 'a CCEL must start with a Spec ID Event03 header', { firstEventType: first.eventType });
  }
  events.push(first);
  const sizes = new Map<number, SpecIdAlgorithm>();
  for (const a of specId?.algorithms ?? []) sizes.set(a.alg, a);

  // Where a TPM log's trailing 0x00/0xFF fill begins, found once: testing the rest of the buffer at every
  // event would cost time quadratic in the log (a long zero run that ends in one stray byte).
  const fillStart = kind === 'tpm' && opts.allowTrailingPadding ? trailingFillStart(bytes) : bytes.length;
  let length = r.offset;
  while (r.remaining > 0) {
    if (events.length >= maxEvents) {
      throw reject('EVENTLOG_TOO_MANY_EVENTS', `event log has more than ${maxEvents} events`, { maxEvents, offset: r.offset });
    }
    // CCEL regions are fixed-size and padded after the last event; an index/type pair that is all 0x00 or
    // all 0xFF marks the end. A TPM log ends at its last byte: bytes left over are a truncated event (a cut
    // inside an event can leave zeros), unless the caller read the log from a padded buffer and says so.
    if (kind === 'ccel' ? isPadding(bytes.subarray(r.offset, r.offset + 8)) : r.offset >= fillStart) break;
    const ev = format === 'crypto-agile' ? readEvent2(r, events.length, sizes, maxEventSize) : readLegacyEvent(r, events.length, maxEventSize);
    events.push(ev);
    length = r.offset;
  }

  let startupLocality: number | undefined;
  const banks = format === 'crypto-agile' ? specId!.algorithms.map((a) => a.bank) : ['sha1'];
  // How an event's bytes split into digests and data: the memo of decoded events keys on this and the bytes.
  const layout = `${format}:${[...sizes.values()].map((a) => `${a.alg}/${a.digestSize}`).join(',')}|`;
  const raw = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < events.length; i++) {
    const ev = events[i]!;
    const end = i + 1 < events.length ? events[i + 1]!.offset : length;
    const { decoded, digestVerified } =
      decode || ev.eventType === EventType.EV_NO_ACTION
        ? decodeEventShared(ev, ev.index === 0 ? specId : undefined, () => layout + raw.toString('latin1', ev.offset, end))
        : { decoded: { kind: 'unknown' } as DecodedEvent, digestVerified: undefined };
    ev.decoded = decoded;
    ev.digestVerified = digestVerified;
    if (decoded.kind === 'startupLocality') {
      if (ev.pcrIndex !== 0) {
        throw reject('EVENTLOG_BAD_STARTUP_LOCALITY', `StartupLocality event ${ev.index} is for PCR ${ev.pcrIndex}, not PCR 0`, { event: ev.index, pcrIndex: ev.pcrIndex });
      }
      if (startupLocality !== undefined) {
        throw reject('EVENTLOG_BAD_STARTUP_LOCALITY', `event log has a second StartupLocality event at ${ev.index}`, { event: ev.index });
      }
      if (events.some((e) => e.index < ev.index && e.pcrIndex === 0 && e.eventType !== EventType.EV_NO_ACTION)) {
        throw reject('EVENTLOG_BAD_STARTUP_LOCALITY', `StartupLocality event ${ev.index} comes after PCR 0 was extended`, { event: ev.index });
      }
      startupLocality = decoded.locality;
    }
  }
  return { kind, format, specId, events, banks, startupLocality, length };
}

function blankEvent(index: number, offset: number, pcrIndex: number, eventType: number, digests: EventDigest[], data: Uint8Array): TcgEvent {
  return { index, offset, pcrIndex, eventType, typeName: eventTypeName(eventType), digests, data, decoded: { kind: 'unknown' }, digestVerified: undefined };
}

function readData(r: ByteReader, index: number, maxEventSize: number): Uint8Array {
  const size = r.u32le('eventSize');
  if (size > maxEventSize) {
    throw reject('EVENTLOG_EVENT_TOO_LARGE', `event ${index} declares ${size} bytes of data, more than the ${maxEventSize} allowed`, { event: index, eventSize: size, maxEventSize });
  }
  return r.bytes(size, 'event');
}

function withEvent<T>(index: number, offset: number, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof JoinguardError) {
      throw new JoinguardError(e.code, `event ${index} at offset ${offset}: ${e.message}`, { ...e.details, event: index, eventOffset: offset }, { kind: e.kind });
    }
    throw e;
  }
}

/** TCG_PCR_EVENT: the SHA-1 form of the first record and of every record of a legacy log. */
function readLegacyEvent(r: ByteReader, index: number, maxEventSize: number): TcgEvent {
  const offset = r.offset;
  return withEvent(index, offset, () => {
    const pcrIndex = r.u32le('pcrIndex');
    const eventType = r.u32le('eventType');
    const digest = r.bytes(20, 'digest');
    const data = readData(r, index, maxEventSize);
    return blankEvent(index, offset, pcrIndex, eventType, [{ alg: 0x0004, bank: 'sha1', digest }], data);
  });
}

/** TCG_PCR_EVENT2, digest sizes from the Spec ID event. */
function readEvent2(r: ByteReader, index: number, sizes: Map<number, SpecIdAlgorithm>, maxEventSize: number): TcgEvent {
  const offset = r.offset;
  return withEvent(index, offset, () => {
    const pcrIndex = r.u32le('pcrIndex');
    const eventType = r.u32le('eventType');
    const count = r.u32le('digests.count');
    if (count > sizes.size) {
      throw reject('EVENTLOG_BAD_DIGEST_COUNT', `event ${index} has ${count} digests but the Spec ID event declares ${sizes.size} algorithms`, { event: index, count, algorithms: sizes.size });
    }
    const digests: EventDigest[] = [];
    for (let i = 0; i < count; i++) {
      const alg = r.u16le('digests.hashAlg');
      const a = sizes.get(alg);
      if (!a) {
        throw reject('EVENTLOG_UNKNOWN_ALGORITHM', `event ${index} has a digest for algorithm 0x${alg.toString(16)} that the Spec ID event does not declare`, { event: index, alg });
      }
      if (digests.some((d) => d.alg === alg)) {
        throw reject('EVENTLOG_BAD_DIGEST_COUNT', `event ${index} has two ${a.bank} digests`, { event: index, alg });
      }
      digests.push({ alg, bank: a.bank, digest: r.bytes(a.digestSize, 'digest') });
    }
    const data = readData(r, index, maxEventSize);
    return blankEvent(index, offset, pcrIndex, eventType, digests, data);
  });
}

/**
 * Parses a TCG PC Client Platform Firmware Profile event log: crypto-agile (Spec ID Event03 header, then
 * TCG_PCR_EVENT2 records) or the legacy SHA-1 format. Throws EVENTLOG_* errors on truncation, sizes out
 * of bounds, undeclared algorithms and limits; never returns a partial log.
 */
export function parseEventLog(bytes: Uint8Array, opts: ParseOptions = {}): EventLog {
  return parseLog(bytes, 'tpm', opts);
}

/**
 * Parses a Confidential Computing Event Log (the TDX CCEL region: crypto-agile records where pcrIndex is
 * the MR index). The region is padded after the last event; parsing stops there.
 */
export function parseCcel(bytes: Uint8Array, opts: ParseOptions = {}): EventLog {
  return parseLog(bytes, 'ccel', opts);
}

/** The hex digest of one bank of an event, if the event carries it. */
export function eventDigestHex(ev: TcgEvent, bank: string): string | undefined {
  const d = ev.digests.find((x) => x.bank === bank);
  return d ? toHex(d.digest) : undefined;
}
