import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newKeyPair } from '@joinguard/core';
import { createHash, sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readVector, readVectorText } from '@joinguard/core/testing';
import { buildCli, cli, errCode } from './support.js';

let dir: string;

const put = (name: string, data: string | Uint8Array): string => {
  const f = join(dir, name);
  writeFileSync(f, data);
  return f;
};

beforeAll(() => {
  buildCli();
  dir = mkdtempSync(join(tmpdir(), 'jg-tpm-cli-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('joinguard tpm verify-quote on the trustee vector (AK as SPKI DER)', () => {
  const t = JSON.parse(readVectorText('tpm/trustee_tpm_evidence/tpm_evidence.json')) as { ak_public: string; tpm_quote: { message: string; signature: string; pcrs: string[] } };
  const files = () => ({
    quote: put('trustee.quote', Buffer.from(t.tpm_quote.message, 'base64')),
    sig: put('trustee.sig', Buffer.from(t.tpm_quote.signature, 'base64')),
    ak: put('trustee.ak.der', Buffer.from(t.ak_public, 'base64')),
    pcrs: put('trustee.pcrs.json', JSON.stringify({ sha256: Object.fromEntries(t.tpm_quote.pcrs.map((v, i) => [i, v])) })),
  });
  // MANIFEST gives the 48-byte nonce; extraData is it plus 16 zero bytes (see packages/tpm/test/vectors.test.ts).
  const nonce = /extraData \(nonce\) ([0-9a-f]+) \+ 32 zero bytes/.exec(readVectorText('MANIFEST.md'))![1]! + '0'.repeat(32);

  it('verifies (exit 0) with --allow-bare-ak, the nonce and the PCRs', () => {
    const f = files();
    const r = cli('tpm', 'verify-quote', '--quote', f.quote, '--signature', f.sig, '--ak', f.ak, '--nonce', nonce, '--pcrs', f.pcrs, '--allow-bare-ak', '--json');
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ verified: true, pcrsVerified: true, extraDataVerified: true, extraData: nonce });
  });
  it('without --allow-bare-ak an SPKI AK is refused (exit 1, TPM_AK_ATTRIBUTES_UNKNOWN)', () => {
    const f = files();
    const r = cli('tpm', 'verify-quote', '--quote', f.quote, '--signature', f.sig, '--ak', f.ak, '--json');
    expect(r.code).toBe(1);
    expect(errCode(r.json)).toBe('TPM_AK_ATTRIBUTES_UNKNOWN');
  });
  it('a wrong nonce is rejected (exit 1)', () => {
    const f = files();
    const r = cli('tpm', 'verify-quote', '--quote', f.quote, '--signature', f.sig, '--ak', f.ak, '--nonce', '00', '--allow-bare-ak', '--json');
    expect(r.code).toBe(1);
    expect(errCode(r.json)).toBe('TPM_QUOTE_EXTRA_DATA_MISMATCH');
  });
  it('bad arguments are unusable input (exit 2)', () => {
    const f = files();
    expect(cli('tpm', 'verify-quote', '--quote', f.quote, '--signature', f.sig, '--ak', f.ak, '--nonce', 'xyz', '--json').code).toBe(2);
    expect(cli('tpm', 'verify-quote', '--quote', join(dir, 'missing'), '--signature', f.sig, '--ak', f.ak, '--json').code).toBe(2);
    expect(cli('tpm', 'verify-quote', '--quote', f.quote, '--signature', f.sig, '--json').code).toBe(2);
    expect(cli('tpm', 'verify-quote', '--quote', f.quote, '--signature', f.sig, '--ak', f.ak, '--pcrs', '{nope', '--json').code).toBe(2);
  });
});

