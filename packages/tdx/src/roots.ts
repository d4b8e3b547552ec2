import { trustAnchorFromPem, type TrustAnchor } from './certs.js';
import { INTEL_SGX_ROOT_CA_PEM } from './intel-sgx-root-ca.js';

export { INTEL_SGX_ROOT_CA_PEM };

let intel: TrustAnchor | undefined;

/** The pinned Intel SGX Root CA (the default trust anchor of every TDX verification). */
export function intelSgxRootCa(): TrustAnchor {
  intel ??= trustAnchorFromPem(INTEL_SGX_ROOT_CA_PEM);
  return intel;
}
