// The published Azure CVM bundles (MANIFEST.md "azure/") in the evidence shape of DESIGN.md. They were bound
// to Azure's own challenge: runtime claims user-data is 64 zero bytes and the vTPM quote's extraData is
// "challenge", which tests supply as the expected binding.
import { createPublicKey, randomBytes, type JsonWebKey } from 'node:crypto';
import { newKeyPair } from '@joinguard/core';
import { readVector, readVectorText } from '@joinguard/core/testing';
import { toB64url, type Evidence } from '@joinguard/protocol';
import { headerOnlyEventLog } from '@joinguard/simcvm';

export const ZERO_USER_DATA = new Uint8Array(64);
export const CHALLENGE = Buffer.from(/extraData = "challenge" \(([0-9a-f]+)\)/.exec(readVectorText('MANIFEST.md'))![1]!, 'hex');
/** Azure CVM attestation of these bundles happened in 2023/2024; their certificates are valid then. */
export const AZURE_VECTORS_TIME = new Date('2024-06-01T00:00:00Z');

export function tpmtSignatureRsassa(sig: Buffer): Buffer {
  const h = Buffer.alloc(6);
  h.writeUInt16BE(0x0014, 0); // TPM_ALG_RSASSA
  h.writeUInt16BE(0x000b, 2); // TPM_ALG_SHA256
  h.writeUInt16BE(sig.length, 4);
  return Buffer.concat([h, sig]);
}

/** The HCLAkPub JWK of the HCL report's runtime claims, as SPKI DER. */
export function hclAkSpki(hcl: Uint8Array): Buffer {
  const b = Buffer.from(hcl);
  const at = 0x20 + 1184;
  const varSize = b.readUInt32LE(at + 16);
  const json = JSON.parse(b.subarray(at + 20, at + 20 + varSize).toString('utf8')) as { keys: (JsonWebKey & { kid: string })[] };
  return createPublicKey({ key: json.keys.find((k) => k.kid === 'HCLAkPub')!, format: 'jwk' }).export({ type: 'spki', format: 'der' });
}

export function azureEvidence(dir: string, tee: 'azure-snp-vtpm' | 'azure-tdx-vtpm', hclFile = `azure/${dir}/hcl-report.bin`, nonce?: string): Evidence {
  const hcl = readVector(hclFile);
  const q = JSON.parse(readVectorText(`azure/${dir}/tpm-quote-v1.json`)) as { message: string; signature: string; pcrs: string[] };
  const certs: Record<string, string> =
    tee === 'azure-snp-vtpm' ? { vcek: readVectorText(`azure/${dir}/vcek.pem`) } : { tdQuote: Buffer.from(readVector(`azure/${dir}/td-quote.bin`)).toString('base64') };
  const teeKey = newKeyPair({ type: 'ec', namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
  return {
    nonce: nonce ?? toB64url(new Uint8Array(randomBytes(32))),
    tee,
    runtimeData: { teeKey: { kty: 'EC', crv: 'P-256', x: teeKey.x!, y: teeKey.y! }, nodeName: 'azure-cvm-0', purpose: 'join' },
    hardware: { report: Buffer.from(hcl).toString('base64'), certs },
    tpm: {
      quote: Buffer.from(q.message, 'hex').toString('base64'),
      signature: tpmtSignatureRsassa(Buffer.from(q.signature, 'hex')).toString('base64'),
      pcrs: { sha256: Object.fromEntries(q.pcrs.map((v, i) => [String(i), v])) },
      akPublic: hclAkSpki(hcl).toString('base64'),
    },
    eventLog: Buffer.from(headerOnlyEventLog()).toString('base64'),
  };
}
