import { beforeAll, afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { expectedDecodedFields, readVector, vectorPath } from '@joinguard/core/testing';
import { createTestAuthority, createTestCrl, issueTestLeaf, makeTestReport } from '@joinguard/snp/testing';
import { buildCli, cli, errCode } from './support.js';

const V = (rel: string) => vectorPath(rel);
let dir: string;


beforeAll(() => {
  buildCli();
  dir = mkdtempSync(join(tmpdir(), 'snp-cli-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('joinguard snp inspect', () => {
  const expected = expectedDecodedFields();
  for (const key of Object.keys(expected).filter((k) => k.startsWith('snp/'))) {
    it(`${key}: lowerCamelCase fields equal the independent decoder's`, () => {
      const e = expected[key]! as Record<string, unknown>;
      const args = ['snp', 'inspect', V(key), '--json'];
      if (e.version === 2) args.push('--product', 'milan');
      const { code, json } = cli(...args);
      expect(code).toBe(0);
      const j = json!;
      expect(j.version).toBe(e.version);
      for (const [snake, camel] of [
        ['measurement', 'measurement'],
        ['report_data', 'reportData'],
        ['host_data', 'hostData'],
        ['chip_id', 'chipId'],
        ['report_id', 'reportId'],
        ['report_id_ma', 'reportIdMa'],
        ['id_key_digest', 'idKeyDigest'],
        ['author_key_digest', 'authorKeyDigest'],
        ['family_id', 'familyId'],
        ['image_id', 'imageId'],
      ] as const) {
        expect(j[camel], camel).toBe(e[snake]);
      }
      expect(BigInt(j.policy as string)).toBe(BigInt(e.policy as string));
      for (const [snake, camel] of [['current_tcb', 'currentTcb'], ['reported_tcb', 'reportedTcb'], ['committed_tcb', 'committedTcb'], ['launch_tcb', 'launchTcb']] as const) {
        const t = e[snake] as Record<string, unknown>;
        expect(j[camel], camel).toEqual({ bootloader: t.bootloader, tee: t.tee, snp: t.snp, microcode: t.microcode });
      }
      for (const k of ['guestSvn', 'vmpl', 'signatureAlgo', 'currentTcb', 'platformInfo', 'reportedTcb', 'committedTcb', 'launchTcb', 'signature']) expect(j).toHaveProperty(k);
    });
  }

  it('a v2 report without --product still shows its fields (product null)', () => {
    const { code, json } = cli('snp', 'inspect', V('snp/virtee_milan_v2/report.bin'), '--json');
    expect(code).toBe(0);
    expect(json!.product).toBeNull();
  });

  it('random bytes are rejected with a code (exit 1): report length → SNP_UNSUPPORTED_VERSION, short → SNP_REPORT_TRUNCATED', () => {
    const f = join(dir, 'random.bin');
    const b = randomBytes(1184);
    if ([2, 3, 5].includes(b.readUInt32LE(0))) b[3] = 0xff; // a supported VERSION word (p ≈ 7e-10) would be decoded further
    writeFileSync(f, b);
    const { code, json } = cli('snp', 'inspect', f, '--json');
    expect(code).toBe(1);
    expect(errCode(json)).toBe('SNP_UNSUPPORTED_VERSION');
    expect((json!.error as { details: unknown }).details).toMatchObject({ version: b.readUInt32LE(0) });
    const short = join(dir, 'random-short.bin');
    writeFileSync(short, randomBytes(100));
    const t = cli('snp', 'inspect', short, '--json');
    expect(t.code).toBe(1);
    expect(errCode(t.json)).toBe('SNP_REPORT_TRUNCATED');
    expect((t.json!.error as { details: unknown }).details).toMatchObject({ length: 100, expected: 1184 });
  });
});

describe('joinguard snp verify (real vectors, verdicts per MANIFEST.md)', () => {
  it('gosevguest Milan v2 → exit 0, verified, vcek', () => {
    const { code, json } = cli('snp', 'verify', V('snp/gosevguest_milan_v2/report.bin'), '--vcek', V('snp/gosevguest_milan_v2/vcek.der'), '--product', 'milan', '--json');
    expect(code).toBe(0);
    expect(json).toMatchObject({ verified: true, product: 'milan', signingKey: 'vcek' });
    expect((json!.claims as { measurement: string }).measurement).toBe(expectedDecodedFields()['snp/gosevguest_milan_v2/report.bin']!.measurement);
  });

  it('virtee Milan v2 in hex with the KDS chain PEM, and with --ask/--ark → exit 0', () => {
    expect(cli('snp', 'verify', V('snp/virtee_milan_v2/report_milan.hex'), '--vcek', V('snp/virtee_milan_v2/vcek.der'), '--chain', V('snp/virtee_milan_v2/cert_chain_milan.pem'), '--product', 'milan', '--json').code).toBe(0);
    const [ask, ark] = Buffer.from(readVector('snp/amd_roots/ask_ark_milan.pem')).toString().split(/(?=-----BEGIN)/);
    writeFileSync(join(dir, 'ask.pem'), ask!);
    writeFileSync(join(dir, 'ark.pem'), ark!);
    // the VCEK as PEM instead of DER
    const vcekPem = execFileSync('openssl', ['x509', '-inform', 'der', '-in', V('snp/virtee_milan_v2/vcek.der')]).toString();
    writeFileSync(join(dir, 'vcek.pem'), vcekPem);
    expect(cli('snp', 'verify', V('snp/virtee_milan_v2/report.bin'), '--vcek', join(dir, 'vcek.pem'), '--ask', join(dir, 'ask.pem'), '--ark', join(dir, 'ark.pem'), '--product', 'milan', '--json').code).toBe(0);
  });

  it('trustee VLEK v3: exit 0 inside its validity, exit 1 SNP_CERT_EXPIRED today', () => {
    const args = ['snp', 'verify', V('snp/trustee_milan_vlek_v3/report.bin'), '--vcek', V('snp/trustee_milan_vlek_v3/vlek.der'), '--json'];
    const inside = cli(...args, '--at', '2025-06-01T00:00:00Z');
    expect(inside.code).toBe(0);
    expect(inside.json).toMatchObject({ verified: true, product: 'milan', signingKey: 'vlek' });
    const today = cli(...args, '--at', '2026-11-23T00:00:00Z');
    expect(today.code).toBe(1);
    expect(errCode(today.json)).toBe('SNP_CERT_EXPIRED');
  });

  it('trustee Genoa v3 → exit 0, product from CPUID', () => {
    const { code, json } = cli('snp', 'verify', V('snp/trustee_e2e_genoa_v3/report.reconstructed.bin'), '--vcek', V('snp/trustee_e2e_genoa_v3/vcek.der'), '--json');
    expect(code).toBe(0);
    expect(json!.product).toBe('genoa');
  });

  it('Azure HCL report with VCEK+ASK+ARK in one PEM → exit 0', () => {
    const { code, json } = cli('snp', 'verify', V('azure/az_snp_vtpm_milan_v2/hcl-report.bin'), '--vcek', V('azure/az_snp_vtpm_milan_v2/vcek.pem'), '--product', 'milan', '--json');
    expect(code).toBe(0);
    expect(json!.verified).toBe(true);
  });

  it('derived and mismatched inputs → exit 1 with a specific code', () => {
    const vcek = V('snp/gosevguest_milan_v2/vcek.der');
    const run = (report: string, ...extra: string[]) => cli('snp', 'verify', V(report), '--vcek', vcek, '--product', 'milan', '--json', ...extra);
    expect(errCode(run('snp/derived/gosevguest_milan_v2_reportdata_bitflip.bin').json)).toBe('SNP_BAD_SIGNATURE');
    expect(errCode(run('snp/derived/gosevguest_milan_v2_sig_r_bitflip.bin').json)).toBe('SNP_BAD_SIGNATURE');
    const trunc = run('snp/derived/gosevguest_milan_v2_truncated_0x2A0.bin');
    expect(trunc.code).toBe(1);
    expect(errCode(trunc.json)).toBe('SNP_REPORT_TRUNCATED');
    const wrongChain = cli('snp', 'verify', V('snp/gosevguest_milan_v2/report.bin'), '--vcek', vcek, '--chain', V('snp/amd_roots/ask_ark_genoa.pem'), '--product', 'genoa', '--json');
    expect(wrongChain.code).toBe(1);
    expect(errCode(wrongChain.json)).toBe('SNP_CHAIN_ISSUER_MISMATCH');
    const otherChip = cli('snp', 'verify', V('snp/gosevguest_milan_v2/report.bin'), '--vcek', V('snp/virtee_milan_v2/vcek.der'), '--product', 'milan', '--json');
    expect(errCode(otherChip.json)).toBe('SNP_CHIP_ID_MISMATCH');
  });

  it('unusable input → exit 2', () => {
    const report = V('snp/gosevguest_milan_v2/report.bin');
    const vcek = V('snp/gosevguest_milan_v2/vcek.der');
    expect(cli('snp', 'verify', report, '--vcek', vcek).code).toBe(2); // v2 without --product
    expect(cli('snp', 'verify', report, '--vcek', vcek, '--product', 'epyc').code).toBe(2);
    expect(cli('snp', 'verify', report, '--vcek', join(dir, 'missing.der'), '--product', 'milan').code).toBe(2);
    expect(cli('snp', 'verify', report, '--vcek', vcek, '--product', 'milan', '--chain', vcek, '--ask', vcek).code).toBe(2);
    expect(cli('snp', 'verify', report, '--product', 'milan').code).toBe(2); // --vcek is required
    expect(cli('snp', 'verify', report, '--vcek', vcek, '--product', 'milan', '--at', 'yesterday').code).toBe(2);
  });

  it('without --json prints a short human summary', () => {
    const r = cli('snp', 'verify', V('snp/gosevguest_milan_v2/report.bin'), '--vcek', V('snp/gosevguest_milan_v2/vcek.der'), '--product', 'milan');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^verified: SNP report v2 \(milan\), signed by VCEK/);
  });
});

describe('joinguard snp verify with the simulated signer', () => {
  it('is trusted only with --trusted-ark naming the test ARK', async () => {
    const auth = await createTestAuthority({ product: 'genoa', withAsvk: false });
    const chipId = new Uint8Array(randomBytes(64));
    const tcb = { bootloader: 9, tee: 0, snp: 21, microcode: 72 };
    const vcek = await issueTestLeaf(auth, { chipId, tcb });
    const report = makeTestReport({ product: 'genoa', chipId, reportedTcb: tcb, reportData: new Uint8Array(64).fill(0xab) }, vcek.privateKey);
    writeFileSync(join(dir, 'sim.bin'), report);
    writeFileSync(join(dir, 'sim-vcek.der'), vcek.der);
    writeFileSync(join(dir, 'sim-chain.pem'), auth.ask.pem + '\n' + auth.ark.pem + '\n');
    writeFileSync(join(dir, 'sim-ark.pem'), auth.ark.pem);
    const base = ['snp', 'verify', join(dir, 'sim.bin'), '--vcek', join(dir, 'sim-vcek.der'), '--chain', join(dir, 'sim-chain.pem'), '--json'];
    const untrusted = cli(...base);
    expect(untrusted.code).toBe(1);
    expect(errCode(untrusted.json)).toBe('SNP_ARK_NOT_TRUSTED');
    const trusted = cli(...base, '--trusted-ark', join(dir, 'sim-ark.pem'));
    expect(trusted.code).toBe(0);
    expect((trusted.json!.claims as { reportData: string }).reportData).toBe('ab'.repeat(64));
  });

  it('--crl: a current ARK CRL without the ASK passes; one revoking the ASK (DER or PEM) → exit 1 SNP_CERT_REVOKED; a stale one → SNP_CRL_STALE', async () => {
    const auth = await createTestAuthority({ product: 'genoa', withAsvk: false });
    const chipId = new Uint8Array(randomBytes(64));
    const tcb = { bootloader: 9, tee: 0, snp: 21, microcode: 72 };
    const vcek = await issueTestLeaf(auth, { chipId, tcb });
    writeFileSync(join(dir, 'crl-sim.bin'), makeTestReport({ product: 'genoa', chipId, reportedTcb: tcb }, vcek.privateKey));
    writeFileSync(join(dir, 'crl-sim-vcek.der'), vcek.der);
    writeFileSync(join(dir, 'crl-sim-chain.pem'), auth.ask.pem + '\n' + auth.ark.pem + '\n');
    writeFileSync(join(dir, 'crl-sim-ark.pem'), auth.ark.pem);
    const thisUpdate = new Date('2026-11-01T00:00:00Z');
    const nextUpdate = new Date('2026-12-01T00:00:00Z');
    const clean = await createTestCrl(auth, ['1234'], thisUpdate, nextUpdate);
    const revoked = await createTestCrl(auth, [auth.ask.cert.serialNumber], thisUpdate, nextUpdate);
    writeFileSync(join(dir, 'crl-clean.der'), clean);
    writeFileSync(join(dir, 'crl-revoked.der'), revoked);
    const pem = (der: Uint8Array) => `-----BEGIN X509 CRL-----\n${Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n')}\n-----END X509 CRL-----\n`;
    writeFileSync(join(dir, 'crl-revoked.pem'), pem(revoked));
    const base = ['snp', 'verify', join(dir, 'crl-sim.bin'), '--vcek', join(dir, 'crl-sim-vcek.der'), '--chain', join(dir, 'crl-sim-chain.pem'), '--trusted-ark', join(dir, 'crl-sim-ark.pem'), '--json'];
    const at = ['--at', '2026-11-23T00:00:00Z'];

    const ok = cli(...base, ...at, '--crl', join(dir, 'crl-clean.der'));
    expect(ok.code).toBe(0);
    expect(ok.json).toMatchObject({ verified: true, product: 'genoa', signingKey: 'vcek' });

    for (const f of ['crl-revoked.der', 'crl-revoked.pem']) {
      const r = cli(...base, ...at, '--crl', join(dir, f));
      expect(r.code, f).toBe(1);
      expect(r.json!.verified, f).toBe(false);
      expect(errCode(r.json), f).toBe('SNP_CERT_REVOKED');
      expect((r.json!.error as { details: unknown }).details, f).toMatchObject({ certificate: 'ASK' });
    }
    // the same report and chain without --crl still verify: the rejection above comes from the CRL
    expect(cli(...base, ...at).code).toBe(0);

    const stale = cli(...base, '--at', '2026-12-15T00:00:00Z', '--crl', join(dir, 'crl-clean.der'));
    expect(stale.code).toBe(1);
    expect(errCode(stale.json)).toBe('SNP_CRL_STALE');
  });
});
