import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JoinguardError } from '@joinguard/core';
import { decodePublic, tpmName, verifyAkCertificate } from '@joinguard/tpm';
import {
  AZURE_USER_DATA_NV_INDEX,
  EK_CERT_RSA_NV_INDEX,
  TPMA_NV,
  openTpm,
  type Tpm,
} from '@joinguard/tpm2';
import { startSwtpm, type Swtpm } from '@joinguard/tpm2/testing';
import { loadKoffi, loadLibrary } from '../src/ffi.js';

function caught(f: () => unknown): JoinguardError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(JoinguardError);
    return e as JoinguardError;
  }
  throw new Error('expected a JoinguardError, nothing was thrown');
}

/** tpm2-tools against the same swtpm (which serves one connection at a time, so our session is closed first). */
function tools(sw: Swtpm, args: string[]): string {
  return execFileSync(args[0]!, args.slice(1), { encoding: 'utf8', env: { ...process.env, TPM2TOOLS_TCTI: sw.tcti } });
}

describe('tpm2 on swtpm', () => {
  let sw: Swtpm;
  let tpm: Tpm;
  const work = mkdtempSync(join(tmpdir(), 'joinguard-tpm2-test-'));

  beforeAll(async () => {
    sw = await startSwtpm();
    tpm = openTpm(sw.tcti);
  });

  afterAll(async () => {
    tpm?.close();
    await sw?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  const reopen = (): void => {
    tpm.close();
    tpm = openTpm(sw.tcti);
  };

  it('reads more than 8 PCRs across two banks and extends one', () => {
    const all = Array.from({ length: 24 }, (_, i) => i);
    const before = tpm.pcrRead({ sha256: all, sha1: [0, 15, 23] });
    expect(Object.keys(before.pcrs.sha256!).map(Number)).toEqual(all);
    expect(before.pcrs.sha256![15]).toEqual(new Uint8Array(32));
    expect(Object.keys(before.pcrs.sha1!).map(Number)).toEqual([0, 15, 23]);
    expect(before.pcrs.sha1![0]!.length).toBe(20);

    const d256 = createHash('sha256').update('joinguard').digest();
    const d1 = createHash('sha1').update('joinguard').digest();
    tpm.pcrExtend(15, { sha256: d256, sha1: d1 });
    const after = tpm.pcrRead({ sha256: [15], sha1: [15] });
    // PCR_Extend: new = H(old ‖ digest), computed here independently.
    expect(Buffer.from(after.pcrs.sha256![15]!)).toEqual(createHash('sha256').update(new Uint8Array(32)).update(d256).digest());
    expect(Buffer.from(after.pcrs.sha1![15]!)).toEqual(createHash('sha1').update(new Uint8Array(20)).update(d1).digest());
    // PCR 15 is not one of the PC Client PCRs exempt from pcrUpdateCounter (16, 21-23).
    expect(after.updateCounter).toBeGreaterThan(before.updateCounter);

    // tpm2_pcrread sees the same value.
    reopen();
    tpm.close();
    const out = tools(sw, ['tpm2_pcrread', 'sha256:15']);
    tpm = openTpm(sw.tcti);
    expect(out.toLowerCase()).toContain(Buffer.from(after.pcrs.sha256![15]!).toString('hex'));
  });

  it('refuses malformed PCR selections and extensions', () => {
    expect(caught(() => tpm.pcrRead({ sha256: [24] })).code).toBe('TPM2_BAD_ARGUMENT');
    expect(caught(() => tpm.pcrRead({ sha256: [-1] })).code).toBe('TPM2_BAD_ARGUMENT');
    expect(caught(() => tpm.pcrRead({ sha256: [1.5] })).code).toBe('TPM2_BAD_ARGUMENT');
    expect(caught(() => tpm.pcrRead({ md5: [0] } as never)).code).toBe('TPM2_BAD_ARGUMENT');
    expect(caught(() => tpm.pcrRead({})).code).toBe('TPM2_BAD_ARGUMENT');
    expect(caught(() => tpm.pcrRead({ sha256: [] })).code).toBe('TPM2_BAD_ARGUMENT');
    expect(caught(() => tpm.pcrExtend(16, { sha256: new Uint8Array(20) })).code).toBe('TPM2_BAD_ARGUMENT');
    expect(caught(() => tpm.pcrExtend(99, { sha256: new Uint8Array(32) })).code).toBe('TPM2_BAD_ARGUMENT');
    // sha384 is not allocated on this vTPM: the TPM returns nothing for it.
    const e = caught(() => tpm.pcrRead({ sha384: [0] }));
    expect(e.code).toBe('TPM2_PCR_BANK_UNAVAILABLE');
    expect(e.details.missing).toEqual({ sha384: [0] });
  });

  it('creates a restricted ECC P-256 ECDSA-SHA256 AK in the endorsement hierarchy, and an RSA-2048 one', () => {
    const ak = tpm.createAk();
    const pub = decodePublic(ak.public);
    expect(pub.type).toBe('ecc');
    expect(pub.objectAttributes).toMatchObject({ restricted: true, sign: true, fixedTPM: true, decrypt: false });
    expect(Buffer.from(ak.name)).toEqual(Buffer.from(tpmName(pub)));
    expect(tpm.transientHandles).toEqual([ak.handle]);

    // A primary key is derived from the EPS and the template: the same template gives the same key.
    const again = tpm.createAk();
    expect(Buffer.from(again.public)).toEqual(Buffer.from(ak.public));
    const other = tpm.createAk({ unique: new Uint8Array([1, 2, 3]) });
    expect(Buffer.from(other.public)).not.toEqual(Buffer.from(ak.public));
    // swtpm, like many TPMs, holds 3 transient objects (TPM2_PT_HR_TRANSIENT_MIN) without a resource manager.
    tpm.flush(other);
    tpm.flush(again);

    const rsa = tpm.createAk({ alg: 'rsa' });
    const rpub = decodePublic(rsa.public);
    expect(rpub.type).toBe('rsa');
    expect(rpub.type === 'rsa' ? rpub.modulus.length : 0).toBe(256);
    expect(rpub.objectAttributes).toMatchObject({ restricted: true, sign: true });

    for (const k of [ak, rsa]) tpm.flush(k);
    expect(tpm.transientHandles).toEqual([]);
    expect(caught(() => tpm.flush(ak)).code).toBe('TPM2_HANDLE_NOT_OPEN');
    expect(caught(() => tpm.quote(ak, { extraData: new Uint8Array(32), pcrs: { sha256: [0] } })).code).toBe('TPM2_HANDLE_NOT_OPEN');
    expect(caught(() => tpm.createAk({ alg: 'dsa' as never })).code).toBe('TPM2_BAD_ARGUMENT');
  });

  it('leaves no transient object in the TPM after close()', () => {
    tpm.createAk();
    tpm.createAk({ alg: 'rsa' });
    expect(tpm.transientHandles.length).toBe(2);
    tpm.close();
    const handles = tools(sw, ['tpm2_getcap', 'handles-transient']);
    tpm = openTpm(sw.tcti);
    expect(handles.trim()).toBe('');
  });

  it('persists a key and opens it again by its persistent handle (as Azure’s AK at 0x81000003)', () => {
    const ak = tpm.createAk({ unique: new Uint8Array([7]) });
    const persisted = tpm.persistKey(ak, 0x81000003);
    tpm.flush(ak);
    reopen();
    const loaded = tpm.loadPersistentKey(0x81000003);
    expect(Buffer.from(loaded.public)).toEqual(Buffer.from(persisted.public));
    expect(loaded.persistentHandle).toBe(0x81000003);
    tpm.evictKey(loaded);
    expect(caught(() => tpm.loadPersistentKey(0x81000003)).code).toBe('TPM2_HANDLE_ABSENT');
    expect(caught(() => tpm.loadPersistentKey(0x01000000)).code).toBe('TPM2_HANDLE_OUT_OF_RANGE');
  });

  it('reads the EK certificate from NV, and it chains to the swtpm local CA', () => {
    const pub = tpm.nvReadPublic(EK_CERT_RSA_NV_INDEX);
    expect(pub.nvIndex).toBe(EK_CERT_RSA_NV_INDEX);
    const der = tpm.nvRead(EK_CERT_RSA_NV_INDEX);
    expect(der.length).toBe(pub.dataSize);
    const cert = new X509Certificate(der);
    const issuer = new X509Certificate(sw.caCertificatesPem.issuer);
    expect(cert.verify(issuer.publicKey)).toBe(true);
    expect(cert.checkIssued(issuer)).toBe(true);
    // A window of it equals the same bytes read whole.
    expect(Buffer.from(tpm.nvRead(EK_CERT_RSA_NV_INDEX, { offset: 100, size: 50 }))).toEqual(Buffer.from(der.subarray(100, 150)));
  });

  it('a certificate read from NV verifies with packages/tpm to the configured root, only along a real path', async () => {
    // The verifier's path for a cloud AK certificate kept in NV, on the certificate this vTPM really holds.
    const der = tpm.nvRead(EK_CERT_RSA_NV_INDEX);
    const { root, issuer } = sw.caCertificatesPem;
    const claims = await verifyAkCertificate({ certificate: der, roots: [root], intermediates: [issuer], now: new Date() });
    expect(claims.chain.length).toBe(3);
    expect(claims.rootSha256).toBe(createHash('sha256').update(new X509Certificate(root).raw).digest('hex'));
    // Without the issuing CA the path cannot reach the root; with the issuer as the only root it ends there.
    await expect(verifyAkCertificate({ certificate: der, roots: [root], now: new Date() })).rejects.toMatchObject({ code: 'TPM_AK_CERT_UNTRUSTED' });
    expect((await verifyAkCertificate({ certificate: der, roots: [issuer], now: new Date() })).chain.length).toBe(2);
    await expect(verifyAkCertificate({ certificate: der, roots: [root], intermediates: [issuer], now: new Date('2000-01-01T00:00:00Z') })).rejects.toMatchObject({ code: 'TPM_AK_CERT_NOT_YET_VALID' });
  });

  it('defines, writes and reads back an index larger than TPM2_PT_NV_BUFFER_MAX, in chunks', () => {
    const index = 0x01500000;
    const max = tpm.getProperty(0x12c)!; // TPM2_PT_NV_BUFFER_MAX
    const size = 2048;
    expect(size).toBeGreaterThan(max);
    const data = new Uint8Array(randomBytes(size));
    tpm.nvDefine(index, size);
    tpm.nvWrite(index, data);
    expect(Buffer.from(tpm.nvRead(index))).toEqual(Buffer.from(data));
    const pub = tpm.nvReadPublic(index);
    expect(pub.dataSize).toBe(size);
    expect(pub.attributes & TPMA_NV.WRITTEN).toBe(TPMA_NV.WRITTEN);

    // tpm2_nvread reads the same bytes.
    tpm.close();
    const file = join(work, 'nv.bin');
    tools(sw, ['tpm2_nvread', '-C', 'o', '-o', file, `0x${index.toString(16)}`]);
    tpm = openTpm(sw.tcti);
    expect(readFileSync(file)).toEqual(Buffer.from(data));

    tpm.nvUndefine(index);
    expect(caught(() => tpm.nvRead(index)).code).toBe('TPM2_NV_INDEX_ABSENT');
  });

  it('reads and writes sizes and offsets that are not multiples of the chunk, across chunk boundaries', () => {
    const index = 0x01500003;
    const chunk = tpm.getProperty(0x12c)!; // TPM2_PT_NV_BUFFER_MAX
    const size = chunk + 507; // two chunks, the second partial
    const data = new Uint8Array(randomBytes(size));
    tpm.nvDefine(index, size);
    try {
      tpm.nvWrite(index, data);
      expect(Buffer.from(tpm.nvRead(index))).toEqual(Buffer.from(data));
      // A write at an odd offset that spans the chunk boundary, then windows that span it too.
      const patch = new Uint8Array(randomBytes(chunk + 3));
      tpm.nvWrite(index, patch, { offset: 5 });
      data.set(patch, 5);
      expect(Buffer.from(tpm.nvRead(index))).toEqual(Buffer.from(data));
      for (const [offset, n] of [[chunk - 1, 2], [7, chunk + 1], [size - 1, 1], [0, 1], [3, size - 3]] as const) {
        expect(Buffer.from(tpm.nvRead(index, { offset, size: n })), `offset ${offset} size ${n}`).toEqual(Buffer.from(data.subarray(offset, offset + n)));
      }
      expect(caught(() => tpm.nvRead(index, { offset: size - 1, size: 2 })).code).toBe('TPM2_NV_INDEX_OUT_OF_RANGE');
    } finally {
      tpm.nvUndefine(index);
    }
  });

  it('writes the Azure user-data index 0x01400002 and refuses to redefine it', () => {
    const d = new Uint8Array(createHash('sha512').update('nonce ‖ runtimeData').digest());
    tpm.nvDefine(AZURE_USER_DATA_NV_INDEX, 64);
    expect(caught(() => tpm.nvRead(AZURE_USER_DATA_NV_INDEX)).code).toBe('TPM2_NV_INDEX_UNWRITTEN');
    tpm.nvWrite(AZURE_USER_DATA_NV_INDEX, d);
    expect(Buffer.from(tpm.nvRead(AZURE_USER_DATA_NV_INDEX))).toEqual(Buffer.from(d));
    expect(caught(() => tpm.nvDefine(AZURE_USER_DATA_NV_INDEX, 64)).code).toBe('TPM2_NV_INDEX_EXISTS');
    expect(caught(() => tpm.nvWrite(AZURE_USER_DATA_NV_INDEX, new Uint8Array(65))).code).toBe('TPM2_NV_INDEX_OUT_OF_RANGE');
    tpm.nvUndefine(AZURE_USER_DATA_NV_INDEX);
  });

  it('gives typed errors for absent, out-of-range and locked NV indices', () => {
    expect(caught(() => tpm.nvRead(0x01400001)).code).toBe('TPM2_NV_INDEX_ABSENT'); // no HCL report on swtpm
    for (const bad of [0x02000000, 0x00ffffff, -1, 1.5, Number.NaN]) {
      expect(caught(() => tpm.nvRead(bad)).code).toBe('TPM2_NV_INDEX_OUT_OF_RANGE');
    }
    expect(caught(() => tpm.nvRead(EK_CERT_RSA_NV_INDEX, { offset: 1000, size: 100 })).code).toBe('TPM2_NV_INDEX_OUT_OF_RANGE');
    expect(caught(() => tpm.nvRead(EK_CERT_RSA_NV_INDEX, { offset: -1 })).code).toBe('TPM2_NV_INDEX_OUT_OF_RANGE');
    expect(caught(() => tpm.nvDefine(0x01500001, 100_000)).code).toBe('TPM2_NV_INDEX_OUT_OF_RANGE');
    // swtpm_setup --lock-nvram write-locked the EK certificate.
    expect(caught(() => tpm.nvWrite(EK_CERT_RSA_NV_INDEX, new Uint8Array(4))).code).toMatch(/^TPM2_(NV_INDEX_LOCKED|RC)$/);
  });

  it('decodes TPM return codes with Tss2_RC_Decode, as tpm2_rc_decode does', () => {
    // The owner cannot delete a platform-created index: the TPM says why.
    const e = caught(() => tpm.nvUndefine(EK_CERT_RSA_NV_INDEX));
    expect(e.code).toBe('TPM2_RC');
    expect(e.kind).toBe('internal');
    const rc = e.details.rc as number;
    expect(rc).toBeGreaterThan(0);
    const expected = execFileSync('tpm2_rc_decode', [`0x${rc.toString(16)}`], { encoding: 'utf8' }).trim();
    expect(expected).toContain((e.details.decoded as string).replace(/^tpm:/, '').split(':').pop()!.trim().slice(0, 20));
    expect(e.message).toContain(e.details.decoded as string);
  });

  it('refuses bad quote arguments before reaching the TPM', () => {
    const ak = tpm.createAk();
    expect(caught(() => tpm.quote(ak, { extraData: new Uint8Array(65), pcrs: { sha256: [0] } })).code).toBe('TPM2_BAD_ARGUMENT');
    expect(caught(() => tpm.quote(ak, { extraData: 'nonce' as never, pcrs: { sha256: [0] } })).code).toBe('TPM2_BAD_ARGUMENT');
    expect(caught(() => tpm.quote(ak, { extraData: new Uint8Array(32), pcrs: { sha256: [30] } })).code).toBe('TPM2_BAD_ARGUMENT');
    tpm.flush(ak);
  });

  it('answers hostile arguments with typed errors, never a crash or a foreign exception', () => {
    const anyValue = fc.oneof(
      fc.integer(),
      fc.double(),
      fc.string(),
      fc.constant(null),
      fc.constant(undefined),
      fc.uint8Array({ maxLength: 80 }),
      fc.array(fc.integer({ min: -2, max: 30 }), { maxLength: 30 }),
      fc.dictionary(fc.constantFrom('sha1', 'sha256', 'sha384', 'md5', '__proto__', 'x'), fc.array(fc.integer({ min: -2, max: 30 }), { maxLength: 5 })),
    );
    const ak = tpm.createAk();
    const calls: ((v: unknown, w: unknown) => unknown)[] = [
      (v) => tpm.pcrRead(v as never),
      (v, w) => tpm.pcrExtend(v as never, w as never),
      (v, w) => tpm.quote(ak, { extraData: v as never, pcrs: w as never }),
      (v) => tpm.quote(ak, v as never),
      (v) => tpm.nvRead(v as never),
      (v, w) => tpm.nvRead(EK_CERT_RSA_NV_INDEX, { offset: v as never, size: w as never }),
      (v) => tpm.nvReadPublic(v as never),
      (v, w) => tpm.nvWrite(0x01500002, v as never, { offset: w as never }),
      (v) => tpm.createAk(v as never),
      (v) => tpm.loadPersistentKey(v as never),
      (v) => tpm.flush(v as never),
    ];
    try {
      fc.assert(
        fc.property(fc.integer({ min: 0, max: calls.length - 1 }), anyValue, anyValue, (i, v, w) => {
          try {
            const r = calls[i]!(v, w);
            if (i === 8 && r && typeof r === 'object' && 'handle' in r) tpm.flush(r as never);
          } catch (e) {
            if (!(e instanceof JoinguardError)) throw e;
            expect(e.code).toMatch(/^TPM2_/);
          }
        }),
        { numRuns: 300 },
      );
    } finally {
      tpm.flush(ak);
    }
    expect(tpm.transientHandles).toEqual([]);
  });

  it('refuses use after close and closes twice quietly', () => {
    const t = tpm;
    t.close();
    t.close();
    expect(t.closed).toBe(true);
    expect(caught(() => t.pcrRead({ sha256: [0] })).code).toBe('TPM2_CLOSED');
    expect(caught(() => t.createAk()).code).toBe('TPM2_CLOSED');
    tpm = openTpm(sw.tcti);
  });
});

describe('tpm2 TCTI and library errors', () => {
  it('refuses malformed and unknown TCTI strings', () => {
    for (const bad of ['', 'bad tcti with spaces', 'x'.repeat(2000), 'dev\0ice:/dev/tpm0', 42 as never]) {
      const e = caught(() => openTpm(bad));
      expect(e.code).toBe('TPM2_TCTI_INVALID');
      expect(e.kind).toBe('input');
    }
    const e = caught(() => openTpm('nosuchtcti:foo=bar'));
    expect(e.code).toBe('TPM2_TCTI_INVALID');
    expect(e.details.rc).toBeGreaterThan(0);
  });

  it('reports an unreachable TPM (swtpm not running, missing device) as TPM2_TCTI_UNAVAILABLE', async () => {
    // A port nothing listens on: take one from the OS and release it.
    const { createServer } = await import('node:net');
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const e = caught(() => openTpm(`swtpm:host=127.0.0.1,port=${port}`));
    expect(e.code).toBe('TPM2_TCTI_UNAVAILABLE');
    expect(e.kind).toBe('internal');
    expect(typeof e.details.decoded).toBe('string');
    expect(caught(() => openTpm('device:/nonexistent/tpmrm0')).code).toBe('TPM2_TCTI_UNAVAILABLE');
  });

  it('names the Debian package when a tss2 library cannot be loaded', () => {
    const e = caught(() => loadLibrary(loadKoffi(), { names: ['libtss2-nonexistent.so.0'], debian: 'libtss2-nonexistent0' }));
    expect(e.code).toBe('TPM2_LIBRARY_MISSING');
    expect(e.kind).toBe('internal');
    expect(e.details.debianPackage).toBe('libtss2-nonexistent0');
    expect(e.message).toContain('apt-get install');
  });
});
