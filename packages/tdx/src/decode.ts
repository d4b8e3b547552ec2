import { ByteReader, reject } from '@joinguard/core';

/*
 * Intel TDX DCAP quote layout (Intel "TDX DCAP Quote Generation Library and Quote Verification Library" spec,
 * Appendix A). Every offset below is the spec's; the tables are written once and the reader walks them.
 *
 * Quote v4:  Header (48) ‖ TD Quote Body (584, TD 1.0) ‖ Quote Signature Data Len (4) ‖ Quote Signature Data
 * Quote v5:  Header (48) ‖ Body Type (2) ‖ Body Size (4) ‖ Body (584 TD 1.0 / 648 TD 1.5) ‖ Len (4) ‖ Data
 * Signature data (ECDSA-256-with-P-256 key): Signature (64) ‖ Attestation Key (64) ‖ Certification Data
 * Certification data type 6 (QE Report): QE Report (384) ‖ QE Report Signature (64) ‖ QE Auth Data
 * (u16 size ‖ bytes) ‖ Certification Data (type 5: PCK cert chain, PEM).
 */

export const HEADER_SIZE = 48;
export const TD10_BODY_SIZE = 584;
export const TD15_BODY_SIZE = 648;
export const QE_REPORT_SIZE = 384;
export const ECDSA_P256_SIGNATURE_SIZE = 64;
export const ECDSA_P256_KEY_SIZE = 64;

export const ATTESTATION_KEY_TYPE_ECDSA_P256 = 2;
export const TEE_TYPE_TDX = 0x81;
export const BODY_TYPE_TD10 = 2;
export const BODY_TYPE_TD15 = 3;
export const CERT_DATA_TYPE_PCK_CHAIN = 5;
export const CERT_DATA_TYPE_QE_REPORT = 6;

/** Upper bound of a quote this decoder accepts; real quotes are ~5 KB (some stacks pad them to 8 KB). */
export const MAX_QUOTE_SIZE = 64 * 1024;
/** The PCK chain is three PEM certificates (~3.7 KB); anything this large is not a PCK chain. */
export const MAX_CERT_DATA_SIZE = 32 * 1024;

export interface QuoteHeader {
  version: number;
  attestationKeyType: number;
  teeType: number;
  /** Reserved in v4/v5 TDX quotes but named qeSvn/pceSvn by the header layout shared with SGX. */
  qeSvn: number;
  pceSvn: number;
  qeVendorId: Uint8Array;
  userData: Uint8Array;
}

export interface TdQuoteBody {
  teeTcbSvn: Uint8Array;
  mrSeam: Uint8Array;
  mrSignerSeam: Uint8Array;
  seamAttributes: Uint8Array;
  tdAttributes: Uint8Array;
  xfam: Uint8Array;
  mrTd: Uint8Array;
  mrConfigId: Uint8Array;
  mrOwner: Uint8Array;
  mrOwnerConfig: Uint8Array;
  rtmr0: Uint8Array;
  rtmr1: Uint8Array;
  rtmr2: Uint8Array;
  rtmr3: Uint8Array;
  reportData: Uint8Array;
  /** TD 1.5 bodies only (quote v5 body type 3). */
  teeTcbSvn2?: Uint8Array;
  mrServiceTd?: Uint8Array;
}

/** SGX REPORT body of the Quoting Enclave (the QE is an SGX enclave even for TDX quotes). */
export interface QeReport {
  cpuSvn: Uint8Array;
  miscSelect: number;
  attributes: Uint8Array;
  mrEnclave: Uint8Array;
  mrSigner: Uint8Array;
  isvProdId: number;
  isvSvn: number;
  reportData: Uint8Array;
  /** The 384 signed bytes, as they appear in the quote. */
  raw: Uint8Array;
}

export interface QeReportCertificationData {
  qeReport: QeReport;
  qeReportSignature: Uint8Array;
  qeAuthData: Uint8Array;
  /** Type of the nested certification data (5 = PCK certificate chain). */
  pckCertDataType: number;
  /** The nested data: PEM certificates leaf first (trailing NULs removed). */
  pckCertChain: Uint8Array;
  /** The same as text (decoded on first use: verifiers with a chain cache never need it). */
  readonly pckCertChainPem: string;
}

export interface QuoteSignatureData {
  quoteSignature: Uint8Array;
  attestationKey: Uint8Array;
  certificationDataType: number;
  certificationData: QeReportCertificationData;
}

export interface TdxQuote {
  header: QuoteHeader;
  /** v5 only: 2 = TD 1.0, 3 = TD 1.5. v4 bodies are TD 1.0. */
  bodyType: number;
  body: TdQuoteBody;
  signatureDataLength: number;
  signatureData: QuoteSignatureData;
  /** header ‖ (v5: body type ‖ body size ‖) body: what the attestation key signs. */
  signedData: Uint8Array;
  /** Bytes after the signature data (some stacks pad the quote buffer); not covered by any signature. */
  trailingBytes: number;
}

