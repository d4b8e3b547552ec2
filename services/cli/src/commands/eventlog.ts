import type { Command } from 'commander';
import { readInputFile, reject, toHex } from '@joinguard/core';
import { comparePcrs, parseCcel, parseEventLog, replayPcrs, replayRtmrs, summarizeEvent, type EventLog } from '@joinguard/eventlog';
import { runCommand } from '../output.js';
import { readPcrs } from './tpm.js';

interface LogOpts {
  json?: boolean;
  ccel?: boolean;
  allowPadding?: boolean;
}

function readLog(path: string, opts: LogOpts): EventLog {
  const bytes = readInputFile(path, 'event log');
  return opts.ccel ? parseCcel(bytes) : parseEventLog(bytes, { allowTrailingPadding: opts.allowPadding === true });
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

/** `joinguard eventlog replay|show|compare`: TCG PC Client and CCEL event logs. */
export function registerEventlog(program: Command): void {
  const ev = program.command('eventlog').description('TCG PC Client (crypto-agile, SHA-1) and CCEL event logs: replay, show, compare');

  ev.command('replay')
    .description('replay the log into PCR values per bank (or RTMRs with --ccel)')
    .argument('<log>', 'event log file (binary_bios_measurements, CCEL data)')
    .option('--ccel', 'the log is a TDX CCEL: replay MR index 1..4 into RTMR0..3')
    .option('--allow-padding', 'accept 0x00/0xFF fill after the last event of a TPM log')
    .option('--json', 'print JSON: {"events": N, "pcrs": {bank: {pcr: hex}}}')
    .action(async (path: string, opts: LogOpts) => {
      await runCommand(opts, () => {
        const log = readLog(path, opts);
        if (opts.ccel) {
          const rtmrs = replayRtmrs(log);
          return { json: { events: log.events.length, rtmrs }, text: [`events: ${log.events.length}`, ...Object.entries(rtmrs).map(([k, v]) => `${k}: ${v}`)].join('\n') };
        }
        const pcrs = replayPcrs(log);
        const text = [`events: ${log.events.length} (${log.format})`];
        for (const [bank, values] of Object.entries(pcrs)) for (const [pcr, hex] of Object.entries(values)) text.push(`${bank} ${pad(pcr, 2)}: ${hex}`);
        return { json: { events: log.events.length, pcrs }, text: text.join('\n') };
      });
    });

  ev.command('show')
    .description('list the events: index, PCR, type, digest prefix, content check, decoded summary')
    .argument('<log>', 'event log file')
    .option('--ccel', 'the log is a TDX CCEL (the PCR column is the MR index)')
    .option('--allow-padding', 'accept 0x00/0xFF fill after the last event of a TPM log')
    .option('--json', 'print every event as JSON')
    .action(async (path: string, opts: LogOpts) => {
      await runCommand(opts, () => {
        const log = readLog(path, opts);
        const bank = log.banks.includes('sha256') ? 'sha256' : log.banks[0]!;
        const rows = [`${pad('#', 4)} ${pad(opts.ccel ? 'MR' : 'PCR', 3)} ${pad('type', 34)} ${pad(bank, 16)} ok summary`];
        for (const e of log.events) {
          const d = e.digests.find((x) => x.bank === bank) ?? e.digests[0];
          const ok = e.digestVerified === true ? 'v ' : e.digestVerified === false ? 'X ' : '- ';
          rows.push(`${pad(String(e.index), 4)} ${pad(String(e.pcrIndex), 3)} ${pad(e.typeName, 34)} ${pad(d ? toHex(d.digest).slice(0, 16) : '', 16)} ${ok} ${summarizeEvent(e)}`);
        }
        rows.push('', `total: ${log.events.length} events, ${log.format}, banks ${log.banks.join(',')}; ok: v content matches digest, X content does not match (untrusted), - not checkable`);
        const json = {
          events: log.events.length,
          format: log.format,
          banks: log.banks,
          list: log.events.map((e) => ({
            index: e.index,
            pcrIndex: e.pcrIndex,
            eventType: e.typeName,
            digests: Object.fromEntries(e.digests.map((x) => [x.bank, toHex(x.digest)])),
            digestVerified: e.digestVerified ?? null,
            summary: summarizeEvent(e),
            decoded: e.decoded,
          })),
        };
        return { json, text: rows.join('\n') };
      });
    });

  ev.command('compare')
    .description('replay the log and compare with quoted PCR values; name the first PCR and event where they part')
    .argument('<log>', 'event log file')
    .requiredOption('--pcrs <json>', 'quoted PCR values (inline JSON or a file): {"sha256": {"0": "hex", …}}')
    .option('--allow-padding', 'accept 0x00/0xFF fill after the last event of a TPM log')
    .option('--json', 'print JSON')
    .action(async (path: string, opts: LogOpts & { pcrs: string }) => {
      await runCommand(opts, () => {
        const log = readLog(path, { ...opts, ccel: false });
        const c = comparePcrs(log, readPcrs(opts.pcrs));
        if (!c.match) {
          const f = c.first;
          throw reject(
            'EVENTLOG_PCR_MISMATCH',
            f
              ? `${f.bank} PCR ${f.pcr}: the log replays to ${f.replayed}, the quote has ${f.quoted} (${f.reason}${f.firstDifferingEvent !== undefined ? `, from event ${f.firstDifferingEvent}: ${f.firstDifferingEventSummary}` : ''})`
              : 'no quoted PCR could be compared with the log',
            { ...c },
          );
        }
        return { json: { verified: true, ...c }, text: `log matches ${c.compared.length} quoted PCRs${c.notQuoted.length ? `; ${c.notQuoted.length} PCRs in the log are not quoted` : ''}` };
      });
    });
}
