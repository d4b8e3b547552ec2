// A simulated AMD signer for tests and the demo: a test ARK/ASK/ASVK, VCEKs/VLEKs with AMD's extensions,
// byte-exact signed reports and ARK CRLs. Everything it makes goes through the same verify code and is
// trusted only by the trust store it returns (the default store holds AMD's roots only).
import './reflect.js';
import { KeyObject, sign as cryptoSign, webcrypto } from 'node:crypto';
import { Extension, X509CertificateGenerator, X509CrlGenerator, type X509Certificate } from '@peculiar/x509';
import { derEncode, derUintEncode, TAG } from './der.js';
import { AMD_OID } from './cert.js';
import { REPORT_LAYOUT, REPORT_SIZE, SIGNED_LENGTH, SIG_R_OFFSET, SIG_S_OFFSET } from './decode.js';
import { SnpTrustStore, type SnpTrustAnchor } from './roots.js';
import { parseAmdCert } from './cert.js';
import { encodeTcb, kdsProductName, tcbLayoutFor, type SnpProduct, type TcbVersion } from './tcb.js';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
const subtle = webcrypto.subtle;
// @peculiar/x509 is typed against the DOM Crypto; node's webcrypto implements it.
const cryptoProvider = webcrypto as unknown as Parameters<typeof X509CertificateGenerator.create>[1];
const PSS = { name: 'RSA-PSS', saltLength: 48 };

function amdName(cn: string): string {
  return `OU=Engineering, C=US, L=Test, ST=CA, O=joinguard simulated AMD, CN=${cn}`;
}

export interface TestCert {
  der: Uint8Array;
  pem: string;
  cert: X509Certificate;
  keys: CryptoKeyPair;
}

export interface TestAuthority {
  product: SnpProduct;
  ark: TestCert;
  ask: TestCert;
  asvk?: TestCert;
  /** A store that trusts this test ARK (and only it) for `product`. */
  trust: SnpTrustStore;
}

export interface TestAuthorityOptions {
  product?: SnpProduct;
  /** RSA modulus (AMD uses 4096; 2048 keeps tests fast). */
  rsaBits?: 2048 | 4096;
  notBefore?: Date;
  notAfter?: Date;
  /** Validity of the ASK/ASVK only (to build an expired chain). */
  askNotAfter?: Date;
  /** Reuse another authority's keys (RSA key generation is the slow part of a test). */
  keysFrom?: TestAuthority;
  /** Also make an ASVK (default true). */
  withAsvk?: boolean;
}

