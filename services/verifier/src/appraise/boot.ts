import { reject } from '@joinguard/core';
import { comparePcrs, eventDigestHex, EventType, extendedPcrs, Guid, replayableBanks, type EventLog, type PcrBanks, type TcgEvent } from '@joinguard/eventlog';
import type { BootClaims, EfiSignatureListClaims, UnverifiedEventClaims } from '@joinguard/policy';
import { mismatch } from './checks.js';

const HASH_SIGNATURE_TYPES = new Set<string>([Guid.EFI_CERT_SHA256, Guid.EFI_CERT_SHA1, Guid.EFI_CERT_SHA384, Guid.EFI_CERT_SHA512]);
const DATABASES = { PK: 'pk', KEK: 'kek', db: 'db', dbx: 'dbx' } as const;

/**
 * Every PCR the log extends, in every bank both the log and the quote carry, must equal the quoted (and
 * signature-checked) value; otherwise the log's events prove nothing. The first mismatch is named by PCR
 * and event. Returns the banks compared.
 */
export function checkReplay(log: EventLog, quoted: PcrBanks, replayed?: PcrBanks): { compared: number; banks: string[] } {
  // Each quoted bank is replayed once, by comparePcrs, over the PCRs the log extends.
  const extended = extendedPcrs(log);
  const replayable = new Set(replayableBanks(log));
  const subset: PcrBanks = {};
  const banks: string[] = [];
  let count = 0;
  for (const [bank, values] of Object.entries(quoted)) {
    if (!replayable.has(bank)) continue;
    banks.push(bank);
    const sub: Record<number, string> = {};
    for (const pcr of extended) {
      const q = values[pcr];
      if (q === undefined) {
        throw reject('APPRAISE_EVENTLOG_PCR_NOT_QUOTED', `the event log extends ${bank} PCR ${pcr} but the quote does not cover it, so its events cannot be verified`, { bank, pcr });
      }
      sub[pcr] = q;
      count++;
    }
    subset[bank] = sub;
  }
  if (banks.length === 0) {
    throw reject('APPRAISE_EVENTLOG_NO_QUOTED_BANK', `the event log carries ${log.banks.join(', ') || 'no bank'} and the quote ${Object.keys(quoted).join(', ') || 'no bank'}: no bank to compare`, {
      logBanks: log.banks, quotedBanks: Object.keys(quoted),
    });
  }
  // The log's own replay, when known: where every value equals it, comparePcrs would find no mismatch. Anything
  // else goes through comparePcrs, which names the PCR and the event where the log and the quote part.
  if (replayed !== undefined && equalsReplay(subset, replayed)) return { compared: count, banks };
  const cmp = comparePcrs(log, subset);
  const m = cmp.first;
  if (m) {
    const at = m.firstDifferingEvent !== undefined ? `, first differing event ${m.firstDifferingEvent} (${m.firstDifferingEventSummary ?? ''})` : '';
    throw mismatch('APPRAISE_EVENTLOG_PCR_MISMATCH', `replaying the event log gives ${m.bank} PCR ${m.pcr} = ${m.replayed}, the quote has ${m.quoted} (${m.reason}${at})`, m.quoted, m.replayed, {
      bank: m.bank, pcr: m.pcr, reason: m.reason, event: m.firstDifferingEvent, mismatches: cmp.mismatches.length,
    });
  }
  return { compared: cmp.compared.length, banks };
}

/** Whether every quoted value equals the log's replay (spelt in lower case, as the replay is); bank names as comparePcrs reads them. */
function equalsReplay(subset: PcrBanks, replayed: PcrBanks): boolean {
  for (const [name, pcrs] of Object.entries(subset)) {
    const mine = replayed[name.toLowerCase().replace(/-/g, '')];
    if (mine === undefined) return false;
    for (const [pcr, q] of Object.entries(pcrs)) if (typeof q !== 'string' || mine[Number(pcr)] !== q.toLowerCase()) return false;
  }
  return true;
}

