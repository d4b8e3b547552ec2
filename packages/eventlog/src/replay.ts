import { getHashes } from 'node:crypto';
import { BoundedMap, digest, reject, toHex } from '@joinguard/core';
import { EventType, HashAlg } from './constants.js';
import type { EventLog, TcgEvent } from './parse.js';
import { summarizeEvent } from './decode.js';

/** bank → PCR index → hex value. */
export type PcrBanks = { [bank: string]: { [pcr: number]: string } };

const nodeHashes = new Set(getHashes());
const bankAlg = new Map(Object.entries(HashAlg).map(([id, h]) => [h.name, { id: Number(id), ...h }]));

/** Highest PCR index of a TPM 2.0 PC Client TPM. */
const MAX_PCR = 23;

/** Reset value of a PCR: zero, except the D-RTM PCRs 17..22 (all ones until a D-RTM event). */
function initialValue(pcr: number, size: number, locality: number | undefined): Buffer {
  if (pcr >= 17 && pcr <= 22) return Buffer.alloc(size, 0xff);
  const v = Buffer.alloc(size);
  if (pcr === 0 && locality !== undefined) v[size - 1] = locality;
  return v;
}

function extendable(ev: TcgEvent): boolean {
  return ev.eventType !== EventType.EV_NO_ACTION;
}

export interface BankTrace {
  /** Final value of each PCR that at least one event extended. */
  values: Map<number, Buffer>;
  /** Per PCR: the events extended into it, with the PCR value after each. */
  history: Map<number, { event: TcgEvent; after: Buffer }[]>;
}

function checkPcrIndex(log: EventLog, ev: TcgEvent): void {
  if (log.kind === 'tpm' && ev.pcrIndex > MAX_PCR) {
    throw reject('EVENTLOG_BAD_PCR_INDEX', `event ${ev.index} extends PCR ${ev.pcrIndex}; a PC Client TPM has PCRs 0..${MAX_PCR}`, { event: ev.index, pcrIndex: ev.pcrIndex });
  }
}

/** The banks of `log` this runtime can replay (those whose hash it has). */
export function replayableBanks(log: EventLog): string[] {
  return log.banks.filter((b) => {
    const h = bankAlg.get(b);
    return h !== undefined && nodeHashes.has(h.node);
  });
}

/**
 * The PCRs the log's events extend (EV_NO_ACTION aside), ascending: the PCRs a replay of any of its banks
 * gives values for, found without hashing anything.
 */
export function extendedPcrs(log: EventLog): number[] {
  const pcrs = new Set<number>();
  for (const ev of log.events) {
    if (!extendable(ev)) continue;
    checkPcrIndex(log, ev);
    pcrs.add(ev.pcrIndex);
  }
  return [...pcrs].sort((a, b) => a - b);
}

/**
 * The nodes of a pool extend the same digests into the same PCR values at every boot: the last extends
 * computed are remembered, by hash, previous value and digest (the whole input of the hash), oldest first out.
 */
const extendMemo = new BoundedMap<string, Buffer>(4096);

function extend(node: string, prev: Buffer, eventDigest: Uint8Array): Buffer {
  const input = Buffer.concat([prev, eventDigest]);
  const key = `${node}:${input.toString('latin1')}`;
  const known = extendMemo.get(key);
  if (known !== undefined) return known;
  const next = digest(node, input);
  extendMemo.set(key, next);
  return next;
}

function replayBank(log: EventLog, bank: string, keepHistory: boolean): BankTrace | undefined {
  const h = bankAlg.get(bank);
  if (!h || !nodeHashes.has(h.node)) return undefined;
  const values = new Map<number, Buffer>();
  const history = new Map<number, { event: TcgEvent; after: Buffer }[]>();
  for (const ev of log.events) {
    if (!extendable(ev)) continue;
    checkPcrIndex(log, ev);
    const d = ev.digests.find((x) => x.alg === h.id);
    if (!d) {
      throw reject('EVENTLOG_DIGEST_MISSING', `event ${ev.index} (PCR ${ev.pcrIndex}, ${ev.typeName}) has no ${bank} digest, so the ${bank} bank cannot be replayed`, { event: ev.index, bank });
    }
    const prev = values.get(ev.pcrIndex) ?? initialValue(ev.pcrIndex, h.size, log.startupLocality);
    const next = extend(h.node, prev, d.digest);
    values.set(ev.pcrIndex, next);
    if (keepHistory) {
      let list = history.get(ev.pcrIndex);
      if (!list) history.set(ev.pcrIndex, (list = []));
      list.push({ event: ev, after: next });
    }
  }
  return { values, history };
}

function toBanks(log: EventLog, pick: (pcr: number) => boolean): PcrBanks {
  const out: PcrBanks = {};
  for (const bank of log.banks) {
    const t = replayBank(log, bank, false);
    if (!t) continue;
    const m: { [pcr: number]: string } = {};
    for (const pcr of [...t.values.keys()].sort((a, b) => a - b)) if (pick(pcr)) m[pcr] = toHex(t.values.get(pcr)!);
    out[bank] = m;
  }
  return out;
}

/**
 * Replays a TPM event log per bank. EV_NO_ACTION events are not extended; a StartupLocality event sets
 * PCR 0's start value. Returns the PCRs that at least one event extended. Banks this runtime cannot hash
 * (e.g. SM3 without OpenSSL support) are left out.
 */
export function replayPcrs(log: EventLog): PcrBanks {
  if (log.kind !== 'tpm') throw reject('EVENTLOG_WRONG_KIND', 'replayPcrs takes a TPM event log; use replayRtmrs for a CCEL');
  return toBanks(log, () => true);
}