async function rsaKeys(bits: number): Promise<CryptoKeyPair> {
  return (await subtle.generateKey({ name: 'RSA-PSS', modulusLength: bits, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-384' }, true, ['sign', 'verify'])) as CryptoKeyPair;
}

function toTestCert(cert: X509Certificate, keys: CryptoKeyPair): TestCert {
  return { der: new Uint8Array(cert.rawData), pem: cert.toString('pem'), cert, keys };
}

/** A test ARK (self-signed), ASK and ASVK, all RSA-PSS/SHA-384 like AMD's. */
export async function createTestAuthority(opts: TestAuthorityOptions = {}): Promise<TestAuthority> {
  const product = opts.product ?? 'milan';
  const P = kdsProductName(product);
  const bits = opts.rsaBits ?? 2048;
  const notBefore = opts.notBefore ?? new Date('2020-01-01T00:00:00Z');
  const notAfter = opts.notAfter ?? new Date('2045-01-01T00:00:00Z');
  const arkKeys = opts.keysFrom?.ark.keys ?? (await rsaKeys(bits));
  const arkCert = await X509CertificateGenerator.createSelfSigned({ serialNumber: '010000', name: amdName(`ARK-${P}`), notBefore, notAfter, keys: arkKeys, signingAlgorithm: PSS }, cryptoProvider);
  const ark = toTestCert(arkCert, arkKeys);
  const issue = async (cn: string, serial: string, reuse: TestCert | undefined) => {
    const keys = reuse?.keys ?? (await rsaKeys(bits));
    const cert = await X509CertificateGenerator.create(
      { serialNumber: serial, subject: amdName(cn), issuer: arkCert.subjectName, notBefore, notAfter: opts.askNotAfter ?? notAfter, publicKey: keys.publicKey, signingKey: arkKeys.privateKey, signingAlgorithm: PSS },
      cryptoProvider,
    );
    return toTestCert(cert, keys);
  };
  const ask = await issue(`SEV-${P}`, '010001', opts.keysFrom?.ask);
  const anchor: SnpTrustAnchor = { product, ark: parseAmdCert(ark.der, 'test ARK'), ask: parseAmdCert(ask.der, 'test ASK') };
  const out: TestAuthority = { product, ark, ask, trust: new SnpTrustStore([anchor]) };
  if (opts.withAsvk ?? true) {
    out.asvk = await issue(`SEV-VLEK-${P}`, '010101', opts.keysFrom?.asvk);
    anchor.asvk = parseAmdCert(out.asvk.der, 'test ASVK');
    out.trust = new SnpTrustStore([anchor]);
  }
  return out;
}

export interface TestLeaf extends TestCert {
  /** The key that signs reports (node:crypto form). */
  privateKey: KeyObject;
}

export interface TestLeafOptions {
  kind?: 'vcek' | 'vlek';
  /** 64 bytes (Turin: the first 8 are the hwID). */
  chipId: Uint8Array;
  /** The TCB the key is derived for (REPORTED_TCB of the reports it signs). */
  tcb: TcbVersion;
  notBefore?: Date;
  notAfter?: Date;
  /** Reuse a key pair (to make a certificate for another chip or TCB with the same key). */
  keys?: CryptoKeyPair;
  productName?: string;
  /** PSS salt length of the issuer's signature (AMD: 48); another value makes a non-conforming certificate. */
  saltLength?: number;
}

/** A VCEK (or VLEK) with AMD's extensions, issued by the authority's ASK (or ASVK). */
export async function issueTestLeaf(auth: TestAuthority, opts: TestLeafOptions): Promise<TestLeaf> {
  const kind = opts.kind ?? 'vcek';
  const keys = opts.keys ?? ((await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, true, ['sign', 'verify'])) as CryptoKeyPair);
  const issuer = kind === 'vlek' ? auth.asvk : auth.ask;
  if (!issuer) throw new Error('this test authority has no ASVK');
  const int = (oid: string, v: number) => new Extension(oid, false, derUintEncode(v));
  const ia5 = (oid: string, s: string) => new Extension(oid, false, derEncode(TAG.IA5_STRING, new Uint8Array(Buffer.from(s, 'latin1'))));
  const exts: Extension[] = [int(AMD_OID.STRUCT_VERSION, 1), ia5(AMD_OID.PRODUCT_NAME, opts.productName ?? kdsProductName(auth.product))];
  if (auth.product === 'turin') exts.push(int(AMD_OID.FMC_SPL, opts.tcb.fmc ?? 0));
  exts.push(int(AMD_OID.BL_SPL, opts.tcb.bootloader), int(AMD_OID.TEE_SPL, opts.tcb.tee), int(AMD_OID.SNP_SPL, opts.tcb.snp));
  for (const oid of [AMD_OID.SPL_4, AMD_OID.SPL_5, AMD_OID.SPL_6, AMD_OID.SPL_7]) exts.push(int(oid, 0));
  exts.push(int(AMD_OID.UCODE_SPL, opts.tcb.microcode));
  if (kind === 'vcek') exts.push(new Extension(AMD_OID.HW_ID, false, auth.product === 'turin' ? opts.chipId.subarray(0, 8) : opts.chipId));
  else exts.push(ia5(AMD_OID.CSP_ID, 'CN=joinguard-test-csp'));
  const cert = await X509CertificateGenerator.create(
    {
      serialNumber: '00',
      subject: amdName(kind === 'vlek' ? 'SEV-VLEK' : 'SEV-VCEK'),
      issuer: issuer.cert.subjectName,
      notBefore: opts.notBefore ?? new Date('2020-01-01T00:00:00Z'),
      notAfter: opts.notAfter ?? new Date('2045-01-01T00:00:00Z'),
      publicKey: keys.publicKey,
      signingKey: issuer.keys.privateKey,
      signingAlgorithm: { ...PSS, saltLength: opts.saltLength ?? PSS.saltLength },
      extensions: exts,
    },
    cryptoProvider,
  );
  return { ...toTestCert(cert, keys), privateKey: KeyObject.from(keys.privateKey) };
}

/** An ARK CRL revoking the given serial numbers (hex); `signingKey` overrides the ARK key (a forged CRL). */
export async function createTestCrl(auth: TestAuthority, revokedSerials: string[], thisUpdate: Date, nextUpdate: Date, signingKey?: CryptoKey): Promise<Uint8Array> {
  const crl = await X509CrlGenerator.create(
    {
      issuer: auth.ark.cert.subjectName,
      thisUpdate,
      nextUpdate,
      entries: revokedSerials.map((serialNumber) => ({ serialNumber, revocationDate: thisUpdate })),
      signingAlgorithm: PSS,
      signingKey: signingKey ?? auth.ark.keys.privateKey,
    },
    cryptoProvider,
  );
  return new Uint8Array(crl.rawData);
}

export interface TestReportFields {
  product: SnpProduct;
  /** 2, 3 or 5 (default 3; Turin reports default to 5). */
  version?: number;
  chipId: Uint8Array;
  reportedTcb: TcbVersion;
  currentTcb?: TcbVersion;
  committedTcb?: TcbVersion;
  launchTcb?: TcbVersion;
  reportData?: Uint8Array;
  measurement?: Uint8Array;
  hostData?: Uint8Array;
  familyId?: Uint8Array;
  imageId?: Uint8Array;
  idKeyDigest?: Uint8Array;
  authorKeyDigest?: Uint8Array;
  reportId?: Uint8Array;
  reportIdMa?: Uint8Array;
  policy?: bigint;
  platformInfo?: bigint;
  guestSvn?: number;
  vmpl?: number;
  signingKey?: 'vcek' | 'vlek';
  authorKeyEn?: boolean;
  maskChipKey?: boolean;
  cpuid?: { family: number; model: number; stepping: number };
  firmware?: { major: number; minor: number; build: number };
  launchMitVector?: bigint;
  currentMitVector?: bigint;
}

const DEFAULT_CPUID: Record<SnpProduct, { family: number; model: number; stepping: number }> = {
  milan: { family: 0x19, model: 0x01, stepping: 0x01 },
  genoa: { family: 0x19, model: 0x11, stepping: 0x01 },
  turin: { family: 0x1a, model: 0x02, stepping: 0x00 },
};

/** The unsigned report bytes (signature field zero), laid out by REPORT_LAYOUT. */
export function buildTestReportBody(f: TestReportFields): Uint8Array {
  const out = new Uint8Array(REPORT_SIZE);
  const dv = new DataView(out.buffer);
  const L = REPORT_LAYOUT;
  const layout = tcbLayoutFor(f.product);
  const version = f.version ?? (f.product === 'turin' ? 5 : 3);
  const put = (field: readonly [number, number], b: Uint8Array | undefined) => {
    if (!b) return;
    if (b.length !== field[1]) throw new RangeError(`field at 0x${field[0].toString(16)} needs ${field[1]} bytes, got ${b.length}`);
    out.set(b, field[0]);
  };
  dv.setUint32(L.VERSION[0], version, true);
  dv.setUint32(L.GUEST_SVN[0], f.guestSvn ?? 0, true);
  dv.setBigUint64(L.POLICY[0], f.policy ?? 0x30000n, true);
  put(L.FAMILY_ID, f.familyId);
  put(L.IMAGE_ID, f.imageId);
  dv.setUint32(L.VMPL[0], f.vmpl ?? 0, true);
  dv.setUint32(L.SIGNATURE_ALGO[0], 1, true);
  dv.setBigUint64(L.CURRENT_TCB[0], encodeTcb(f.currentTcb ?? f.reportedTcb, layout), true);
  dv.setBigUint64(L.PLATFORM_INFO[0], f.platformInfo ?? 0x1n, true);
  const keyInfo = (f.authorKeyEn ? 1 : 0) | (f.maskChipKey ? 2 : 0) | ((f.signingKey === 'vlek' ? 1 : 0) << 2);
  dv.setUint32(L.KEY_INFO[0], keyInfo, true);
  put(L.REPORT_DATA, f.reportData);
  put(L.MEASUREMENT, f.measurement);
  put(L.HOST_DATA, f.hostData);
  put(L.ID_KEY_DIGEST, f.idKeyDigest);
  put(L.AUTHOR_KEY_DIGEST, f.authorKeyDigest);
  put(L.REPORT_ID, f.reportId);
  put(L.REPORT_ID_MA, f.reportIdMa ?? new Uint8Array(32).fill(0xff));
  dv.setBigUint64(L.REPORTED_TCB[0], encodeTcb(f.reportedTcb, layout), true);
  if (version >= 3) {
    const c = f.cpuid ?? DEFAULT_CPUID[f.product];
    out[L.CPUID_FAM_ID[0]] = c.family;
    out[L.CPUID_MOD_ID[0]] = c.model;
    out[L.CPUID_STEP[0]] = c.stepping;
  }
  put(L.CHIP_ID, f.maskChipKey ? new Uint8Array(64) : f.chipId);
  dv.setBigUint64(L.COMMITTED_TCB[0], encodeTcb(f.committedTcb ?? f.reportedTcb, layout), true);
  const fw = f.firmware ?? { major: 1, minor: 55, build: 1 };
  out[L.CURRENT_BUILD[0]] = fw.build;
  out[L.CURRENT_MINOR[0]] = fw.minor;
  out[L.CURRENT_MAJOR[0]] = fw.major;
  out[L.COMMITTED_BUILD[0]] = fw.build;
  out[L.COMMITTED_MINOR[0]] = fw.minor;
  out[L.COMMITTED_MAJOR[0]] = fw.major;
  dv.setBigUint64(L.LAUNCH_TCB[0], encodeTcb(f.launchTcb ?? f.reportedTcb, layout), true);
  if (version >= 5) {
    dv.setBigUint64(L.LAUNCH_MIT_VECTOR[0], f.launchMitVector ?? 0n, true);
    dv.setBigUint64(L.CURRENT_MIT_VECTOR[0], f.currentMitVector ?? 0n, true);
  }
  return out;
}

/** Signs bytes 0x000-0x29F in place: ECDSA P-384/SHA-384, r and s little-endian at 0x2A0/0x2E8. */
export function signTestReport(report: Uint8Array, key: KeyObject): Uint8Array {
  const sig = cryptoSign('sha384', report.subarray(0, SIGNED_LENGTH), { key, dsaEncoding: 'ieee-p1363' });
  report.fill(0, SIG_R_OFFSET, REPORT_SIZE);
  for (let i = 0; i < 48; i++) {
    report[SIG_R_OFFSET + i] = sig[47 - i]!;
    report[SIG_S_OFFSET + i] = sig[95 - i]!;
  }
  return report;
}

/** A signed report for the given fields. */
export function makeTestReport(f: TestReportFields, key: KeyObject): Uint8Array {
  return signTestReport(buildTestReportBody(f), key);
}
