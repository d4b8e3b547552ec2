import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JoinguardError } from '@joinguard/core';
import { decodeAttest, decodePublic, publicKeyObject, verifyQuote } from '@joinguard/tpm';
import { PCR_BANKS, openTpm, pcrValuesToHex, type AttestationKey, type PcrSelection, type PcrValues, type Quote, type Tpm } from '@joinguard/tpm2';
import { startSwtpm, type Swtpm } from '@joinguard/tpm2/testing';

/**
 * The PCR file of `tpm2_quote -o` (tpm2-tools 5.x), which tpm2_checkquote -f reads without -l: the host-endian
 * C structures TPML_PCR_SELECTION (count, 16 × {hash u16, sizeofSelect u8, pcrSelect[4]} padded to 8 bytes),
 * a u32 number of lists, then that many TPML_DIGEST (count, 8 × {size u16, buffer[64]}). (tpm2-tools 5.4's
 * raw-values form with -l fails for 8 or more PCRs, so the structured form is used.)
 */
function serializedPcrs(sel: PcrSelection, pcrs: PcrValues): Buffer {
  const banks = Object.entries(sel) as [keyof PcrValues, number[]][];
  const selection = Buffer.alloc(4 + 16 * 8);
  selection.writeUInt32LE(banks.length, 0);
  const values: Uint8Array[] = [];
  banks.forEach(([bank, list], i) => {
    const o = 4 + i * 8;
    selection.writeUInt16LE(PCR_BANKS[bank].alg, o);
    selection.writeUInt8(3, o + 2);
    for (const p of list) {
      selection[o + 3 + (p >> 3)]! |= 1 << (p & 7);
      values.push(pcrs[bank]![p]!);
    }
  });
  const lists: Buffer[] = [];
  for (let i = 0; i < values.length; i += 8) {
    const chunk = values.slice(i, i + 8);
    const l = Buffer.alloc(4 + 8 * 66);
    l.writeUInt32LE(chunk.length, 0);
    chunk.forEach((v, j) => {
      l.writeUInt16LE(v.length, 4 + j * 66);
      l.set(v, 4 + j * 66 + 2);
    });
    lists.push(l);
  }
  const n = Buffer.alloc(4);
  n.writeUInt32LE(lists.length);
  return Buffer.concat([selection, n, ...lists]);
}

/**
 * A quote made here must verify with two independent verifiers: packages/tpm (the project's) and
 * tpm2-tools' tpm2_checkquote (OpenSSL-based); and each must reject a changed PCR, nonce or signature.
 */
