import { webcrypto } from 'node:crypto';
import * as px509 from './x509.js';

const provider = webcrypto as unknown as Parameters<typeof px509.X509CertificateGenerator.createSelfSigned>[1];
const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** A self-signed P-256 certificate (DER), standing in for the PK/KEK/db certificates of the firmware. */
export async function selfSignedCertDer(name: string): Promise<Uint8Array> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await px509.X509CertificateGenerator.createSelfSigned(
    { serialNumber: '01', name, notBefore: new Date('2020-01-01T00:00:00Z'), notAfter: new Date('2049-12-31T00:00:00Z'), keys, signingAlgorithm: ALG },
    provider,
  );
  return new Uint8Array(cert.rawData);
}
