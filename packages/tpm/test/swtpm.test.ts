import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePublic, publicKeyObject, tpmName, verifyQuote } from '@joinguard/tpm';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Swtpm } from './swtpm.js';
import { codeOf as code } from '@joinguard/core/testing';

let tpm: Swtpm;
const NONCE = '5ea1ed0f0123456789abcdef';

beforeAll(async () => {
  tpm = await Swtpm.start();
  tpm.run('tpm2_createek', ['-c', 'ek.ctx', '-G', 'rsa', '-u', 'ek.pub']);
  tpm.run('tpm2_pcrextend', [`7:sha256=${'ab'.repeat(32)}`]);
  tpm.run('tpm2_pcrextend', [`0:sha256=${'cd'.repeat(32)}`]);
});
afterAll(() => tpm?.stop());

const KEYS = [
  { name: 'ECC P-256 ECDSA', G: 'ecc', s: 'ecdsa' },
  { name: 'RSA-2048 RSASSA', G: 'rsa', s: 'rsassa' },
  { name: 'RSA-2048 RSAPSS', G: 'rsa', s: 'rsapss' },
] as const;

describe('quotes from swtpm (tpm2_createak, tpm2_quote), checked by tpm2_checkquote too', () => {
  for (const k of KEYS) {
    it(k.name, () => {
      const p = `${k.G}-${k.s}`;
      tpm.run('tpm2_createak', ['-C', 'ek.ctx', '-c', `${p}.ctx`, '-G', k.G, '-g', 'sha256', '-s', k.s, '-u', `${p}.pub`, '-n', `${p}.name`, '-r', `${p}.priv`]);
      const sel = 'sha256:0,1,2,7,16';
      tpm.run('tpm2_quote', ['-c', `${p}.ctx`, '-l', sel, '-q', NONCE, '-m', `${p}.msg`, '-s', `${p}.sig`, '-o', `${p}.pcrs`, '-g', 'sha256', '--scheme', k.s]);
      // Independent verifiers accept it. tpm2_checkquote (tpm2-tools 5.4) cannot check RSAPSS signatures (it
      // fails "Error validating signed message" on quotes the TPM made), so for RSAPSS openssl checks the
      // signature over the TPMS_ATTEST with the AK exported by tpm2_readpublic.
      if (k.s === 'rsapss') {
        tpm.run('tpm2_readpublic', ['-c', `${p}.ctx`, '-f', 'pem', '-o', `${p}.pem`]);
        writeFileSync(tpm.path(`${p}.raw`), tpm.file(`${p}.sig`).subarray(6)); // TPMT_SIGNATURE: sigAlg, hash, size, sig
        execFileSync('openssl', ['dgst', '-sha256', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:auto', '-verify', tpm.path(`${p}.pem`), '-signature', tpm.path(`${p}.raw`), tpm.path(`${p}.msg`)]);
        expect(() => tpm.run('tpm2_checkquote', ['-u', `${p}.pub`, '-m', `${p}.msg`, '-s', `${p}.sig`, '-f', `${p}.pcrs`, '-g', 'sha256', '-q', NONCE])).toThrow(/Error validating signed message/);
      } else {
        tpm.run('tpm2_checkquote', ['-u', `${p}.pub`, '-m', `${p}.msg`, '-s', `${p}.sig`, '-f', `${p}.pcrs`, '-g', 'sha256', '-q', NONCE]);
      }
      const pcrs = tpm.pcrRead(sel);
      const akPub = tpm.file(`${p}.pub`); // TPM2B_PUBLIC as tpm2-tools writes it
      const claims = verifyQuote({ quote: tpm.file(`${p}.msg`), signature: tpm.file(`${p}.sig`), akPublic: akPub, expectedExtraData: Buffer.from(NONCE, 'hex'), pcrs });
      expect(claims.pcrsVerified).toBe(true);
      expect(claims.pcrs).toEqual(pcrs);
      expect(claims.signature).toEqual({ sigAlg: k.s, hash: 'sha256' });
      expect(claims.ak.attributesChecked).toBe(true);
      expect(claims.ak.objectAttributes).toMatchObject({ restricted: true, sign: true, decrypt: false, fixedTPM: true });
      // Our TPM name equals the one tpm2-tools computed, and the quote's signer is named after the AK's hierarchy.
      expect(claims.ak.name).toBe(Buffer.from(tpm.file(`${p}.name`)).toString('hex'));
      expect(Buffer.from(tpmName(decodePublic(akPub))).toString('hex')).toBe(claims.ak.name);
      const clock = tpm.run('tpm2_readclock', []);
      expect(clock).toMatch(new RegExp(`reset_count: ${claims.clockInfo.resetCount}\\b`));
      expect(clock).toMatch(new RegExp(`restart_count: ${claims.clockInfo.restartCount}\\b`));
      expect(clock).toMatch(new RegExp(`safe: ${claims.clockInfo.safe ? 'yes' : 'no'}\\b`));

      // A wrong nonce, a changed PCR, a missing PCR and an extra PCR are all refused.
      const base = { quote: tpm.file(`${p}.msg`), signature: tpm.file(`${p}.sig`), akPublic: akPub };
      expect(code(() => verifyQuote({ ...base, expectedExtraData: Buffer.from('00' + NONCE, 'hex'), pcrs }))).toBe('TPM_QUOTE_EXTRA_DATA_MISMATCH');
      expect(code(() => verifyQuote({ ...base, pcrs: { sha256: { ...pcrs.sha256, 7: '00'.repeat(32) } } }))).toBe('TPM_QUOTE_PCR_DIGEST_MISMATCH');
      const { 16: _drop, ...missing } = pcrs.sha256!;
      expect(code(() => verifyQuote({ ...base, pcrs: { sha256: missing } }))).toBe('TPM_QUOTE_PCR_MISSING');
      expect(code(() => verifyQuote({ ...base, pcrs: { sha256: { ...pcrs.sha256, 8: '00'.repeat(32) } } }))).toBe('TPM_QUOTE_PCR_NOT_SELECTED');
      const sig = new Uint8Array(base.signature);
      sig[sig.length - 5] ^= 1;
      expect(code(() => verifyQuote({ ...base, signature: sig }))).toBe('TPM_BAD_SIGNATURE');
      const q = new Uint8Array(base.quote);
      q[q.length - 1] ^= 1; // inside pcrDigest
      expect(code(() => verifyQuote({ ...base, quote: q }))).toBe('TPM_BAD_SIGNATURE');
    });
  }

  it('refuses a quote signed by an unrestricted signing key', () => {
    tpm.run('tpm2_createprimary', ['-C', 'o', '-c', 'prim.ctx']);
    tpm.run('tpm2_create', ['-C', 'prim.ctx', '-G', 'ecc', '-u', 'free.pub', '-r', 'free.priv', '-a', 'sign|fixedtpm|fixedparent|sensitivedataorigin|userwithauth']);
    tpm.run('tpm2_load', ['-C', 'prim.ctx', '-u', 'free.pub', '-r', 'free.priv', '-c', 'free.ctx']);
    tpm.run('tpm2_quote', ['-c', 'free.ctx', '-l', 'sha256:0', '-q', NONCE, '-m', 'free.msg', '-s', 'free.sig', '-g', 'sha256']);
    const input = { quote: tpm.file('free.msg'), signature: tpm.file('free.sig'), akPublic: tpm.file('free.pub') };
    expect(code(() => verifyQuote(input))).toBe('TPM_AK_NOT_RESTRICTED_SIGNING');
    // The signature itself is good: given as a bare key with the explicit option, it verifies.
    expect(verifyQuote({ ...input, akPublic: publicKeyObject(decodePublic(input.akPublic)), allowAkWithoutAttributes: true }).ak.attributesChecked).toBe(false);
    expect(code(() => verifyQuote({ ...input, akPublic: publicKeyObject(decodePublic(input.akPublic)) }))).toBe('TPM_AK_ATTRIBUTES_UNKNOWN');
  });
});
