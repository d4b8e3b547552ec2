import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { readVector, readVectorText, codeOf as code } from '@joinguard/core/testing';
import { decodeAttest, decodeSignature, verifyQuote, type PcrValues, type TpmtSignature } from '@joinguard/tpm';

const manifest = readVectorText('MANIFEST.md');

const sha256Bank = (values: string[]): PcrValues => ({ sha256: Object.fromEntries(values.map((v, i) => [i, v])) });

/**
 * The AK of an Azure CVM is the HCLAkPub JWK in the HCL report's runtime data (MANIFEST "azure"): after the
 * 0x20-byte header and the 1184-byte hardware report come the IGVM request data fields (data size, version,
 * report type, hash type, variable data size) and then the JSON.
 */
function azureAk(dir: string): JsonWebKey {
  const hcl = Buffer.from(readVector(`azure/${dir}/hcl-report.bin`));
  const at = 0x20 + 1184;
  const varSize = hcl.readUInt32LE(at + 16);
  const json = JSON.parse(hcl.subarray(at + 20, at + 20 + varSize).toString('utf8')) as { keys: (JsonWebKey & { kid: string })[] };
  return json.keys.find((k) => k.kid === 'HCLAkPub')!;
}

/** Azure's tpm-quote-v1.json: hex TPMS_ATTEST `message`, raw RSASSA-PKCS1v1.5 SHA-256 `signature`, SHA-256 PCRs 0..23. */
function azureQuote(path: string): { quote: Uint8Array; signature: TpmtSignature; pcrs: PcrValues } {
  const j = JSON.parse(readVectorText(path)) as { message: string; signature: string; pcrs: string[] };
  return { quote: Buffer.from(j.message, 'hex'), signature: { sigAlg: 'rsassa', hash: 0x000b, signature: Buffer.from(j.signature, 'hex') }, pcrs: sha256Bank(j.pcrs) };
}

describe('trustee_tpm_evidence (AK as SPKI, TPMT_SIGNATURE RSASSA SHA-256)', () => {
  const t = JSON.parse(readVectorText('tpm/trustee_tpm_evidence/tpm_evidence.json')) as { ak_public: string; tpm_quote: { message: string; signature: string; pcrs: string[] } };
  const input = {
    quote: Buffer.from(t.tpm_quote.message, 'base64'),
    signature: Buffer.from(t.tpm_quote.signature, 'base64'),
    akPublic: Buffer.from(t.ak_public, 'base64'),
    pcrs: sha256Bank(t.tpm_quote.pcrs),
  };
  // MANIFEST: "extraData (nonce) <96 hex digits> + 32 zero bytes". The quote's extraData is 64 bytes, i.e. the
  // 48-byte nonce and 16 zero bytes: the "32 zero" are hex digits, not bytes (a 48 + 32 = 80-byte extraData
  // would exceed TPM2B_DATA's 64-byte limit).
  const nonce = /extraData \(nonce\) ([0-9a-f]+) \+ 32 zero bytes/.exec(manifest)![1]!;

  it('verifies with the nonce and PCRs MANIFEST gives', () => {
    expect(decodeSignature(input.signature)).toMatchObject({ sigAlg: 'rsassa', hash: 0x000b });
    expect(input.signature.length).toBe(262);
    const claims = verifyQuote({ ...input, expectedExtraData: Buffer.from(nonce + '0'.repeat(32), 'hex'), allowAkWithoutAttributes: true });
    expect(claims.pcrsVerified).toBe(true);
    expect(claims.pcrSelect).toEqual([{ hash: 0x000b, bank: 'sha256', pcrs: Array.from({ length: 24 }, (_, i) => i) }]);
    expect(Object.keys(claims.pcrs!.sha256!).length).toBe(24);
    expect(claims.ak).toMatchObject({ keyType: 'rsa', attributesChecked: false });
    expect(claims.clockInfo.safe).toBe(true);
  });
  it('an SPKI AK needs the explicit option', () => {
    expect(code(() => verifyQuote(input))).toBe('TPM_AK_ATTRIBUTES_UNKNOWN');
  });
  it('a different nonce is refused', () => {
    expect(code(() => verifyQuote({ ...input, expectedExtraData: Buffer.from(nonce, 'hex'), allowAkWithoutAttributes: true }))).toBe('TPM_QUOTE_EXTRA_DATA_MISMATCH');
  });
});

describe('Azure vTPM quotes (AK = HCLAkPub from the HCL report)', () => {
  const nonceHex = /extraData = "challenge" \(([0-9a-f]+)\)/.exec(manifest)![1]!;
  const [digestHead, digestTail] = /pcrDigest ([0-9a-f]+)…([0-9a-f]+) = SHA256\(concat pcrs\)/.exec(manifest)!.slice(1) as [string, string];

  for (const dir of ['az_snp_vtpm_milan_v2', 'az_tdx_vtpm']) {
    it(`${dir}: signature, extraData "challenge" and pcrDigest verify`, () => {
      const q = azureQuote(`azure/${dir}/tpm-quote-v1.json`);
      const claims = verifyQuote({ ...q, akPublic: createPublicKey({ key: azureAk(dir), format: 'jwk' }), expectedExtraData: Buffer.from(nonceHex, 'hex'), allowAkWithoutAttributes: true });
      expect(Buffer.from(claims.extraData, 'hex').toString()).toBe('challenge');
      expect(claims.pcrSelect[0]!.pcrs.length).toBe(24);
      if (dir === 'az_snp_vtpm_milan_v2') {
        expect(claims.pcrDigest.startsWith(digestHead)).toBe(true);
        expect(claims.pcrDigest.endsWith(digestTail)).toBe(true);
      }
    });
  }

  it('derived/az_snp_tpm_quote_sig_byte0_xor1.json is rejected: the signature fails', () => {
    const q = azureQuote('tpm/derived/az_snp_tpm_quote_sig_byte0_xor1.json');
    expect(code(() => verifyQuote({ ...q, akPublic: createPublicKey({ key: azureAk('az_snp_vtpm_milan_v2'), format: 'jwk' }), allowAkWithoutAttributes: true }))).toBe('TPM_BAD_SIGNATURE');
  });

  it('the SNP quote does not verify with the TDX CVM AK', () => {
    const q = azureQuote('azure/az_snp_vtpm_milan_v2/tpm-quote-v1.json');
    expect(code(() => verifyQuote({ ...q, akPublic: createPublicKey({ key: azureAk('az_tdx_vtpm'), format: 'jwk' }), allowAkWithoutAttributes: true }))).toBe('TPM_BAD_SIGNATURE');
  });

  it('a changed PCR value is refused by pcrDigest', () => {
    const q = azureQuote('azure/az_snp_vtpm_milan_v2/tpm-quote-v1.json');
    const pcrs = { sha256: { ...q.pcrs.sha256, 4: 'ff'.repeat(32) } };
    expect(code(() => verifyQuote({ ...q, pcrs, akPublic: createPublicKey({ key: azureAk('az_snp_vtpm_milan_v2'), format: 'jwk' }), allowAkWithoutAttributes: true }))).toBe('TPM_QUOTE_PCR_DIGEST_MISMATCH');
  });

  it('decodes the attest structure fields', () => {
    const a = decodeAttest(azureQuote('azure/az_tdx_vtpm/tpm-quote-v1.json').quote);
    expect(a.magic).toBe(0xff544347);
    expect(a.type).toBe(0x8018);
    expect(a.qualifiedSigner.length).toBe(34); // nameAlg SHA-256 + digest
    expect(a.pcrDigest.length).toBe(32);
  });
});
