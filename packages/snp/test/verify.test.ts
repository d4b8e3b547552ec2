import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { readVector, readVectorText, vectorPath, codeOf } from '@joinguard/core/testing';
import {
  amdTrustStore,
  ChainCache,
  fingerprint256,
  parseAmdCert,
  REPORT_SIZE,
  SnpErrorCode,
  verifyChain,
  verifyReport,
  type SnpCollateral,
  type SnpVerifyOptions,
} from '../src/index.js';
import { AMD_ROOT_PEMS } from '../src/roots.generated.js';
import { checkPssSha384, verifyPss } from '../src/cert.js';
import { readTlv } from '../src/der.js';
import { manifestArkFingerprints, manifestRow, matchesElided, stated } from './manifest.js';

const TODAY = new Date('2026-11-23T00:00:00Z');

function verify(report: Uint8Array, c: SnpCollateral, o: Partial<SnpVerifyOptions> = {}) {
  return verifyReport(report, c, { now: TODAY, ...o });
}

describe('pinned AMD roots', () => {
  it('the package carries the same PEMs as vectors/snp/amd_roots', () => {
    for (const [file, pem] of Object.entries(AMD_ROOT_PEMS)) {
      // Line endings differ (one AMD file is CRLF); the certificates must not.
      expect(pem.replace(/\r/g, '').trim(), file).toBe(readVectorText(`snp/amd_roots/${file}`).replace(/\r/g, '').trim());
    }
  });

  it('each built-in ARK is self-signed and each built-in ASK/ASVK is signed by its ARK (RSASSA-PSS SHA-384)', () => {
    const store = amdTrustStore();
    const checked: string[] = [];
    for (const product of ['milan', 'genoa', 'turin'] as const) {
      const a = store.get(product);
      for (const [role, cert] of [['ARK', a.ark], ['ASK', a.ask], ['ASVK', a.asvk]] as const) {
        if (!cert) continue;
        checkPssSha384(readTlv(cert.signatureAlgorithm, 0, 'X', role), `${product} ${role}`);
        expect(Buffer.compare(Buffer.from(cert.issuerDer), Buffer.from(a.ark.subjectDer)), `${product} ${role} issuer`).toBe(0);
        expect(verifyPss(a.ark.publicKey, cert.tbs, cert.signature), `${product} ${role}`).toBe(true);
        checked.push(`${product}:${cert.commonName}`);
      }
    }
    // MANIFEST: ask_ark_{milan,genoa,turin}.pem and asvk_ark_{milan,genoa}_vlek.pem.
    expect(checked.sort()).toEqual(['genoa:ARK-Genoa', 'genoa:SEV-Genoa', 'genoa:SEV-VLEK-Genoa', 'milan:ARK-Milan', 'milan:SEV-Milan', 'milan:SEV-VLEK-Milan', 'turin:ARK-Turin', 'turin:SEV-Turin']);
    // The check can fail: the Milan ASK does not verify under the Genoa ARK.
    expect(verifyPss(store.get('genoa').ark.publicKey, store.get('milan').ask!.tbs, store.get('milan').ask!.signature)).toBe(false);
  });

  it('ARK fingerprints match those listed in MANIFEST.md', () => {
    const listed = manifestArkFingerprints();
    expect(Object.keys(listed).sort()).toEqual(['Genoa', 'Milan', 'Turin']);
    const store = amdTrustStore();
    for (const [name, fp] of Object.entries(listed)) {
      const { ark } = store.get(name.toLowerCase() as 'milan');
      const colon = fingerprint256(ark.der).toUpperCase().match(/../g)!.join(':');
      const [head, tail] = fp.split('…');
      expect(colon.startsWith(head!), name).toBe(true);
      expect(colon.endsWith(tail!), name).toBe(true);
      expect(ark.commonName).toBe(`ARK-${name}`);
    }
  });
});

