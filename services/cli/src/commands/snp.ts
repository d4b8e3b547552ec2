import type { Command } from 'commander';
import { decodeBinaryOrHex, readInputFile } from '@joinguard/core';
import {
  decodeReport,
  inspectReport,
  parseProduct,
  reportProduct,
  REPORT_SIZE,
  trustStoreFrom,
  verifyReport,
  type SnpCollateral,
  type SnpProduct,
  type TcbVersion,
} from '@joinguard/snp';
import { runCommand, usage } from '../output.js';

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function parseAt(at: string | undefined): Date {
  if (at === undefined) return new Date();
  const d = new Date(at);
  if (!RFC3339.test(at) || Number.isNaN(d.getTime())) throw usage(`--at ${JSON.stringify(at)} is not an RFC 3339 date-time (e.g. 2025-06-01T00:00:00Z)`, { at });
  return d;
}

/** Azure CVMs hand out an HCL report ("HCLA" header of 0x20 bytes) with the SNP report right after it. */
const HCL_MAGIC = 'HCLA';
const HCL_REPORT_OFFSET = 0x20;

function readReport(path: string): { bytes: Uint8Array; source: 'snp' | 'azure-hcl' } {
  const data = decodeBinaryOrHex(readInputFile(path, 'SNP report'));
  if (data.length >= HCL_REPORT_OFFSET + REPORT_SIZE && Buffer.from(data.subarray(0, 4)).toString('latin1') === HCL_MAGIC) {
    return { bytes: data.subarray(HCL_REPORT_OFFSET, HCL_REPORT_OFFSET + REPORT_SIZE), source: 'azure-hcl' };
  }
  return { bytes: data, source: 'snp' };
}

function product(p: string | undefined): SnpProduct | undefined {
  return p === undefined ? undefined : parseProduct(p);
}

function tcbText(t: unknown): string {
  const v = t as TcbVersion;
  return `${v.fmc !== undefined ? `fmc ${v.fmc} ` : ''}bl ${v.bootloader} tee ${v.tee} snp ${v.snp} ucode ${v.microcode}`;
}

interface VerifyOpts {
  json?: boolean;
  vcek: string;
  ask?: string;
  ark?: string;
  chain?: string;
  product?: string;
  crl?: string;
  at?: string;
  trustedArk?: string;
}

/** `joinguard snp inspect|verify`: AMD SEV-SNP attestation reports (v2, v3, v5). */
export function registerSnp(program: Command): void {
  const snp = program.command('snp').description('AMD SEV-SNP attestation reports (v2, v3, v5): inspect, verify against AMD roots');

  snp
    .command('inspect')
    .description('decode an SNP report (raw, hex, or an Azure HCL report) and print its fields; nothing is verified')
    .argument('<report>', 'report file')
    .option('--product <product>', 'milan, genoa or turin (for v2 reports, which carry no CPUID)')
    .option('--json', 'print JSON')
    .action(async (reportPath: string, opts: { json?: boolean; product?: string }) => {
      await runCommand(opts, () => {
        const { bytes } = readReport(reportPath);
        const { json } = inspectReport(bytes, product(opts.product));
        const text = Object.entries(json)
          .map(([k, v]) => `${k}: ${v !== null && typeof v === 'object' ? tcbText(v) : String(v)}`)
          .join('\n');
        return { json, text };
      });
    });

  snp
    .command('verify')
    .description('verify an SNP report: signature, VCEK/VLEK → ASK/ASVK → ARK chain, extensions, CRL')
    .argument('<report>', 'report file')
    .requiredOption('--vcek <cert>', 'VCEK or VLEK (PEM or DER; a PEM may also carry the ASK and ARK)')
    .option('--ask <cert>', 'ASK or ASVK (PEM or DER)')
    .option('--ark <cert>', 'ARK (PEM or DER); must be the pinned AMD ARK')
    .option('--chain <pem>', 'ASK (or ASVK) and ARK in one PEM, as AMD KDS serves cert_chain')
    .option('--product <product>', 'milan, genoa or turin (needed for v2 reports)')
    .option('--crl <file>', "the ARK's CRL (DER or PEM)")
    .option('--at <time>', 'verify at this RFC 3339 time instead of now')
    .option('--trusted-ark <cert>', 'trust this ARK instead of the AMD root (simulated signer, demo and tests only)')
    .option('--json', 'print JSON')
    .action(async (reportPath: string, opts: VerifyOpts) => {
      await runCommand(opts, () => {
        if (opts.chain && (opts.ask || opts.ark)) throw usage('give either --chain or --ask/--ark, not both');
        const now = parseAt(opts.at);
        const stated = product(opts.product);
        const { bytes } = readReport(reportPath);
        const collateral: SnpCollateral = { vcek: readInputFile(opts.vcek, 'VCEK') };
        if (opts.ask) collateral.ask = readInputFile(opts.ask, 'ASK');
        if (opts.ark) collateral.ark = readInputFile(opts.ark, 'ARK');
        if (opts.chain) collateral.chain = readInputFile(opts.chain, 'certificate chain');
        if (opts.crl) collateral.crl = readInputFile(opts.crl, 'CRL');
        const report = decodeReport(bytes);
        let trust;
        if (opts.trustedArk) {
          trust = trustStoreFrom([{ product: reportProduct(report, stated), ark: readInputFile(opts.trustedArk, 'trusted ARK') }]);
        }
        const v = verifyReport(report, collateral, trust ? { now, product: stated, trust } : stated ? { now, product: stated } : { now });
        const c = v.claims;
        const text = [
          `verified: SNP report v${c.version} (${v.product}), signed by ${v.signingKey.toUpperCase()}, chain to ${v.chain.ark.commonName ?? 'ARK'}`,
          `measurement: ${c.measurement}`,
          `reportData:  ${c.reportData}`,
          `policy: ${c.policy.raw} (debug ${c.policy.debug}, migrateMa ${c.policy.migrateMa}, smt ${c.policy.smt}), vmpl ${c.vmpl}`,
          `reportedTcb: ${tcbText(c.reportedTcb)}; firmware ${c.currentFirmware}`,
        ].join('\n');
        return { json: { verified: true, product: v.product, signingKey: v.signingKey, claims: c }, text };
      });
    });
}
