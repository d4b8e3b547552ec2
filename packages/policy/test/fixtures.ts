import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isJoinguardError, type JoinguardError } from '@joinguard/core';
import { expectedDecodedFields, readVectorText } from '@joinguard/core/testing';
import { POLICY_API_VERSION, POLICY_KIND, type AppraisalClaims, type Policy } from '../src/index.js';

export const examplesDir = join(import.meta.dirname, '..', 'examples');
export const readExample = (name: string) => readFileSync(join(examplesDir, name), 'utf8');

interface SnpExpected {
  policy: string;
  vmpl: number;
  guest_svn: number;
  measurement: string;
  host_data: string;
  id_key_digest: string;
  author_key_digest: string;
  reported_tcb: { bootloader: number; tee: number; snp: number; microcode: number };
}

/** Claims of a real SNP report (virtee Milan v2), from the independent decoder's fields; policy bits per the SEV-SNP ABI. */
export function snpClaimsFromVector(rel = 'snp/virtee_milan_v2/report.bin'): AppraisalClaims {
  const f = expectedDecodedFields()[rel] as unknown as SnpExpected;
  const policy = BigInt(f.policy);
  const bit = (n: bigint) => ((policy >> n) & 1n) === 1n;
  return {
    tee: 'snp',
    snp: {
      guestSvn: f.guest_svn,
      policy: { smt: bit(16n), migrateMa: bit(18n), debug: bit(19n), singleSocket: bit(20n) },
      vmpl: f.vmpl,
      reportedTcb: { bootloader: f.reported_tcb.bootloader, tee: f.reported_tcb.tee, snp: f.reported_tcb.snp, microcode: f.reported_tcb.microcode },
      measurement: f.measurement,
      hostData: f.host_data,
      idKeyDigest: f.id_key_digest,
      authorKeyDigest: f.author_key_digest,
    },
  };
}

interface TdxBody {
  td_attributes: string;
  mrtd: string;
  mrconfigid: string;
  mrowner: string;
  mrownerconfig: string;
  rtmr0: string;
  rtmr1: string;
  rtmr2: string;
  rtmr3: string;
}

/** Claims of a real TDX quote body; the TCB status is the matching result MANIFEST.md gives for the vector. */
export function tdxClaimsFromVector(rel = 'tdx/gotdxguest_v5/quote.dat', tcbStatus = 'UpToDate'): AppraisalClaims {
  const b = (expectedDecodedFields()[rel] as { body: TdxBody }).body;
  return {
    tee: 'tdx',
    tdx: {
      tcbStatus,
      advisoryIds: [],
      tdAttributes: b.td_attributes,
      mrTd: b.mrtd,
      mrConfigId: b.mrconfigid,
      mrOwner: b.mrowner,
      mrOwnerConfig: b.mrownerconfig,
      rtmr0: b.rtmr0,
      rtmr1: b.rtmr1,
      rtmr2: b.rtmr2,
      rtmr3: b.rtmr3,
    },
  };
}

/** PCR values a replay of a real event log gives (go-eventlog's extract_test), lowercased bank names. */
export function pcrsFromVector(name: string): Record<string, Record<string, string>> {
  const all = JSON.parse(readVectorText('eventlog/tpm_go_eventlog/expected_pcrs.from_extract_test.json')) as Record<string, { banks: Record<string, Record<string, string>> }>;
  const banks = all[name]!.banks;
  return Object.fromEntries(Object.entries(banks).map(([b, v]) => [b.toLowerCase(), v]));
}

export function basePolicy(over: Partial<Policy> = {}): Policy {
  return { apiVersion: POLICY_API_VERSION, kind: POLICY_KIND, name: 'test', tee: { allowed: ['snp', 'tdx', 'azure-snp-vtpm', 'azure-tdx-vtpm'] }, ...over };
}

export const h = (byte: number, len: number) => byte.toString(16).padStart(2, '0').repeat(len);

/** A measured-boot claims block with distinct, recognisable digests. */
export function bootClaims(): NonNullable<AppraisalClaims['boot']> {
  return {
    secureBoot: true,
    secureBootEvent: { eventIndex: 3, pcr: 7 },
    pk: { certSha256: [h(0x11, 32)], hashes: [], eventIndex: 4, pcr: 7 },
    kek: { certSha256: [h(0x12, 32)], hashes: [], eventIndex: 5, pcr: 7 },
    db: { certSha256: [h(0x13, 32), h(0x14, 32)], hashes: [], eventIndex: 6, pcr: 7 },
    dbx: { certSha256: [], hashes: [h(0x15, 32), h(0x16, 32)], eventIndex: 7, pcr: 7 },
    bootApps: [
      { digestSha256: h(0xa1, 32), path: '\\EFI\\redhat\\shimx64.efi', eventIndex: 20, pcr: 4 },
      { digestSha256: h(0xa2, 32), path: '\\EFI\\redhat\\grubx64.efi', eventIndex: 24, pcr: 4 },
      { digestSha256: h(0xa3, 32), path: '/vmlinuz-5.14.0', eventIndex: 30, pcr: 4 },
    ],
    kernelCmdline: [{ value: 'BOOT_IMAGE=/vmlinuz-5.14.0 root=UUID=1234 ro console=ttyS0', eventIndex: 41, pcr: 8 }],
    grubCommands: [
      { value: 'set root=hd0,gpt2', eventIndex: 38, pcr: 8 },
      { value: 'linux /vmlinuz-5.14.0 root=UUID=1234 ro console=ttyS0', eventIndex: 40, pcr: 8 },
    ],
    unverifiedEvents: [],
  };
}

/** The JoinguardError `f` throws (anything else is rethrown; no throw fails the test). */
export function thrown(f: () => unknown): JoinguardError {
  try {
    f();
  } catch (e) {
    if (isJoinguardError(e)) return e;
    throw e;
  }
  throw new Error('expected a JoinguardError');
}