describe('real vectors: verdicts as MANIFEST.md states', () => {
  it('gosevguest_milan_v2: signature and chain OK; claims as stated', () => {
    const row = manifestRow('snp/', 'gosevguest_milan_v2');
    expect(row.expected).toMatch(/sig OK with vcek; vcek→ASK→ARK-Milan OK/);
    const v = verify(readVector('snp/gosevguest_milan_v2/report.bin'), { vcek: readVector('snp/gosevguest_milan_v2/vcek.der') }, { product: 'milan' });
    expect(v.signingKey).toBe('vcek');
    expect(v.chain.ark.commonName).toBe('ARK-Milan');
    expect(BigInt(v.claims.policy.raw)).toBe(BigInt(stated(row.expected, 'policy')!));
    expect(v.claims.vmpl).toBe(Number(stated(row.expected, 'vmpl')));
    expect(v.claims.measurement).toBe(stated(row.expected, 'measurement'));
    expect(matchesElided(v.claims.chipId, stated(row.expected, 'chip_id')!)).toBe(true);
    expect(v.claims.reportData.startsWith(stated(row.expected, 'report_data')!)).toBe(true);
    const fw = /FW build (\d+\.\d+\.\d+)/.exec(row.expected)![1];
    // MANIFEST writes "build 1.49.3" as major.minor.build.
    expect(v.claims.currentFirmware).toBe(fw);
    // "reported_tcb … equal to the VCEK extensions blSPL/teeSPL/snpSPL/ucodeSPL 2/0/5/68, hwID = chip_id"
    const spl = /blSPL\/teeSPL\/snpSPL\/ucodeSPL (\d+)\/(\d+)\/(\d+)\/(\d+)/.exec(row.expected)!.slice(1).map(Number);
    const ext = v.chain.leaf.extensions;
    expect([ext.blSpl, ext.teeSpl, ext.snpSpl, ext.ucodeSpl]).toEqual(spl);
    expect(v.claims.reportedTcb).toEqual({ bootloader: spl[0], tee: spl[1], snp: spl[2], microcode: spl[3] });
    expect(row.expected).toContain('hwID = chip_id');
    expect(Buffer.from(ext.hwId!).toString('hex')).toBe(v.claims.chipId);
  });

  it('virtee_milan_v2: signature and chain OK, with the chain given as a PEM bundle too', () => {
    const row = manifestRow('snp/', 'virtee_milan_v2');
    expect(row.expected).toMatch(/sig \+ chain OK/);
    const report = readVector('snp/virtee_milan_v2/report.bin');
    const vcek = readVector('snp/virtee_milan_v2/vcek.der');
    const a = verify(report, { vcek }, { product: 'milan' });
    const b = verify(report, { vcek, chain: readVector('snp/virtee_milan_v2/cert_chain_milan.pem') }, { product: 'milan' });
    expect(a.claims).toEqual(b.claims);
    expect(matchesElided(a.claims.measurement, stated(row.expected, 'measurement')!)).toBe(true);
    expect(BigInt(a.claims.policy.raw)).toBe(BigInt(stated(row.expected, 'policy')!));
  });

  it('the hex form of the virtee report decodes to the same verdict', () => {
    const hex = readVectorText('snp/virtee_milan_v2/report_milan.hex').replace(/\s+/g, '');
    const bytes = new Uint8Array(Buffer.from(hex, 'hex'));
    expect(bytes.length).toBe(REPORT_SIZE);
    expect(verify(bytes, { vcek: readVector('snp/virtee_milan_v2/vcek.der') }, { product: 'milan' }).product).toBe('milan');
  });

  it('trustee VLEK v3: verifies only inside 2024-12-10..2025-12-10 and is expired today', () => {
    const row = manifestRow('snp/', 'trustee_milan_vlek_v3');
    const window = /\((\d{4}-\d{2}-\d{2}) to (\d{4}-\d{2}-\d{2})\)/.exec(row.expected)!;
    expect(row.expected).toMatch(/\*\*expired\*\*/);
    const report = readVector('snp/trustee_milan_vlek_v3/report.bin');
    const vlek = readVector('snp/trustee_milan_vlek_v3/vlek.der');
    const inside = new Date((new Date(window[1]!).getTime() + new Date(window[2]!).getTime()) / 2);
    const v = verify(report, { vcek: vlek }, { now: inside });
    expect(v.signingKey).toBe('vlek');
    expect(v.product).toBe('milan');
    expect(v.chain.intermediate.commonName).toBe('SEV-VLEK-Milan');
    expect(v.claims.vmpl).toBe(Number(stated(row.expected, 'vmpl')));
    // The "what" column: "signed by a **VLEK** (AWS; cspID cc-us-east-2.amazonaws.com)"; the extension's
    // IA5String itself reads "CN=cc-us-east-2.amazonaws.com" (openssl shows the same).
    expect(v.chain.leaf.extensions.cspId).toBe(`CN=${/trustee_milan_vlek_v3[^\n]*cspID ([\w.-]+)\)/.exec(readVectorText('MANIFEST.md'))![1]}`);
    expect(v.claims.chipId).toBe('00'.repeat(64)); // "chip_id all zero (masked)"
    expect(v.claims.currentFirmware).toBe(/FW (\d+\.\d+\.\d+)/.exec(row.expected)![1]);
    const tcb = /reported_tcb (0x[0-9a-f]+) \(bl (\d+), tee (\d+), snp (\d+), ucode (\d+)\)/.exec(row.expected)!;
    expect(BigInt(v.report.reportedTcb)).toBe(BigInt(tcb[1]!));
    expect(v.claims.reportedTcb).toEqual({ bootloader: Number(tcb[2]), tee: Number(tcb[3]), snp: Number(tcb[4]), microcode: Number(tcb[5]) });
    expect(codeOf(() => verify(report, { vcek: vlek }))).toBe(SnpErrorCode.CERT_EXPIRED);
    expect(codeOf(() => verify(report, { vcek: vlek }, { now: new Date('2024-12-01T00:00:00Z') }))).toBe(SnpErrorCode.CERT_NOT_YET_VALID);
  });

  it('trustee Genoa v3 (reconstructed): signature and chain to ARK-Genoa OK, product from CPUID', () => {
    const row = manifestRow('snp/', 'trustee_e2e_genoa_v3');
    expect(row.expected).toMatch(/VCEK→SEV-Genoa→ARK-Genoa OK/);
    const v = verify(readVector('snp/trustee_e2e_genoa_v3/report.reconstructed.bin'), { vcek: readVector('snp/trustee_e2e_genoa_v3/vcek.der') });
    expect(v.product).toBe('genoa');
    expect(v.chain.ark.commonName).toBe('ARK-Genoa');
    expect(v.claims.currentFirmware).toBe(/FW (\d+\.\d+\.\d+)/.exec(row.expected)![1]);
    const tcb = /tcb (0x[0-9a-f]+) \(bl (\d+), tee (\d+), snp (\d+), ucode (\d+)\) = VCEK extensions/.exec(row.expected)!;
    expect(BigInt(v.report.reportedTcb)).toBe(BigInt(tcb[1]!));
    const ext = v.chain.leaf.extensions;
    expect([ext.blSpl, ext.teeSpl, ext.snpSpl, ext.ucodeSpl]).toEqual(tcb.slice(2).map(Number));
    for (const k of ['chip_id', 'measurement', 'report_data'] as const) {
      const claim = { chip_id: v.claims.chipId, measurement: v.claims.measurement, report_data: v.claims.reportData }[k];
      expect(matchesElided(claim, stated(row.expected, k)!), k).toBe(true);
    }
  });

  it('trustee Genoa v3: the reconstructed binary decodes to the source evidence.json (sev-crate JSON form)', () => {
    const src = (JSON.parse(readVectorText('snp/trustee_e2e_genoa_v3/evidence.json')) as { attestation_report: Record<string, unknown> }).attestation_report;
    const v = verify(readVector('snp/trustee_e2e_genoa_v3/report.reconstructed.bin'), { vcek: readVector('snp/trustee_e2e_genoa_v3/vcek.der') });
    const r = v.report;
    const hex = (a: unknown) => Buffer.from(a as number[]).toString('hex');
    const tcb = (t: unknown) => {
      const { bootloader, tee, snp, microcode } = t as Record<string, number>;
      return { bootloader, tee, snp, microcode };
    };
    expect([r.version, r.guestSvn, Number(r.policy), r.vmpl, r.signatureAlgo, Number(r.platformInfo), r.keyInfo]).toEqual([src.version, src.guest_svn, src.policy, src.vmpl, src.sig_algo, src.plat_info, src.key_info]);
    expect([r.cpuidFamId, r.cpuidModId, r.cpuidStep]).toEqual([src.cpuid_fam_id, src.cpuid_mod_id, src.cpuid_step]);
    for (const [k, claim] of [['family_id', v.claims.familyId], ['image_id', v.claims.imageId], ['report_data', v.claims.reportData], ['measurement', v.claims.measurement], ['host_data', v.claims.hostData], ['id_key_digest', v.claims.idKeyDigest], ['author_key_digest', v.claims.authorKeyDigest], ['report_id', v.claims.reportId], ['report_id_ma', v.claims.reportIdMa], ['chip_id', v.claims.chipId]] as const) {
      expect(claim, k).toBe(hex(src[k]));
    }
    for (const [k, claim] of [['current_tcb', v.claims.currentTcb], ['reported_tcb', v.claims.reportedTcb], ['committed_tcb', v.claims.committedTcb], ['launch_tcb', v.claims.launchTcb]] as const) {
      expect(claim, k).toEqual(tcb(src[k]));
    }
    const fw = (f: unknown) => { const { major, minor, build } = f as Record<string, number>; return `${major}.${minor}.${build}`; };
    expect([v.claims.currentFirmware, v.claims.committedFirmware]).toEqual([fw(src.current), fw(src.committed)]);
    const sig = src.signature as { r: number[]; s: number[] };
    expect([hex(r.signatureR), hex(r.signatureS)]).toEqual([hex(sig.r), hex(sig.s)]);
  });

  it('Azure HCL report (SNP report at 0x20, VCEK+ASK+ARK in one PEM): signature and chain OK', () => {
    const row = manifestRow('azure/', 'az_snp_vtpm_milan_v2');
    expect(row.expected).toMatch(/SNP sig OK with VCEK; chain to ARK-Milan OK/);
    const hcl = readVector('azure/az_snp_vtpm_milan_v2/hcl-report.bin');
    const v = verify(hcl.subarray(0x20, 0x20 + REPORT_SIZE), { vcek: readVector('azure/az_snp_vtpm_milan_v2/vcek.pem') }, { product: 'milan' });
    expect(v.chain.ark.commonName).toBe('ARK-Milan');
    expect(matchesElided(v.claims.measurement, stated(row.expected, 'measurement')!)).toBe(true);
  });

  it('Turin VCEK (no report): VCEK → SEV-Turin → ARK-Turin; 8-byte hwID and SPLs as stated', () => {
    const row = manifestRow('snp/', 'virtee_turin_vcek_only');
    const vcek = readVector('snp/virtee_turin_vcek_only/vcek_turin.der');
    const chain = verifyChain({ vcek }, 'turin', 'vcek', TODAY);
    expect(chain.ark.commonName).toBe('ARK-Turin');
    const viaPem = verifyChain({ vcek, chain: readVector('snp/virtee_turin_vcek_only/cert_chain_turin.pem') }, 'turin', 'vcek', TODAY);
    expect(viaPem.intermediate.commonName).toBe('SEV-Turin');
    const hw = /hwID is 8 bytes\*\* \(([0-9a-f]+)\)/.exec(row.expected)![1];
    expect(Buffer.from(chain.leaf.extensions.hwId!).toString('hex')).toBe(hw);
    expect(chain.leaf.extensions.productName).toBe('Turin');
    const e = chain.leaf.extensions;
    const m = /structVersion (\d+), productName "Turin", fmcSPL (\d+), bl (\d+), tee (\d+), snp (\d+), ucode (\d+)/.exec(row.expected)!;
    expect([e.structVersion, e.fmcSpl, e.blSpl, e.teeSpl, e.snpSpl, e.ucodeSpl]).toEqual(m.slice(1).map(Number));
    // The Turin VCEK does not chain to Milan's roots.
    expect(codeOf(() => verifyChain({ vcek }, 'milan', 'vcek', TODAY))).toBe(SnpErrorCode.CHAIN_ISSUER_MISMATCH);
  });

  it('the chain verdicts agree with openssl verify (independent check)', () => {
    let haveOpenssl = true;
    try {
      execFileSync('openssl', ['version']);
    } catch {
      haveOpenssl = false;
    }
    if (!haveOpenssl) return;
    const pemOf = (rel: string) => execFileSync('openssl', ['x509', '-inform', 'der', '-in', vectorPath(rel)]).toString();
    const ok = (leafRel: string, rootsFile: string, at: string) => {
      const dir = execFileSync('mktemp', ['-d']).toString().trim();
      const pems = readVectorText(`snp/amd_roots/${rootsFile}`).split(/(?=-----BEGIN)/);
      fs.writeFileSync(`${dir}/leaf.pem`, pemOf(leafRel));
      fs.writeFileSync(`${dir}/ask.pem`, pems[0]!);
      fs.writeFileSync(`${dir}/ark.pem`, pems[1]!);
      try {
        execFileSync('openssl', ['verify', '-attime', String(Math.floor(new Date(at).getTime() / 1000)), '-CAfile', `${dir}/ark.pem`, '-untrusted', `${dir}/ask.pem`, `${dir}/leaf.pem`], { stdio: 'pipe' });
        return true;
      } catch {
        return false;
      } finally {
        fs.rmSync(dir, { recursive: true });
      }
    };
    const ours = (leafRel: string, product: 'milan' | 'genoa', kind: 'vcek' | 'vlek', at: string) => codeOf(() => verifyChain({ vcek: readVector(leafRel) }, product, kind, new Date(at))) === undefined;
    const cases: [string, string, 'milan' | 'genoa', 'vcek' | 'vlek', string][] = [
      ['snp/gosevguest_milan_v2/vcek.der', 'ask_ark_milan.pem', 'milan', 'vcek', '2026-11-23'],
      ['snp/gosevguest_milan_v2/vcek.der', 'ask_ark_genoa.pem', 'genoa', 'vcek', '2026-11-23'],
      ['snp/trustee_e2e_genoa_v3/vcek.der', 'ask_ark_genoa.pem', 'genoa', 'vcek', '2026-11-23'],
      ['snp/trustee_milan_vlek_v3/vlek.der', 'asvk_ark_milan_vlek.pem', 'milan', 'vlek', '2025-06-01'],
      ['snp/trustee_milan_vlek_v3/vlek.der', 'asvk_ark_milan_vlek.pem', 'milan', 'vlek', '2026-11-23'],
    ];
    for (const [leaf, roots, product, kind, at] of cases) expect(ours(leaf, product, kind, at), `${leaf} ${roots} ${at}`).toBe(ok(leaf, roots, at));
  });
});

