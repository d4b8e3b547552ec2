export {
  decodeQuote, decodeQeReport, HEADER_SIZE, TD10_BODY_SIZE, TD15_BODY_SIZE, QE_REPORT_SIZE, MAX_QUOTE_SIZE,
  BODY_TYPE_TD10, BODY_TYPE_TD15, CERT_DATA_TYPE_PCK_CHAIN, CERT_DATA_TYPE_QE_REPORT, TEE_TYPE_TDX,
} from './decode.js';
export type { TdxQuote, QuoteHeader, TdQuoteBody, QeReport, QeReportCertificationData, QuoteSignatureData } from './decode.js';
export { inspectQuote } from './inspect.js';
export { parsePckExtensions, SGX_EXTENSIONS_OID } from './pck.js';
export type { PckExtensions } from './pck.js';
export { trustAnchorFromPem, parsePemChain, verifyChain, verifyCrl } from './certs.js';
export type { TrustAnchor, VerifiedCrl } from './certs.js';
export { intelSgxRootCa, INTEL_SGX_ROOT_CA_PEM } from './roots.js';
export {
  parseSignedJson, checkTcbInfoShape, checkEnclaveIdentityShape, evaluateTdxTcb, evaluateQeIdentity, worseStatus, TCB_STATUS_ORDER,
} from './tcb.js';
export type { TcbInfo, TdxTcbLevel, TdxModuleIdentity, EnclaveIdentity, TcbEvaluation, QeEvaluation, SignedJson } from './tcb.js';
export {
  verifyQuote, verifyQuoteWithCollateral, verifyQuoteSignatures, verifyCollateral, checkPckChain, attestationKeyObject, PckChainCache,
} from './verify.js';
export type {
  CollateralBundle, VerifiedCollateral, PckCa, TdxTcbPolicy, TdxClaims, TdxVerification, VerifyQuoteOptions, VerifyQuoteFullOptions,
  QuoteSignatureCheckOptions, CheckedPckChain, VerifyCollateralOptions,
} from './verify.js';
export { PcsClient, PCS_BASE_URL, BUNDLE_FILES, readCollateralBundle, writeCollateralBundle, bundleNextUpdate, parseRetryAfter } from './collateral.js';
export type { PcsClientOptions, FetchLike, TdxCollateralSource } from './collateral.js';
export { compareRtmrs, verifyCcel } from './rtmr.js';
export type { Rtmrs } from './rtmr.js';
