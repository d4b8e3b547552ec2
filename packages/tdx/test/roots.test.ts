import { describe, expect, it } from 'vitest';
import { createHash, X509Certificate } from 'node:crypto';
import { readVectorText } from '@joinguard/core/testing';
import { INTEL_SGX_ROOT_CA_PEM, intelSgxRootCa } from '../src/index.js';

describe('pinned Intel SGX Root CA', () => {
  it('has the SHA-256 fingerprint MANIFEST.md gives (44:A0:19:6B:…:74:D3), computed independently of node X509', () => {
    const b64 = INTEL_SGX_ROOT_CA_PEM.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
    const fp = createHash('sha256').update(Buffer.from(b64, 'base64')).digest('hex').toUpperCase().match(/../g)!.join(':');
    expect(fp.startsWith('44:A0:19:6B:')).toBe(true);
    expect(fp.endsWith(':74:D3')).toBe(true);
    expect(intelSgxRootCa().fingerprint256).toBe(fp);
  });

  it('is the same certificate as the published intel_sgx_root_ca.pem, self-signed, a CA, valid to 2049', () => {
    const published = new X509Certificate(readVectorText('tdx/intel_roots/intel_sgx_root_ca.pem'));
    const anchor = intelSgxRootCa().cert;
    expect(anchor.raw.equals(published.raw)).toBe(true);
    expect(anchor.verify(anchor.publicKey)).toBe(true);
    expect(anchor.ca).toBe(true);
    expect(new Date(anchor.validTo).getUTCFullYear()).toBe(2049);
  });
});
