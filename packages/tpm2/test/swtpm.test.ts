import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EK_CERT_ECC_NV_INDEX, EK_CERT_RSA_NV_INDEX, openTpm } from '@joinguard/tpm2';
import { manufactureSwtpm, startSwtpm, type Swtpm } from '@joinguard/tpm2/testing';

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect({ host: '127.0.0.1', port });
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('swtpm test harness', () => {
  const started: Swtpm[] = [];
  const template = mkdtempSync(join(tmpdir(), 'joinguard-swtpm-template-'));

  afterAll(async () => {
    await Promise.all(started.map((s) => s.stop()));
    rmSync(template, { recursive: true, force: true });
  });

  it('runs two manufactured vTPMs side by side from one template, and stop() leaves nothing behind', async () => {
    manufactureSwtpm(template);
    const [a, b] = await Promise.all([startSwtpm({ templateDir: template }), startSwtpm({ templateDir: template })]);
    started.push(a, b);
    expect(a.port).not.toBe(b.port);
    expect(a.tcti).toBe(`swtpm:host=127.0.0.1,port=${a.port}`);
    expect(a.ctrlPort).toBe(a.port + 1);

    const certs = [a, b].map((s) => {
      const tpm = openTpm(s.tcti);
      try {
        expect(tpm.pcrRead({ sha256: [0] }).pcrs.sha256![0]).toEqual(new Uint8Array(32));
        return tpm.nvRead(EK_CERT_RSA_NV_INDEX);
      } finally {
        tpm.close();
      }
    });
    // Copies of one template are the same TPM (same EK), each in its own state directory.
    expect(Buffer.from(certs[0]!)).toEqual(Buffer.from(certs[1]!));
    expect(a.stateDir).not.toBe(b.stateDir);

    await a.stop();
    await a.stop(); // idempotent
    expect(await listening(a.port)).toBe(false);
    expect(await listening(a.ctrlPort)).toBe(false);
    expect(alive(a.pid!)).toBe(false);
    expect(existsSync(a.dir)).toBe(false);
    expect(await listening(b.port)).toBe(true);
  });

  it('manufactures EK certificates (RSA and ECC) issued by its own local CA', async () => {
    const s = await startSwtpm({ pcrBanks: ['sha256'] });
    started.push(s);
    const root = new X509Certificate(s.caCertificatesPem.root);
    const issuer = new X509Certificate(s.caCertificatesPem.issuer);
    expect(issuer.verify(root.publicKey)).toBe(true);
    const tpm = openTpm(s.tcti);
    try {
      for (const index of [EK_CERT_RSA_NV_INDEX]) {
        const cert = new X509Certificate(tpm.nvRead(index));
        expect(cert.verify(issuer.publicKey)).toBe(true);
      }
      // swtpm 0.7 makes its ECC EK on P-384, whose certificate lives at 0x01c00016, not the P-256 index.
      expect(() => tpm.nvReadPublic(EK_CERT_ECC_NV_INDEX)).toThrow(expect.objectContaining({ code: 'TPM2_NV_INDEX_ABSENT' }));
      const ecc = new X509Certificate(tpm.nvRead(0x01c00016));
      expect(ecc.verify(issuer.publicKey)).toBe(true);
      expect(ecc.publicKey.asymmetricKeyType).toBe('ec');
      // Only the sha256 bank was allocated.
      expect(() => tpm.pcrRead({ sha1: [0] })).toThrow(expect.objectContaining({ code: 'TPM2_PCR_BANK_UNAVAILABLE' }));
    } finally {
      tpm.close();
    }
  });
});