describe('real vectors: derived and mismatched inputs are rejected with a specific code', () => {
  const vcek = () => readVector('snp/gosevguest_milan_v2/vcek.der');

  it('report_data bit flip → SNP_BAD_SIGNATURE', () => {
    expect(codeOf(() => verify(readVector('snp/derived/gosevguest_milan_v2_reportdata_bitflip.bin'), { vcek: vcek() }, { product: 'milan' }))).toBe(SnpErrorCode.BAD_SIGNATURE);
  });

  it('signature r bit flip → SNP_BAD_SIGNATURE', () => {
    expect(codeOf(() => verify(readVector('snp/derived/gosevguest_milan_v2_sig_r_bitflip.bin'), { vcek: vcek() }, { product: 'milan' }))).toBe(SnpErrorCode.BAD_SIGNATURE);
  });

  it('a single-bit flip in each signed-area field → the check that sees it first, with its code', () => {
    const good = readVector('snp/gosevguest_milan_v2/report.bin');
    const cases: [number, string][] = [
      [0x04, SnpErrorCode.BAD_SIGNATURE], // GUEST_SVN
      [0x08, SnpErrorCode.BAD_SIGNATURE], // POLICY
      [0x10, SnpErrorCode.BAD_SIGNATURE], // FAMILY_ID
      [0x30, SnpErrorCode.BAD_SIGNATURE], // VMPL
      [0x38, SnpErrorCode.BAD_SIGNATURE], // CURRENT_TCB
      [0x40, SnpErrorCode.BAD_SIGNATURE], // PLATFORM_INFO
      [0x48, SnpErrorCode.BAD_SIGNATURE], // KEY_INFO bit 0 (AUTHOR_KEY_EN)
      [0x4c, SnpErrorCode.RESERVED_FIELD_NONZERO],
      [0x90, SnpErrorCode.BAD_SIGNATURE], // MEASUREMENT
      [0xc0, SnpErrorCode.BAD_SIGNATURE], // HOST_DATA
      [0xe0, SnpErrorCode.BAD_SIGNATURE], // ID_KEY_DIGEST
      [0x110, SnpErrorCode.BAD_SIGNATURE], // AUTHOR_KEY_DIGEST
      [0x140, SnpErrorCode.BAD_SIGNATURE], // REPORT_ID
      [0x160, SnpErrorCode.BAD_SIGNATURE], // REPORT_ID_MA
      [0x180, SnpErrorCode.TCB_MISMATCH], // REPORTED_TCB: no longer the VCEK's TCB
      [0x188, SnpErrorCode.RESERVED_FIELD_NONZERO], // CPUID fields are reserved in v2
      [0x1a0, SnpErrorCode.CHIP_ID_MISMATCH], // CHIP_ID: no longer the VCEK's hwID
      [0x1e0, SnpErrorCode.BAD_SIGNATURE], // COMMITTED_TCB
      [0x1e8, SnpErrorCode.BAD_SIGNATURE], // CURRENT_BUILD
      [0x1f0, SnpErrorCode.BAD_SIGNATURE], // LAUNCH_TCB
      [0x29f, SnpErrorCode.RESERVED_FIELD_NONZERO], // reserved before the signature
      [0x2a0 + 47, SnpErrorCode.BAD_SIGNATURE], // r, most significant used byte
      [0x2a0 + 48, SnpErrorCode.BAD_SIGNATURE], // r beyond 48 bytes
      [0x2e8, SnpErrorCode.BAD_SIGNATURE], // s
    ];
    for (const [off, expected] of cases) {
      const b = new Uint8Array(good);
      b[off]! ^= 0x01;
      expect(codeOf(() => verify(b, { vcek: vcek() }, { product: 'milan' })), `offset 0x${off.toString(16)}`).toBe(expected);
    }
  });

  it('wrong version through the verifier → SNP_UNSUPPORTED_VERSION (before any crypto)', () => {
    const b = new Uint8Array(readVector('snp/gosevguest_milan_v2/report.bin'));
    b[0] = 4;
    expect(codeOf(() => verify(b, { vcek: vcek() }, { product: 'milan' }))).toBe(SnpErrorCode.UNSUPPORTED_VERSION);
  });

  it('random bytes (seeded) → a decoding code, never a verdict', () => {
    let seed = 0x5a17;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    for (const len of [0, 1, 0x2a0, REPORT_SIZE - 1, REPORT_SIZE + 1, 4096]) {
      const b = Uint8Array.from({ length: len }, rnd);
      expect(codeOf(() => verify(b, { vcek: vcek() }, { product: 'milan' })), `length ${len}`).toBe(len < REPORT_SIZE ? SnpErrorCode.REPORT_TRUNCATED : SnpErrorCode.REPORT_TRAILING_DATA);
    }
    for (let i = 0; i < 20; i++) {
      const b = Uint8Array.from({ length: REPORT_SIZE }, rnd);
      if ([2, 3, 5].includes(new DataView(b.buffer).getUint32(0, true))) continue;
      expect(codeOf(() => verify(b, { vcek: vcek() }, { product: 'milan' }))).toBe(SnpErrorCode.UNSUPPORTED_VERSION);
      // With a valid version the random rest is still refused (signature algorithm, reserved bits …).
      b.set([2, 0, 0, 0]);
      expect(codeOf(() => verify(b, { vcek: vcek() }, { product: 'milan' }))).toMatch(/^SNP_(UNSUPPORTED_SIGNATURE_ALGO|RESERVED_FIELD_NONZERO|RESERVED_SIGNING_KEY)$/);
    }
    // Random bytes as the VCEK.
    expect(codeOf(() => verify(readVector('snp/gosevguest_milan_v2/report.bin'), { vcek: Uint8Array.from({ length: 1300 }, rnd) }, { product: 'milan' }))).toBe(SnpErrorCode.CERT_MALFORMED);
  });

  it('truncated → SNP_REPORT_TRUNCATED', () => {
    expect(codeOf(() => verify(readVector('snp/derived/gosevguest_milan_v2_truncated_0x2A0.bin'), { vcek: vcek() }, { product: 'milan' }))).toBe(SnpErrorCode.REPORT_TRUNCATED);
  });

  it('gosevguest VCEK with the Genoa ASK/ARK → rejected (wrong chain)', () => {
    const pems = readVectorText('snp/amd_roots/ask_ark_genoa.pem');
    const report = readVector('snp/gosevguest_milan_v2/report.bin');
    expect(codeOf(() => verify(report, { vcek: vcek(), chain: new Uint8Array(Buffer.from(pems)) }, { product: 'genoa' }))).toBe(SnpErrorCode.CHAIN_ISSUER_MISMATCH);
    // Stating milan but handing the Genoa ARK: the ARK is not the pinned Milan ARK.
    const genoaArk = new Uint8Array(Buffer.from(pems.split(/(?=-----BEGIN)/)[1]!));
    expect(codeOf(() => verify(report, { vcek: vcek(), ark: genoaArk }, { product: 'milan' }))).toBe(SnpErrorCode.ARK_NOT_TRUSTED);
  });

  it('VCEK of another chip → SNP_CHIP_ID_MISMATCH; VLEK for a VCEK report → SNP_SIGNING_KEY_MISMATCH', () => {
    const report = readVector('snp/gosevguest_milan_v2/report.bin');
    expect(codeOf(() => verify(report, { vcek: readVector('snp/virtee_milan_v2/vcek.der') }, { product: 'milan' }))).toBe(SnpErrorCode.CHIP_ID_MISMATCH);
    expect(codeOf(() => verify(report, { vcek: readVector('snp/trustee_milan_vlek_v3/vlek.der') }, { product: 'milan', now: new Date('2025-06-01') }))).toBe(SnpErrorCode.SIGNING_KEY_MISMATCH);
  });

  it('a v2 report without a product is an input error', () => {
    expect(codeOf(() => verify(readVector('snp/gosevguest_milan_v2/report.bin'), { vcek: vcek() }))).toBe(SnpErrorCode.PRODUCT_UNKNOWN);
  });

  it('a certificate that is not one → SNP_CERT_MALFORMED', () => {
    const report = readVector('snp/gosevguest_milan_v2/report.bin');
    expect(codeOf(() => verify(report, { vcek: new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00]) }, { product: 'milan' }))).toBe(SnpErrorCode.CERT_MALFORMED);
    expect(codeOf(() => verify(report, { vcek: new Uint8Array(Buffer.from('hello')) }, { product: 'milan' }))).toBe(SnpErrorCode.CERT_MALFORMED);
  });

  it('a cached chain gives the same result and honours its validity window', () => {
    const cache = new ChainCache();
    const report = readVector('snp/trustee_milan_vlek_v3/report.bin');
    const vlek = readVector('snp/trustee_milan_vlek_v3/vlek.der');
    const a = verify(report, { vcek: vlek }, { now: new Date('2025-06-01'), cache });
    const b = verify(report, { vcek: vlek }, { now: new Date('2025-06-02'), cache });
    expect(b.chain).toBe(a.chain);
    expect(codeOf(() => verify(report, { vcek: vlek }, { cache }))).toBe(SnpErrorCode.CERT_EXPIRED);
    expect(parseAmdCert(vlek, 'x').notAfter.getTime()).toBe(a.chain.validUntil.getTime());
  });
});