export interface Rtmrs {
  rtmr0: string;
  rtmr1: string;
  rtmr2: string;
  rtmr3: string;
}

/** Replays a CCEL (SHA-384) into RTMR0..3: MR index 1..4 → RTMR0..3; index 0 (MRTD) is not extended by the log. */
export function replayRtmrs(log: EventLog): Rtmrs {
  if (!log.banks.includes('sha384')) throw reject('EVENTLOG_BANK_MISSING', `a CCEL must carry SHA-384 digests; it has ${log.banks.join(', ')}`, { banks: log.banks });
  for (const ev of log.events) {
    if (extendable(ev) && ev.pcrIndex > 4) {
      throw reject('EVENTLOG_BAD_MR_INDEX', `CCEL event ${ev.index} has MR index ${ev.pcrIndex}; TDX has 0 (MRTD) and 1..4 (RTMR0..3)`, { event: ev.index, mrIndex: ev.pcrIndex });
    }
  }
  const t = replayBank({ ...log, kind: 'ccel', startupLocality: undefined }, 'sha384', false)!;
  const v = (mr: number): string => toHex(t.values.get(mr) ?? Buffer.alloc(48));
  return { rtmr0: v(1), rtmr1: v(2), rtmr2: v(3), rtmr3: v(4) };
}

export interface PcrMismatch {
  bank: string;
  pcr: number;
  quoted: string;
  replayed: string;
  /**
   * Where the log and the quote part. `log-longer`: the quoted value is the replay after event
   * `lastMatchingEvent`, so the log has events the quote does not cover, from `firstDifferingEvent` on.
   * `diverged`: no prefix of the log's events gives the quoted value; the log was altered or is missing
   * events, the earliest suspect being `firstDifferingEvent` (the first event of that PCR).
   * `no-events`: the log has no event for this PCR, the quote has a non-reset value.
   */
  reason: 'log-longer' | 'diverged' | 'no-events';
  lastMatchingEvent?: number;
  firstDifferingEvent?: number;
  firstDifferingEventSummary?: string;
}

export interface PcrComparison {
  match: boolean;
  compared: { bank: string; pcr: number }[];
  mismatches: PcrMismatch[];
  /** The mismatch that parts earliest in the log (by event index), or undefined when all match. */
  first: PcrMismatch | undefined;
  /** Quoted banks the log has no digests for. */
  banksNotInLog: string[];
  /** PCRs the log extends that the quote does not cover (their events are unverified). */
  notQuoted: { bank: string; pcr: number }[];
}

/** Compares a replay of the log with quoted PCR values and names the first PCR and event where they part. */
export function comparePcrs(log: EventLog, quoted: PcrBanks): PcrComparison {
  const compared: PcrComparison['compared'] = [];
  const mismatches: PcrMismatch[] = [];
  const banksNotInLog: string[] = [];
  const notQuoted: PcrComparison['notQuoted'] = [];
  for (const [name, pcrs] of Object.entries(quoted)) {
    // Quotes and tools spell banks as SHA256, sha256 or sha-256.
    const bank = name.toLowerCase().replace(/-/g, '');
    const trace = log.banks.includes(bank) ? replayBank(log, bank, true) : undefined;
    if (!trace) {
      banksNotInLog.push(bank);
      continue;
    }
    const size = bankAlg.get(bank)!.size;
    for (const [k, hex] of Object.entries(pcrs)) {
      const pcr = Number(k);
      const q = hex.toLowerCase();
      if (!Number.isInteger(pcr) || pcr < 0 || pcr > MAX_PCR || !/^[0-9a-f]*$/.test(q) || q.length !== size * 2) {
        throw reject('EVENTLOG_BAD_QUOTED_PCR', `quoted ${bank} PCR ${k} = ${JSON.stringify(hex)} is not a ${size}-byte hex value of a PCR 0..${MAX_PCR}`, { bank, pcr: k });
      }
      compared.push({ bank, pcr });
      const replayed = toHex(trace.values.get(pcr) ?? initialValue(pcr, size, log.startupLocality));
      if (replayed === q) continue;
      const hist = trace.history.get(pcr) ?? [];
      const m: PcrMismatch = { bank, pcr, quoted: q, replayed, reason: hist.length === 0 ? 'no-events' : 'diverged' };
      if (hist.length > 0) {
        const at = hist.findIndex((x) => toHex(x.after) === q);
        const start = toHex(initialValue(pcr, size, log.startupLocality));
        if (at >= 0 || start === q) {
          m.reason = 'log-longer';
          if (at >= 0) m.lastMatchingEvent = hist[at]!.event.index;
          const next = hist[at + 1]!;
          m.firstDifferingEvent = next.event.index;
          m.firstDifferingEventSummary = `${next.event.typeName}: ${summarizeEvent(next.event)}`;
        } else {
          m.firstDifferingEvent = hist[0]!.event.index;
          m.firstDifferingEventSummary = `${hist[0]!.event.typeName}: ${summarizeEvent(hist[0]!.event)}`;
        }
      }
      mismatches.push(m);
    }
    for (const pcr of trace.values.keys()) if (!(pcr in pcrs)) notQuoted.push({ bank, pcr });
  }
  const order = (m: PcrMismatch): number => m.firstDifferingEvent ?? Number.MAX_SAFE_INTEGER;
  const first = mismatches.length ? [...mismatches].sort((a, b) => order(a) - order(b) || a.pcr - b.pcr)[0] : undefined;
  return { match: mismatches.length === 0 && compared.length > 0, compared, mismatches, first, banksNotInLog, notQuoted };
}