const TRUNC = 'TDX_QUOTE_TRUNCATED';

function malformed(message: string, details: Record<string, unknown>): never {
  throw reject('TDX_QUOTE_MALFORMED', message, details);
}

function decodeHeader(r: ByteReader): QuoteHeader {
  const version = r.u16le('header.version');
  if (version !== 4 && version !== 5) {
    throw reject('TDX_QUOTE_UNSUPPORTED_VERSION', `quote version ${version} is not supported (4 or 5 expected)`, { version });
  }
  const attestationKeyType = r.u16le('header.attestationKeyType');
  if (attestationKeyType !== ATTESTATION_KEY_TYPE_ECDSA_P256) {
    throw reject('TDX_QUOTE_UNSUPPORTED_KEY_TYPE', `attestation key type ${attestationKeyType} is not supported (2 = ECDSA-256-with-P-256 expected)`, { attestationKeyType });
  }
  const teeType = r.u32le('header.teeType');
  if (teeType !== TEE_TYPE_TDX) {
    throw reject('TDX_QUOTE_NOT_TDX', `TEE type 0x${teeType.toString(16)} is not TDX (0x81)`, { teeType });
  }
  return {
    version,
    attestationKeyType,
    teeType,
    qeSvn: r.u16le('header.qeSvn'),
    pceSvn: r.u16le('header.pceSvn'),
    qeVendorId: r.bytes(16, 'header.qeVendorId'),
    userData: r.bytes(20, 'header.userData'),
  };
}

function decodeBody(r: ByteReader, td15: boolean): TdQuoteBody {
  const body: TdQuoteBody = {
    teeTcbSvn: r.bytes(16, 'body.teeTcbSvn'),
    mrSeam: r.bytes(48, 'body.mrSeam'),
    mrSignerSeam: r.bytes(48, 'body.mrSignerSeam'),
    seamAttributes: r.bytes(8, 'body.seamAttributes'),
    tdAttributes: r.bytes(8, 'body.tdAttributes'),
    xfam: r.bytes(8, 'body.xfam'),
    mrTd: r.bytes(48, 'body.mrTd'),
    mrConfigId: r.bytes(48, 'body.mrConfigId'),
    mrOwner: r.bytes(48, 'body.mrOwner'),
    mrOwnerConfig: r.bytes(48, 'body.mrOwnerConfig'),
    rtmr0: r.bytes(48, 'body.rtmr0'),
    rtmr1: r.bytes(48, 'body.rtmr1'),
    rtmr2: r.bytes(48, 'body.rtmr2'),
    rtmr3: r.bytes(48, 'body.rtmr3'),
    reportData: r.bytes(64, 'body.reportData'),
  };
  if (td15) {
    body.teeTcbSvn2 = r.bytes(16, 'body.teeTcbSvn2');
    body.mrServiceTd = r.bytes(48, 'body.mrServiceTd');
  }
  return body;
}

export function decodeQeReport(raw: Uint8Array): QeReport {
  const r = new ByteReader(raw, { truncatedCode: TRUNC, what: 'QE report' });
  const cpuSvn = r.bytes(16, 'qeReport.cpuSvn');
  const miscSelect = r.u32le('qeReport.miscSelect');
  r.skip(28, 'qeReport.reserved1');
  const attributes = r.bytes(16, 'qeReport.attributes');
  const mrEnclave = r.bytes(32, 'qeReport.mrEnclave');
  r.skip(32, 'qeReport.reserved2');
  const mrSigner = r.bytes(32, 'qeReport.mrSigner');
  r.skip(96, 'qeReport.reserved3');
  const isvProdId = r.u16le('qeReport.isvProdId');
  const isvSvn = r.u16le('qeReport.isvSvn');
  r.skip(60, 'qeReport.reserved4');
  const reportData = r.bytes(64, 'qeReport.reportData');
  return { cpuSvn, miscSelect, attributes, mrEnclave, mrSigner, isvProdId, isvSvn, reportData, raw };
}

