import { parseCcel, replayRtmrs, type Rtmrs } from '@joinguard/eventlog';
import { reject, toHex, wrapError } from '@joinguard/core';
import type { TdQuoteBody } from './decode.js';

export type { Rtmrs };

const NAMES = ['rtmr0', 'rtmr1', 'rtmr2', 'rtmr3'] as const;

/** Compares replayed RTMR values (hex, as @joinguard/eventlog gives them) with the quote's RTMR0..3. */
export function compareRtmrs(body: TdQuoteBody, replayed: Rtmrs): void {
  const mismatches = NAMES.filter((n) => toHex(body[n]) !== replayed[n].toLowerCase()).map((n) => ({ rtmr: n, quoted: toHex(body[n]), replayed: replayed[n].toLowerCase() }));
  if (mismatches.length > 0) {
    throw reject('TDX_RTMR_MISMATCH', `the CCEL replay does not reproduce the quote's ${mismatches.map((m) => m.rtmr.toUpperCase()).join(', ')}`, { mismatches });
  }
}

/**
 * Replays a CCEL (the TD's event log, MR index 1..4 → RTMR0..3) and compares it with the quote.
 * Only meaningful for a quote whose signatures have been verified.
 */
export function verifyCcel(body: TdQuoteBody, ccel: Uint8Array): { events: number; rtmrs: Rtmrs } {
  let rtmrs: Rtmrs;
  let events: number;
  try {
    const log = parseCcel(ccel);
    events = log.events.length;
    rtmrs = replayRtmrs(log);
  } catch (e) {
    throw wrapError('TDX_CCEL_INVALID', 'the CCEL event log cannot be replayed', e);
  }
  compareRtmrs(body, rtmrs);
  return { events, rtmrs };
}
