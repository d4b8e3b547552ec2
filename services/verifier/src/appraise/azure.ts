import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { ByteReader, digest, reject, toHex, wrapError } from '@joinguard/core';

/*
 * The Azure CVM "HCL report" the paravisor writes to vTPM NV 0x01400001 (MANIFEST.md, azure section):
 *
 *   0x000  header, 0x20 bytes: "HCLA", version, report size, request type, status, reserved
 *   0x020  hardware report area, 1184 bytes: the SNP report, or the TDREPORT (1024 bytes) for TDX
 *   0x4C0  IGVM request data: data size, version, report type (2 SNP, 4 TDX), hash type (1 SHA-256), var size
 *   0x4D4  variable data: the runtime claims JSON (HCLAkPub, HCLEkPub, vm-configuration, user-data)
 *
 * The hardware report's REPORT_DATA[0:32] is the hash of the variable data, which is how the hardware
 * signature covers the AK and the user data.
 */

const HEADER_SIZE = 0x20;
export const HW_REPORT_SIZE = 1184;
const IGVM_OFFSET = HEADER_SIZE + HW_REPORT_SIZE;
const IGVM_FIXED = 20;
const MAX_VAR_DATA = 64 * 1024;
export const HCL_REPORT_TYPE = { snp: 2, tdx: 4 } as const;
const HASH_TYPE_SHA256 = 1;

/** TDREPORT_STRUCT offsets (Intel TDX module ABI): REPORTMACSTRUCT, TEE_TCB_INFO, reserved, TDINFO. */
export const TDREPORT = {
  REPORT_DATA: [128, 64],
  TD_ATTRIBUTES: [512, 8],
  XFAM: [520, 8],
  MR_TD: [528, 48],
  MR_CONFIG_ID: [576, 48],
  MR_OWNER: [624, 48],
  MR_OWNER_CONFIG: [672, 48],
  RTMR0: [720, 48],
  RTMR1: [768, 48],
  RTMR2: [816, 48],
  RTMR3: [864, 48],
} as const;

export interface HclReport {
  reportType: number;
  /** The 1184-byte hardware report area. */
  hardwareReport: Uint8Array;
  /** The runtime claims JSON bytes, exactly as hashed into REPORT_DATA. */
  varData: Uint8Array;
  runtimeClaims: { userData: string | undefined; akJwk: JsonWebKey; ak: KeyObject };
}

export function decodeHclReport(bytes: Uint8Array): HclReport {
  const r = new ByteReader(bytes, { truncatedCode: 'AZURE_HCL_TRUNCATED', what: 'HCL report' });
  const magic = Buffer.from(r.bytes(4, 'signature')).toString('latin1');
  if (magic !== 'HCLA') throw reject('AZURE_HCL_BAD_MAGIC', `the HCL report starts with ${JSON.stringify(magic)}, not "HCLA"`, { magic: toHex(bytes.subarray(0, 4)) });
  r.skip(HEADER_SIZE - 4, 'header');
  const hardwareReport = r.bytes(HW_REPORT_SIZE, 'hardware report');
  if (r.offset !== IGVM_OFFSET) throw reject('AZURE_HCL_TRUNCATED', 'HCL report layout mismatch', {});
  const dataSize = r.u32le('dataSize');
  r.u32le('version');
  const reportType = r.u32le('reportType');
  const hashType = r.u32le('hashType');
  const varSize = r.u32le('variableDataSize');
  if (hashType !== HASH_TYPE_SHA256) {
    throw reject('AZURE_HCL_UNSUPPORTED_HASH', `HCL runtime data hash type is ${hashType}; only 1 (SHA-256) is supported`, { hashType });
  }
  if (varSize > MAX_VAR_DATA || dataSize !== IGVM_FIXED + varSize) {
    throw reject('AZURE_HCL_BAD_SIZE', `HCL request data size ${dataSize} does not hold ${varSize} bytes of runtime data`, { dataSize, varSize });
  }
  const varData = r.bytes(varSize, 'runtime data');
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(varData).toString('utf8'));
  } catch (e) {
    throw wrapError('AZURE_RUNTIME_CLAIMS_MALFORMED', 'the HCL runtime claims are not JSON', e);
  }
  const claims = json as { keys?: unknown; 'user-data'?: unknown };
  const keys = Array.isArray(claims.keys) ? (claims.keys as Record<string, unknown>[]) : [];
  const akJwk = keys.find((k) => k !== null && typeof k === 'object' && k.kid === 'HCLAkPub') as JsonWebKey | undefined;
  if (!akJwk) throw reject('AZURE_AK_MISSING', 'the HCL runtime claims carry no HCLAkPub key', {});
  let ak: KeyObject;
  try {
    const { kty, n, e, crv, x, y } = akJwk;
    ak = createPublicKey({ key: { kty, n, e, crv, x, y } as JsonWebKey, format: 'jwk' });
  } catch (e) {
    throw wrapError('AZURE_AK_MALFORMED', 'HCLAkPub is not a public key', e);
  }
  const ud = claims['user-data'];
  return { reportType, hardwareReport, varData, runtimeClaims: { userData: typeof ud === 'string' ? ud : undefined, akJwk, ak } };
}

export function sha256(b: Uint8Array): Uint8Array {
  return new Uint8Array(digest('sha256', b));
}
