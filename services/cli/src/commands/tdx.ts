import { existsSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { decodeBinaryOrHex, inputError, isJoinguardError, readInputFile } from '@joinguard/core';
import {
  checkPckChain, decodeQuote, inspectQuote, intelSgxRootCa, readCollateralBundle, trustAnchorFromPem, verifyCcel, verifyQuote, type TrustAnchor,
} from '@joinguard/tdx';
import { runCommand, usage } from '../output.js';

interface VerifyOpts {
  json?: boolean;
  collateral: string;
  at?: string;
  trustAnchor?: string;
  allowTcbStatus?: string;
  allowQeTcbStatus?: string;
  ccel?: string;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function parseAt(at: string | undefined): Date {
  if (at === undefined) return new Date();
  const d = new Date(at);
  if (!RFC3339.test(at) || Number.isNaN(d.getTime())) throw usage(`--at ${JSON.stringify(at)} is not an RFC 3339 date-time (e.g. 2023-07-01T00:00:00Z)`, { at });
  return d;
}

function statuses(list: string | undefined): string[] | undefined {
  return list === undefined ? undefined : list.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

function readQuote(path: string): Uint8Array {
  return decodeBinaryOrHex(readInputFile(path, 'TDX quote'));
}

function loadAnchor(path: string | undefined): TrustAnchor {
  if (path === undefined) return intelSgxRootCa();
  const pem = Buffer.from(readInputFile(path, 'trust anchor')).toString('latin1');
  try {
    return trustAnchorFromPem(pem);
  } catch (e) {
    throw inputError('CLI_BAD_TRUST_ANCHOR', `trust anchor ${path} is not one PEM certificate: ${isJoinguardError(e) ? e.message : String(e)}`, { path });
  }
}

/** `joinguard tdx inspect|verify`: Intel TDX quotes (v4/v5) with Intel PCS collateral. */
export function registerTdx(program: Command): void {
  const tdx = program.command('tdx').description('Intel TDX quotes (v4, v5): inspect, verify with Intel PCS collateral');

  tdx
    .command('inspect')
    .description('decode a TDX quote (raw or hex) and print its fields; nothing is verified')
    .argument('<quote>', 'quote file')
    .option('--json', 'print JSON')
    .action(async (quotePath: string, opts: { json?: boolean }) => {
      await runCommand(opts, () => {
        const q = inspectQuote(decodeQuote(readQuote(quotePath)));
        const text = Object.entries(q)
          .filter(([, v]) => typeof v !== 'object')
          .map(([k, v]) => `${k}: ${String(v)}`)
          .join('\n');
        return { json: q, text };
      });
    });

  tdx
    .command('verify')
    .description('verify a TDX quote: signatures, QE, PCK chain to the Intel SGX Root CA, CRLs, TCB info and QE identity')
    .argument('<quote>', 'quote file')
    .requiredOption('--collateral <dir>', 'offline collateral directory (see packages/tdx/README.md)')
    .option('--at <rfc3339>', 'verification time (default: now)')
    .option('--trust-anchor <pem>', 'root certificate to trust instead of the pinned Intel SGX Root CA (tests, demo)')
    .option('--allow-tcb-status <list>', 'comma-separated TCB statuses accepted (default UpToDate)')
    .option('--allow-qe-tcb-status <list>', 'comma-separated QE TCB statuses accepted (default UpToDate)')
    .option('--ccel <file>', 'CCEL event log to replay and compare with RTMR0..3')
    .option('--json', 'print JSON')
    .action(async (quotePath: string, opts: VerifyOpts) => {
      await runCommand(opts, async () => {
        const now = parseAt(opts.at);
        if (!existsSync(opts.collateral) || !statSync(opts.collateral).isDirectory()) {
          throw inputError('INPUT_NOT_FOUND', `collateral directory ${opts.collateral} does not exist`, { path: opts.collateral });
        }
        const anchor = loadAnchor(opts.trustAnchor);
        const bytes = readQuote(quotePath);
        const ccel = opts.ccel === undefined ? undefined : readInputFile(opts.ccel, 'CCEL event log');
        // The PCK certificate names the platform (FMSPC) and the PCK CA whose collateral applies.
        const chain = checkPckChain(decodeQuote(bytes).signatureData.certificationData.pckCertChainPem, anchor);
        const bundle = readCollateralBundle(opts.collateral, Buffer.from(chain.pck.fmspc).toString('hex'), chain.pckCa);
        const r = await verifyQuote(bytes, {
          collateral: bundle, now, trustAnchor: anchor,
          policy: { allowedTcbStatuses: statuses(opts.allowTcbStatus), allowedQeTcbStatuses: statuses(opts.allowQeTcbStatus) },
        });
        const claims: Record<string, unknown> = { ...r.claims, verifiedAt: now.toISOString() };
        if (ccel) claims.ccel = { events: verifyCcel(decodeQuote(bytes).body, ccel).events, rtmrsMatch: true };
        const json = { verified: true, tcbStatus: r.tcbStatus, advisoryIds: r.advisoryIds, qeTcbStatus: r.qeTcbStatus, claims };
        const text = `verified: TDX quote v${r.claims.version}, FMSPC ${r.claims.fmspc}, TCB ${r.tcbStatus}${r.advisoryIds.length ? ` (${r.advisoryIds.join(', ')})` : ''}, QE ${r.qeTcbStatus}, MRTD ${r.claims.mrTd}`;
        return { json, text };
      });
    });
}