describe('quotes from packages/tpm2 verify in packages/tpm and in tpm2_checkquote', () => {
  let sw: Swtpm;
  let tpm: Tpm;
  const work = mkdtempSync(join(tmpdir(), 'joinguard-quote-test-'));

  beforeAll(async () => {
    sw = await startSwtpm();
    tpm = openTpm(sw.tcti);
    // Give the quoted PCRs non-trivial values, as a measured boot would.
    for (const pcr of [0, 7, 14]) {
      tpm.pcrExtend(pcr, {
        sha256: createHash('sha256').update(`boot component ${pcr}`).digest(),
        sha1: createHash('sha1').update(`boot component ${pcr}`).digest(),
      });
    }
  });

  afterAll(async () => {
    tpm?.close();
    await sw?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  let n = 0;
  /** Runs tpm2_checkquote over files written here; returns its exit status and output. */
  function checkquote(
    q: { quoted: Uint8Array; signature: Uint8Array },
    ak: AttestationKey,
    pcrs: PcrValues,
    sel: PcrSelection,
    nonce: Uint8Array,
    akFormat: 'tss' | 'pem',
  ): { status: number | null; output: string } {
    const d = join(work, String(n++));
    rmSync(d, { recursive: true, force: true });
    spawnSync('mkdir', ['-p', d]);
    const akFile = join(d, akFormat === 'tss' ? 'ak.pub' : 'ak.pem');
    if (akFormat === 'tss') {
      // tpm2-tools' "tss" public format: a marshalled TPM2B_PUBLIC.
      const size = Buffer.alloc(2);
      size.writeUInt16BE(ak.public.length);
      writeFileSync(akFile, Buffer.concat([size, ak.public]));
    } else {
      writeFileSync(akFile, publicKeyObject(decodePublic(ak.public)).export({ type: 'spki', format: 'pem' }));
    }
    writeFileSync(join(d, 'quote.msg'), q.quoted);
    writeFileSync(join(d, 'quote.sig'), q.signature);
    writeFileSync(join(d, 'pcrs.bin'), serializedPcrs(sel, pcrs));
    const r = spawnSync(
      'tpm2_checkquote',
      ['-u', akFile, '-m', join(d, 'quote.msg'), '-s', join(d, 'quote.sig'), '-f', join(d, 'pcrs.bin'), '-g', 'sha256', '-q', Buffer.from(nonce).toString('hex')],
      { encoding: 'utf8' },
    );
    return { status: r.status, output: `${r.stdout}${r.stderr}` };
  }

  function rejectionCode(f: () => unknown): string {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(JoinguardError);
      return (e as JoinguardError).code;
    }
    return 'VERIFIED';
  }

  for (const alg of ['ecc', 'rsa'] as const) {
    describe(`${alg} AK`, () => {
      const sel: PcrSelection = { sha256: [0, 1, 2, 3, 4, 5, 6, 7, 14] };
      let ak: AttestationKey;
      let q: Quote;
      const nonce = new Uint8Array(createHash('sha256').update(randomBytes(64)).digest());

      beforeAll(() => {
        ak = tpm.createAk({ alg });
        q = tpm.quote(ak, { extraData: nonce, pcrs: sel });
      });
      afterAll(() => {
        if (ak && !tpm.closed) tpm.flush(ak);
      });

      it('is a quote over the chosen PCRs and our extraData, and pcrs are the quoted values', () => {
        const attest = decodeAttest(q.quoted);
        expect(Buffer.from(attest.extraData)).toEqual(Buffer.from(nonce));
        expect(attest.pcrSelect).toEqual([expect.objectContaining({ pcrs: sel.sha256 })]);
        const read = tpm.pcrRead(sel).pcrs;
        expect(pcrValuesToHex(q.pcrs!)).toEqual(pcrValuesToHex(read));
      });

      it('is signed by a primary key of the endorsement hierarchy (qualifiedSigner = H(TPM_RH_ENDORSEMENT ‖ name))', () => {
        // TPM 2.0 Part 1, 16: the qualified name of a primary object is H_nameAlg(hierarchy handle ‖ Name).
        const qn = (hierarchy: number): string => {
          const h = Buffer.alloc(4);
          h.writeUInt32BE(hierarchy);
          return '000b' + createHash('sha256').update(h).update(ak.name).digest('hex');
        };
        const signer = Buffer.from(decodeAttest(q.quoted).qualifiedSigner).toString('hex');
        expect(signer).toBe(qn(0x4000000b)); // TPM_RH_ENDORSEMENT
        expect(signer).not.toBe(qn(0x40000001)); // TPM_RH_OWNER
      });

      it('verifies in packages/tpm', () => {
        const claims = verifyQuote({ quote: q.quoted, signature: q.signature, akPublic: ak.public, expectedExtraData: nonce, pcrs: pcrValuesToHex(q.pcrs!) });
        expect(claims.pcrsVerified).toBe(true);
        expect(claims.extraDataVerified).toBe(true);
        expect(claims.signature.sigAlg).toBe(alg === 'ecc' ? 'ecdsa' : 'rsassa');
        expect(claims.ak.name).toBe(Buffer.from(ak.name).toString('hex'));
      });

      it('verifies with tpm2_checkquote (AK as TPM2B_PUBLIC and as PEM)', () => {
        for (const fmt of ['tss', 'pem'] as const) {
          const r = checkquote(q, ak, q.pcrs!, sel, nonce, fmt);
          expect(r.output).not.toMatch(/ERROR/);
          expect(r.status).toBe(0);
        }
      });

      it('a changed PCR is rejected by both', () => {
        // The PCR really moves on the TPM after the quote; the attester then sends the new values.
        tpm.pcrExtend(14, { sha256: createHash('sha256').update(`later ${alg}`).digest() });
        const now = tpm.pcrRead(sel).pcrs;
        expect(pcrValuesToHex(now)).not.toEqual(pcrValuesToHex(q.pcrs!));
        expect(rejectionCode(() => verifyQuote({ quote: q.quoted, signature: q.signature, akPublic: ak.public, expectedExtraData: nonce, pcrs: pcrValuesToHex(now) }))).toBe(
          'TPM_QUOTE_PCR_DIGEST_MISMATCH',
        );
        expect(checkquote(q, ak, now, sel, nonce, 'tss').status).not.toBe(0);
      });

      it('a changed nonce is rejected by both', () => {
        const other = nonce.slice();
        other[0]! ^= 1;
        expect(rejectionCode(() => verifyQuote({ quote: q.quoted, signature: q.signature, akPublic: ak.public, expectedExtraData: other, pcrs: pcrValuesToHex(q.pcrs!) }))).toBe(
          'TPM_QUOTE_EXTRA_DATA_MISMATCH',
        );
        expect(checkquote(q, ak, q.pcrs!, sel, other, 'tss').status).not.toBe(0);
      });

      it('a changed signature or quote message is rejected by both', () => {
        const sig = q.signature.slice();
        sig[sig.length - 5]! ^= 0x40; // inside s (ECDSA) or the RSA signature
        expect(rejectionCode(() => verifyQuote({ quote: q.quoted, signature: sig, akPublic: ak.public, expectedExtraData: nonce, pcrs: pcrValuesToHex(q.pcrs!) }))).toBe('TPM_BAD_SIGNATURE');
        expect(checkquote({ quoted: q.quoted, signature: sig }, ak, q.pcrs!, sel, nonce, 'tss').status).not.toBe(0);

        const msg = q.quoted.slice();
        msg[msg.length - 1]! ^= 1; // last byte of pcrDigest
        expect(rejectionCode(() => verifyQuote({ quote: msg, signature: q.signature, akPublic: ak.public, expectedExtraData: nonce }))).toBe('TPM_BAD_SIGNATURE');
        expect(checkquote({ quoted: msg, signature: q.signature }, ak, q.pcrs!, sel, nonce, 'tss').status).not.toBe(0);
      });

      it('a quote signed by another AK is rejected by both', () => {
        const other = tpm.createAk({ alg, unique: new Uint8Array([9]) });
        try {
          expect(rejectionCode(() => verifyQuote({ quote: q.quoted, signature: q.signature, akPublic: other.public, expectedExtraData: nonce }))).toBe('TPM_BAD_SIGNATURE');
          expect(checkquote(q, other, q.pcrs!, sel, nonce, 'tss').status).not.toBe(0);
        } finally {
          tpm.flush(other);
        }
      });
    });
  }

  it('quotes two banks at once, and verifies in packages/tpm', () => {
    const ak = tpm.createAk();
    try {
      const sel: PcrSelection = { sha1: [0, 7], sha256: [0, 7, 14] };
      const nonce = new Uint8Array(randomBytes(64)); // the 64-byte maximum
      const q = tpm.quote(ak, { extraData: nonce, pcrs: sel });
      expect(Object.keys(q.pcrs!).sort()).toEqual(['sha1', 'sha256']);
      const claims = verifyQuote({ quote: q.quoted, signature: q.signature, akPublic: ak.public, expectedExtraData: nonce, pcrs: pcrValuesToHex(q.pcrs!) });
      expect(claims.pcrsVerified).toBe(true);
      const r = checkquote(q, ak, q.pcrs!, sel, nonce, 'tss');
      expect(r.status).toBe(0);
    } finally {
      tpm.flush(ak);
    }
  });

  it('quotes without reading PCRs when asked (pcrValues: false)', () => {
    const ak = tpm.createAk();
    try {
      const q = tpm.quote(ak, { extraData: new Uint8Array(0), pcrs: { sha256: [0] }, pcrValues: false });
      expect(q.pcrs).toBeUndefined();
      const claims = verifyQuote({ quote: q.quoted, signature: q.signature, akPublic: ak.public, expectedExtraData: new Uint8Array(0) });
      expect(claims.extraDataVerified).toBe(true);
    } finally {
      tpm.flush(ak);
    }
  });
});
