import { toHex } from '@joinguard/core';
import type { TdQuoteBody, TdxQuote } from './decode.js';

/** The TD report body's TD 1.0 fields, in the spec's order, as hex (shared by inspect and the verified claims). */
export function tdBodyHex(b: TdQuoteBody) {
  return {
    teeTcbSvn: toHex(b.teeTcbSvn),
    mrSeam: toHex(b.mrSeam),
    mrSignerSeam: toHex(b.mrSignerSeam),
    seamAttributes: toHex(b.seamAttributes),
    tdAttributes: toHex(b.tdAttributes),
    xfam: toHex(b.xfam),
    mrTd: toHex(b.mrTd),
    mrConfigId: toHex(b.mrConfigId),
    mrOwner: toHex(b.mrOwner),
    mrOwnerConfig: toHex(b.mrOwnerConfig),
    rtmr0: toHex(b.rtmr0),
    rtmr1: toHex(b.rtmr1),
    rtmr2: toHex(b.rtmr2),
    rtmr3: toHex(b.rtmr3),
    reportData: toHex(b.reportData),
  };
}

/**
 * The `inspect` view of a quote (DESIGN.md "inspect JSON"): lowerCamelCase spec names, hex for bytes.
 * Fields beyond the DESIGN list (v5 body fields, QE report, signature data) follow them.
 */
export function inspectQuote(q: TdxQuote): Record<string, unknown> {
  const h = q.header;
  const b = q.body;
  const cd = q.signatureData.certificationData;
  const qe = cd.qeReport;
  return {
    version: h.version,
    attestationKeyType: h.attestationKeyType,
    teeType: h.teeType,
    qeSvn: h.qeSvn,
    pceSvn: h.pceSvn,
    qeVendorId: toHex(h.qeVendorId),
    userData: toHex(h.userData),
    ...tdBodyHex(b),
    ...(h.version === 5 ? { bodyType: q.bodyType } : {}),
    ...(b.teeTcbSvn2 ? { teeTcbSvn2: toHex(b.teeTcbSvn2) } : {}),
    ...(b.mrServiceTd ? { mrServiceTd: toHex(b.mrServiceTd) } : {}),
    signatureDataLength: q.signatureDataLength,
    trailingBytes: q.trailingBytes,
    quoteSignature: toHex(q.signatureData.quoteSignature),
    attestationKey: toHex(q.signatureData.attestationKey),
    certificationDataType: q.signatureData.certificationDataType,
    qeReport: {
      cpuSvn: toHex(qe.cpuSvn),
      miscSelect: qe.miscSelect,
      attributes: toHex(qe.attributes),
      mrEnclave: toHex(qe.mrEnclave),
      mrSigner: toHex(qe.mrSigner),
      isvProdId: qe.isvProdId,
      isvSvn: qe.isvSvn,
      reportData: toHex(qe.reportData),
    },
    qeReportSignature: toHex(cd.qeReportSignature),
    qeAuthData: toHex(cd.qeAuthData),
    pckCertDataType: cd.pckCertDataType,
    pckCertChain: cd.pckCertChainPem,
  };
}