describe('joinguard tpm verify-quote on Azure quotes (raw RSASSA signature, AK as JWK)', () => {
  const hcl = Buffer.from(readVector('azure/az_snp_vtpm_milan_v2/hcl-report.bin'));
  const at = 0x20 + 1184;
  const jwk = (JSON.parse(hcl.subarray(at + 20, at + 20 + hcl.readUInt32LE(at + 16)).toString('utf8')) as { keys: { kid: string }[] }).keys.find((k) => k.kid === 'HCLAkPub');
  const q = JSON.parse(readVectorText('azure/az_snp_vtpm_milan_v2/tpm-quote-v1.json')) as { message: string; signature: string; pcrs: string[] };
  const bad = JSON.parse(readVectorText('tpm/derived/az_snp_tpm_quote_sig_byte0_xor1.json')) as { signature: string };

  it('verifies with the "challenge" nonce (hex files)', () => {
    const r = cli('tpm', 'verify-quote', '--quote', put('az.quote.hex', q.message), '--signature', put('az.sig.hex', q.signature), '--raw-signature', 'rsassa-sha256', '--ak', put('az.ak.jwk', JSON.stringify(jwk)), '--allow-bare-ak', '--nonce', Buffer.from('challenge').toString('hex'), '--pcrs', JSON.stringify({ sha256: Object.fromEntries(q.pcrs.map((v, i) => [i, v])) }), '--json');
    expect(r.code).toBe(0);
    expect(r.json!.pcrsVerified).toBe(true);
  });
  it('the derived signature is rejected (exit 1, TPM_BAD_SIGNATURE)', () => {
    const r = cli('tpm', 'verify-quote', '--quote', put('az.quote.hex', q.message), '--signature', put('az.badsig.hex', bad.signature), '--raw-signature', 'rsassa-sha256', '--ak', put('az.ak.jwk', JSON.stringify(jwk)), '--allow-bare-ak', '--json');
    expect(r.code).toBe(1);
    expect(errCode(r.json)).toBe('TPM_BAD_SIGNATURE');
  });
});

describe('joinguard tpm verify-quote with a TPMT_PUBLIC AK', () => {
  // A P-256 restricted signing key marshalled as TPMT_PUBLIC (TPM 2.0 Part 2), and a quote it signs.
  const u16 = (v: number) => Buffer.from([v >> 8, v & 0xff]);
  const u32 = (v: number) => Buffer.from([v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]);
  const b2 = (b: Uint8Array) => Buffer.concat([u16(b.length), Buffer.from(b)]);
  const { publicKey, privateKey } = newKeyPair({ type: 'ec', namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  const restrictedSign = (1 << 1) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 16) | (1 << 18);
  const pub = Buffer.concat([u16(0x23), u16(0x0b), u32(restrictedSign), b2(new Uint8Array()), u16(0x10), u16(0x18), u16(0x0b), u16(0x03), u16(0x10), b2(Buffer.from(jwk.x!, 'base64url')), b2(Buffer.from(jwk.y!, 'base64url'))]);
  const pcr7 = 'ab'.repeat(32);
  const quote = Buffer.concat([u32(0xff544347), u16(0x8018), b2(Buffer.alloc(34)), b2(Buffer.from('abcd', 'hex')), Buffer.alloc(8), u32(1), u32(0), Buffer.from([1]), Buffer.alloc(8), u32(1), u16(0x0b), Buffer.from([3, 0x80, 0, 0]), b2(createHash('sha256').update(Buffer.from(pcr7, 'hex')).digest())]);
  const raw = sign('sha256', quote, { key: privateKey, dsaEncoding: 'ieee-p1363' });
  const sig = Buffer.concat([u16(0x18), u16(0x0b), b2(raw.subarray(0, 32)), b2(raw.subarray(32))]);

  it('verifies and prints the AK name; text mode too', () => {
    const args = ['tpm', 'verify-quote', '--quote', put('s.quote', quote), '--signature', put('s.sig', sig), '--ak', put('s.pub', pub), '--nonce', 'abcd', '--pcrs', JSON.stringify({ sha256: { 7: pcr7 } })];
    const r = cli(...args, '--json');
    expect(r.code).toBe(0);
    expect((r.json!.ak as { name: string }).name).toBe('000b' + createHash('sha256').update(pub).digest('hex'));
    const t = cli(...args);
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(/^quote verified/);
  });
  it('a wrong PCR value is rejected (exit 1)', () => {
    const r = cli('tpm', 'verify-quote', '--quote', put('s.quote', quote), '--signature', put('s.sig', sig), '--ak', put('s.pub', pub), '--pcrs', JSON.stringify({ sha256: { 7: '00'.repeat(32) } }), '--json');
    expect(r.code).toBe(1);
    expect(errCode(r.json)).toBe('TPM_QUOTE_PCR_DIGEST_MISMATCH');
  });
});
