export { openTpm, Tpm, tpmRcError, pcrValuesToHex } from './tpm.js';
export type { AttestationKey, Quote, PcrValues, PcrReadResult, PcrSelection, NvPublic, NvAuth, NvDefineOptions } from './tpm.js';
export { PCR_BANKS, TPMA_NV, TPMA_OBJECT, TPM2_ALG } from './constants.js';
export type { PcrBank } from './constants.js';

/** Well-known NV indices and handles of Azure confidential VMs' vTPM. */
export const AZURE_HCL_REPORT_NV_INDEX = 0x01400001;
export const AZURE_USER_DATA_NV_INDEX = 0x01400002;
export const AZURE_AK_PERSISTENT_HANDLE = 0x81000003;
/** TCG EK Credential Profile: RSA-2048 and ECC P-256 EK certificate NV indices. */
export const EK_CERT_RSA_NV_INDEX = 0x01c00002;
export const EK_CERT_ECC_NV_INDEX = 0x01c0000a;