function decodeQeReportCertData(data: Uint8Array): QeReportCertificationData {
  const r = new ByteReader(data, { truncatedCode: TRUNC, what: 'QE report certification data' });
  const qeReport = decodeQeReport(r.bytes(QE_REPORT_SIZE, 'qeReport'));
  const qeReportSignature = r.bytes(ECDSA_P256_SIGNATURE_SIZE, 'qeReportSignature');
  const authSize = r.u16le('qeAuthData.size');
  const qeAuthData = r.bytes(authSize, 'qeAuthData.data');
  const pckCertDataType = r.u16le('certificationData.type');
  const pckSize = r.u32le('certificationData.size');
  if (pckSize > MAX_CERT_DATA_SIZE) {
    malformed(`nested certification data size ${pckSize} exceeds ${MAX_CERT_DATA_SIZE}`, { size: pckSize, max: MAX_CERT_DATA_SIZE });
  }
  const pck = r.bytes(pckSize, 'certificationData.data');
  if (r.remaining !== 0) {
    malformed(`QE report certification data has ${r.remaining} bytes after the nested certification data`, { extra: r.remaining });
  }
  if (pckCertDataType !== CERT_DATA_TYPE_PCK_CHAIN) {
    throw reject('TDX_QUOTE_UNSUPPORTED_CERT_DATA', `nested certification data type ${pckCertDataType} is not supported (5 = PCK certificate chain expected)`, { type: pckCertDataType });
  }
  let end = pck.length;
  while (end > 0 && pck[end - 1] === 0) end--;
  const pckCertChain = pck.subarray(0, end);
  let pem: string | undefined;
  return {
    qeReport, qeReportSignature, qeAuthData, pckCertDataType, pckCertChain,
    get pckCertChainPem(): string {
      pem ??= Buffer.from(pckCertChain.buffer, pckCertChain.byteOffset, pckCertChain.byteLength).toString('latin1');
      return pem;
    },
  };
}

function decodeSignatureData(data: Uint8Array): QuoteSignatureData {
  const r = new ByteReader(data, { truncatedCode: TRUNC, what: 'quote signature data' });
  const quoteSignature = r.bytes(ECDSA_P256_SIGNATURE_SIZE, 'signatureData.quoteSignature');
  const attestationKey = r.bytes(ECDSA_P256_KEY_SIZE, 'signatureData.attestationKey');
  const certificationDataType = r.u16le('signatureData.certificationData.type');
  const size = r.u32le('signatureData.certificationData.size');
  if (size !== r.remaining) {
    throw reject(size > r.remaining ? TRUNC : 'TDX_QUOTE_MALFORMED', `certification data size ${size} does not match the ${r.remaining} bytes left in the signature data`, { size, remaining: r.remaining });
  }
  const cert = r.bytes(size, 'signatureData.certificationData.data');
  if (certificationDataType !== CERT_DATA_TYPE_QE_REPORT) {
    throw reject('TDX_QUOTE_UNSUPPORTED_CERT_DATA', `certification data type ${certificationDataType} is not supported (6 = QE report certification data expected)`, { type: certificationDataType });
  }
  return { quoteSignature, attestationKey, certificationDataType, certificationData: decodeQeReportCertData(cert) };
}

/**
 * Decodes a TDX quote v4 or v5. Pure and bounds-checked: every length is checked against what remains
 * before it is used, and inner sizes must add up exactly to the outer ones. Bytes after the signature
 * data are tolerated (stacks pad the quote buffer) and reported as `trailingBytes`.
 */
export function decodeQuote(quote: Uint8Array): TdxQuote {
  if (quote.length > MAX_QUOTE_SIZE) {
    malformed(`quote is ${quote.length} bytes, more than the ${MAX_QUOTE_SIZE} accepted`, { length: quote.length, max: MAX_QUOTE_SIZE });
  }
  const r = new ByteReader(quote, { truncatedCode: TRUNC, what: 'TDX quote' });
  const header = decodeHeader(r);
  let bodyType = BODY_TYPE_TD10;
  if (header.version === 5) {
    bodyType = r.u16le('bodyType');
    const bodySize = r.u32le('bodySize');
    const expected = bodyType === BODY_TYPE_TD10 ? TD10_BODY_SIZE : bodyType === BODY_TYPE_TD15 ? TD15_BODY_SIZE : undefined;
    if (expected === undefined) {
      throw reject('TDX_QUOTE_UNSUPPORTED_BODY_TYPE', `quote v5 body type ${bodyType} is not a TD report (2 = TD 1.0, 3 = TD 1.5 expected)`, { bodyType });
    }
    if (bodySize !== expected) {
      malformed(`quote v5 body size ${bodySize} does not match body type ${bodyType} (${expected} bytes)`, { bodyType, bodySize, expected });
    }
  }
  const body = decodeBody(r, bodyType === BODY_TYPE_TD15);
  const signedData = quote.subarray(0, r.offset);
  const signatureDataLength = r.u32le('signatureDataLength');
  if (signatureDataLength > r.remaining) {
    throw reject(TRUNC, `quote signature data length ${signatureDataLength} exceeds the ${r.remaining} bytes left in the quote`, { signatureDataLength, remaining: r.remaining });
  }
  const signatureData = decodeSignatureData(r.bytes(signatureDataLength, 'signatureData'));
  return { header, bodyType, body, signatureDataLength, signatureData, signedData, trailingBytes: r.remaining };
}