function signatureClaims(ev: TcgEvent): EfiSignatureListClaims | undefined {
  if (ev.decoded.kind !== 'efiVariable' || !ev.decoded.signatureLists) return undefined;
  const out: EfiSignatureListClaims = { certSha256: [], hashes: [], eventIndex: ev.index, pcr: ev.pcrIndex };
  for (const list of ev.decoded.signatureLists) {
    for (const entry of list.entries) {
      if (entry.sha256 !== undefined) out.certSha256.push(entry.sha256);
      else if (HASH_SIGNATURE_TYPES.has(list.signatureType)) out.hashes.push(entry.data);
    }
  }
  return out;
}

/**
 * The boot claims a policy reads: Secure Boot state, the signature databases as measured (PCR 7), boot
 * applications with their Authenticode digests (PCR 4), grub commands and kernel command lines (PCR 8).
 * An event whose content does not match its digest is listed in unverifiedEvents, not silently trusted.
 */
export function bootClaims(log: EventLog): BootClaims {
  const boot: BootClaims = { bootApps: [], kernelCmdline: [], grubCommands: [], unverifiedEvents: [] };
  const unverified = (ev: TcgEvent, reason: string) => {
    const u: UnverifiedEventClaims = { type: ev.typeName, eventIndex: ev.index, pcr: ev.pcrIndex, reason };
    boot.unverifiedEvents!.push(u);
  };
  // Firmware measures the Secure Boot configuration into PCR 7 once, before PCR 7's separator. A booted OS
  // can still extend PCR 7 (or any PCR) with a well-formed, digest-correct "SecureBoot = 1" event, so the
  // configuration is read only from that window, once per variable; anything else is listed as unverified.
  let pcr7Separated = false;
  const seen = new Set<string>();
  for (const ev of log.events) {
    const d = ev.decoded;
    if (ev.eventType === EventType.EV_SEPARATOR && ev.pcrIndex === 7) pcr7Separated = true;
    if (ev.eventType === EventType.EV_EFI_VARIABLE_DRIVER_CONFIG) {
      if (d.kind === 'malformed') {
        unverified(ev, `${d.code}: ${d.message}`);
        continue;
      }
      if (d.kind !== 'efiVariable') continue;
      const relevant = d.unicodeName === 'SecureBoot' || d.unicodeName in DATABASES;
      if (!relevant) continue;
      if (ev.digestVerified === false) {
        unverified(ev, `the ${d.unicodeName} variable data does not match the event digest`);
        continue;
      }
      if (ev.pcrIndex !== 7 || pcr7Separated) {
        unverified(ev, `${d.unicodeName} measured ${ev.pcrIndex !== 7 ? `into PCR ${ev.pcrIndex}` : 'after the PCR 7 separator'}, not where firmware measures the Secure Boot configuration`);
        continue;
      }
      if (seen.has(d.unicodeName)) {
        unverified(ev, `${d.unicodeName} measured a second time before the PCR 7 separator`);
        continue;
      }
      seen.add(d.unicodeName);
      if (d.unicodeName === 'SecureBoot' && d.variableName === Guid.EFI_GLOBAL_VARIABLE && d.secureBoot !== undefined) {
        boot.secureBoot = d.secureBoot;
        boot.secureBootEvent = { eventIndex: ev.index, pcr: ev.pcrIndex };
      } else if (d.unicodeName in DATABASES) {
        const c = signatureClaims(ev);
        if (c) boot[DATABASES[d.unicodeName as keyof typeof DATABASES]] = c;
      }
    } else if (ev.eventType === EventType.EV_EFI_BOOT_SERVICES_APPLICATION) {
      const digest = eventDigestHex(ev, 'sha256');
      boot.bootApps.push({ eventIndex: ev.index, pcr: ev.pcrIndex, ...(digest ? { digestSha256: digest } : {}), ...(d.kind === 'imageLoad' && d.devicePath ? { path: d.devicePath } : {}) });
    } else if (ev.eventType === EventType.EV_IPL && d.kind === 'ipl' && (d.kernelCmdline !== undefined || d.grubCommand !== undefined)) {
      if (ev.digestVerified === false) {
        unverified(ev, 'the grub string does not match the event digest');
        continue;
      }
      if (d.kernelCmdline !== undefined) boot.kernelCmdline!.push({ value: d.kernelCmdline, eventIndex: ev.index, pcr: ev.pcrIndex });
      if (d.grubCommand !== undefined) boot.grubCommands!.push({ value: d.grubCommand, eventIndex: ev.index, pcr: ev.pcrIndex });
    }
  }
  return boot;
}
