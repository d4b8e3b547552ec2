export { decodeAttest, decodeSignature, decodePublic, decodePcrSelection } from './decode.js';
export type { TpmsAttest, TpmtSignature, TpmtPublic, PcrSelection, ClockInfo, ObjectAttributes } from './decode.js';
export { verifyQuote, tpmName, publicKeyObject, resolveAk, verifyTpmSignature, pcrCompositeDigest } from './verify.js';
export type { VerifyQuoteInput, QuoteClaims, PcrValues, AkPublicInput } from './verify.js';
export { TPM_ALG, TPM_ST, TPM_HASH, TPMA_OBJECT, TPM_GENERATED_VALUE, TPM_ECC_CURVE, tpmAlgName, hashIdByName } from './constants.js';
export { verifyAkCertificate } from './akcert.js';
export type { VerifyAkCertificateInput, AkCertificateClaims, CertInput } from './akcert.js';
