// @joinguard/snp: AMD SEV-SNP attestation reports. decode (bytes → fields), verify (signature, chains,
// extensions, CRL; `now` and collateral passed in), collateral (AMD KDS with cache and offline mode).
export { SnpErrorCode, ALL_SNP_ERROR_CODES } from './errors.js';
export type { SnpErrorCodeValue } from './errors.js';
export {
  decodeReport,
  reportCpuid,
  REPORT_LAYOUT,
  REPORT_SIZE,
  SIGNED_LENGTH,
  SUPPORTED_VERSIONS,
  SIGNING_KEY_VCEK,
  SIGNING_KEY_VLEK,
  SIGNING_KEY_NONE,
} from './decode.js';
export type { SnpReport } from './decode.js';
export { checkTcbAtLeast, decodeTcb, encodeTcb, tcbLayoutFor, tcbHex, parseProduct, productFromCpuid, resolveProduct, kdsProductName, SNP_PRODUCTS, TCB_BYTE } from './tcb.js';
export type { SnpProduct, TcbVersion, TcbLayout } from './tcb.js';
export { buildClaims, decodePolicy, decodePlatformInfo, reportToJson, inspectReport, inspectLayout, POLICY_BIT, PLATFORM_INFO_BIT } from './claims.js';
export type { SnpClaims, GuestPolicy, PlatformInfo, SigningKeyName } from './claims.js';
export { verifyReport, verifyChain, verifyReportSignature, reportSignatureP1363, checkExtensions, checkCrl, reportProduct, ChainCache } from './verify.js';
export type { SnpCollateral, SnpVerifyOptions, VerifiedChain, VerifiedSnpReport, SigningKeyKind } from './verify.js';
export { useP384Backend, p384Backend, p384Backends, p384FallbackReason, verifyP384Sha384, P384_BACKEND_CHOICES, NETTLE_LIBRARIES } from './p384.js';
export type { P384Backend, P384BackendChoice, P384BackendName, P384KeyTables, P384KeyTableStats } from './p384.js';
export { parseAmdCert, parseCrl, certificatesFromBytes, pemBlocks, fingerprint256, AMD_OID } from './cert.js';
export type { AmdCert, AmdExtensions, ParsedCrl } from './cert.js';
export { SnpTrustStore, amdTrustStore, trustStoreFrom, amdRootPem } from './roots.js';
export type { SnpTrustAnchor } from './roots.js';
export { KdsClient, collateralForReport, kdsVcekPath, kdsCertChainPath, kdsCrlPath, parseRetryAfter } from './collateral.js';
export type { SnpCollateralSource, KdsClientOptions, KdsKeyKind } from './collateral.js';
