import { createHash, createPublicKey, KeyObject, sign as cryptoSign, webcrypto, type KeyObject as KeyObjectT } from 'node:crypto';
import { newKeyPair } from '@joinguard/core';
import * as px509 from './x509.js';
import { trustAnchorFromPem, type TrustAnchor } from './certs.js';
import { SGX_EXTENSIONS_OID } from './pck.js';
import type { CollateralBundle } from './verify.js';
import type { TdQuoteBody } from './decode.js';

/*
 * A simulated Intel signer for tests and the demo: a generated "Intel-like" root, PCK Platform CA, TCB
 * Signing certificate, PCK leaves with SGX extensions, signed TCB info / QE identity / CRLs, and byte-exact
 * v4/v5 quotes signed by a generated attestation key. The production verifier accepts these only when the
 * test root is passed as the trust anchor.
 */

const subtle = webcrypto.subtle;
const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIG = { name: 'ECDSA', hash: 'SHA-256' } as const;

interface KeyPair {
  keys: webcrypto.CryptoKeyPair;
  privateKey: KeyObjectT;
  publicKey: KeyObjectT;
}

async function newKey(): Promise<KeyPair> {
  const keys = (await subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  return { keys, privateKey: KeyObject.from(keys.privateKey), publicKey: KeyObject.from(keys.publicKey) };
}

function p1363Sign(key: KeyObjectT, data: Uint8Array): Uint8Array {
  return new Uint8Array(cryptoSign('sha256', data, { key, dsaEncoding: 'ieee-p1363' }));
}

// --- a few DER encoders for the SGX extensions ---
function tlv(tag: number, content: Uint8Array): Uint8Array {
  const n = content.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Uint8Array.from([tag, ...len, ...content]);
}
function oid(dotted: string): Uint8Array {
  const arcs = dotted.split('.').map(Number);
  const out = [arcs[0]! * 40 + arcs[1]!];
  for (const a of arcs.slice(2)) {
    const b: number[] = [a & 0x7f];
    for (let v = Math.floor(a / 128); v > 0; v = Math.floor(v / 128)) b.unshift((v & 0x7f) | 0x80);
    out.push(...b);
  }
  return tlv(0x06, Uint8Array.from(out));
}
function uint(tag: number, v: number): Uint8Array {
  const b: number[] = [];
  do {
    b.unshift(v & 0xff);
    v = Math.floor(v / 256);
  } while (v > 0);
  if (b[0]! & 0x80) b.unshift(0);
  return tlv(tag, Uint8Array.from(b));
}
function seq(...parts: Uint8Array[]): Uint8Array {
  return tlv(0x30, Buffer.concat(parts));
}

export interface PckTcb {
  fmspc: string;
  pceId?: string;
  sgxTcbComponents: number[];
  pceSvn: number;
}

/** DER value of the SGX Extensions extension (1.2.840.113741.1.13.1) for a PCK certificate. */
export function encodeSgxExtensions(t: PckTcb): Uint8Array {
  const o = SGX_EXTENSIONS_OID;
  const tcb: Uint8Array[] = t.sgxTcbComponents.map((svn, i) => seq(oid(`${o}.2.${i + 1}`), uint(0x02, svn)));
  tcb.push(seq(oid(`${o}.2.17`), uint(0x02, t.pceSvn)));
  tcb.push(seq(oid(`${o}.2.18`), tlv(0x04, Uint8Array.from(t.sgxTcbComponents))));
  return seq(
    seq(oid(`${o}.1`), tlv(0x04, new Uint8Array(16).fill(0xab))),
    seq(oid(`${o}.2`), seq(...tcb)),
    seq(oid(`${o}.3`), tlv(0x04, Buffer.from(t.pceId ?? '0000', 'hex'))),
    seq(oid(`${o}.4`), tlv(0x04, Buffer.from(t.fmspc, 'hex'))),
    seq(oid(`${o}.5`), uint(0x0a, 0)),
  );
}

export interface TestPkiOptions {
  notBefore?: Date;
  notAfter?: Date;
  /** Subject prefix of the generated certificates (the root's CN is "<name> SGX Root CA"). */
  name?: string;
}

export interface IssuedPck {
  /** PEM chain leaf → PCK Platform CA → root, as a quote carries it. */
  chainPem: string;
  privateKey: KeyObjectT;
  serialNumber: string;
}

export interface CrlOptions {
  thisUpdate: Date;
  nextUpdate: Date;
  revokedSerials?: string[];
}

export interface TestPki {
  anchor: TrustAnchor;
  rootPem: string;
  pckCaPem: string;
  tcbSigningPem: string;
  issuePck(tcb: PckTcb, opts?: { serialNumber?: string; notBefore?: Date; notAfter?: Date }): Promise<IssuedPck>;
  rootCaCrl(opts: CrlOptions): Promise<Uint8Array>;
  pckCrl(opts: CrlOptions): Promise<Uint8Array>;
  /** Signs `{"tcbInfo": ..., "signature": ...}` / `{"enclaveIdentity": ..., "signature": ...}` as Intel PCS does. */
  signTcbInfo(tcbInfo: unknown): string;
  signQeIdentity(identity: unknown): string;
}

let serialCounter = 1;
function nextSerial(): string {
  return (0x100000 + serialCounter++).toString(16);
}

export async function createTestPki(opts: TestPkiOptions = {}): Promise<TestPki> {
  const notBefore = opts.notBefore ?? new Date('2020-01-01T00:00:00Z');
  const notAfter = opts.notAfter ?? new Date('2049-12-31T23:59:59Z');
  const name = opts.name ?? 'joinguard test';
  const o = `O=${name},C=US`;
  const rootKey = await newKey();
  const pckCaKey = await newKey();
  const tcbKey = await newKey();
  const caExt = () => [new px509.BasicConstraintsExtension(true, undefined, true), new px509.KeyUsagesExtension(px509.KeyUsageFlags.keyCertSign | px509.KeyUsageFlags.cRLSign, true)];
  const root = await px509.X509CertificateGenerator.createSelfSigned({
    serialNumber: nextSerial(), name: `CN=${name} SGX Root CA,${o}`, notBefore, notAfter, keys: rootKey.keys, signingAlgorithm: SIG, extensions: caExt(),
  });
  const pckCa = await px509.X509CertificateGenerator.create({
    serialNumber: nextSerial(), subject: `CN=Intel SGX PCK Platform CA,${o}`, issuer: root.subject, notBefore, notAfter,
    publicKey: pckCaKey.keys.publicKey, signingKey: rootKey.keys.privateKey, signingAlgorithm: SIG, extensions: caExt(),
  });
  const tcbSigning = await px509.X509CertificateGenerator.create({
    serialNumber: nextSerial(), subject: `CN=Intel SGX TCB Signing,${o}`, issuer: root.subject, notBefore, notAfter,
    publicKey: tcbKey.keys.publicKey, signingKey: rootKey.keys.privateKey, signingAlgorithm: SIG,
    extensions: [new px509.BasicConstraintsExtension(false, undefined, true), new px509.KeyUsagesExtension(px509.KeyUsageFlags.digitalSignature | px509.KeyUsageFlags.nonRepudiation, true)],
  });
  const rootPem = root.toString('pem');
  const pckCaPem = pckCa.toString('pem');
  const tcbSigningPem = tcbSigning.toString('pem');
  const crl = async (issuer: px509.X509Certificate, key: KeyPair, c: CrlOptions) => {
    const made = await px509.X509CrlGenerator.create({
      issuer: issuer.subject, thisUpdate: c.thisUpdate, nextUpdate: c.nextUpdate, signingKey: key.keys.privateKey, signingAlgorithm: SIG,
      entries: (c.revokedSerials ?? []).map((serialNumber) => ({ serialNumber, revocationDate: c.thisUpdate })),
    });
    return new Uint8Array(made.rawData);
  };
  const signJson = (member: string, value: unknown): string => {
    const body = JSON.stringify(value);
    const sig = Buffer.from(p1363Sign(tcbKey.privateKey, Buffer.from(body, 'utf8'))).toString('hex');
    return `{"${member}":${body},"signature":"${sig}"}`;
  };
  return {
    anchor: trustAnchorFromPem(rootPem),
    rootPem,
    pckCaPem,
    tcbSigningPem,
    async issuePck(tcb, o2 = {}) {
      const k = await newKey();
      const serialNumber = o2.serialNumber ?? nextSerial();
      const leaf = await px509.X509CertificateGenerator.create({
        serialNumber, subject: `CN=Intel SGX PCK Certificate,${o}`, issuer: pckCa.subject, notBefore: o2.notBefore ?? notBefore, notAfter: o2.notAfter ?? notAfter,
        publicKey: k.keys.publicKey, signingKey: pckCaKey.keys.privateKey, signingAlgorithm: SIG,
        extensions: [new px509.Extension(SGX_EXTENSIONS_OID, false, encodeSgxExtensions(tcb))],
      });
      return { chainPem: `${leaf.toString('pem')}\n${pckCaPem}\n${rootPem}\n`, privateKey: k.privateKey, serialNumber };
    },
    rootCaCrl: (c) => crl(root, rootKey, c),
    pckCrl: (c) => crl(pckCa, pckCaKey, c),
    signTcbInfo: (v) => signJson('tcbInfo', v),
    signQeIdentity: (v) => signJson('enclaveIdentity', v),
  };
}

export interface BuildQuoteOptions {
  version?: 4 | 5;
  /** v5 only: 2 (TD 1.0) or 3 (TD 1.5, default for v5). */
  bodyType?: 2 | 3;
  body?: Partial<TdQuoteBody>;
  pck: IssuedPck;
  /** The attestation key; generated when absent. */
  attestationKey?: KeyObjectT;
  qeAuthData?: Uint8Array;
  qeIsvSvn?: number;
  qeMrSigner?: Uint8Array;
  userData?: Uint8Array;
  /** Zero bytes appended after the signature data (as some quote buffers carry). */
  trailingBytes?: number;
}

const BODY_FIELDS: [keyof TdQuoteBody, number][] = [
  ['teeTcbSvn', 16], ['mrSeam', 48], ['mrSignerSeam', 48], ['seamAttributes', 8], ['tdAttributes', 8], ['xfam', 8],
  ['mrTd', 48], ['mrConfigId', 48], ['mrOwner', 48], ['mrOwnerConfig', 48], ['rtmr0', 48], ['rtmr1', 48], ['rtmr2', 48],
  ['rtmr3', 48], ['reportData', 64],
];

function field(v: Uint8Array | undefined, n: number): Uint8Array {
  const out = new Uint8Array(n);
  if (v) out.set(v.subarray(0, n));
  return out;
}

function u16(v: number): Uint8Array {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return b;
}
function u32(v: number): Uint8Array {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
}

/** Intel's TD QE MRSIGNER (the value the QE identity carries). */
export const TD_QE_MRSIGNER = Buffer.from('dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5', 'hex');

/** Builds and signs a TDX quote exactly as the Intel quoting stack lays it out. */
export function buildQuote(o: BuildQuoteOptions): Uint8Array {
  const version = o.version ?? 4;
  const bodyType = version === 5 ? (o.bodyType ?? 3) : 2;
  const header = Buffer.concat([u16(version), u16(2), u32(0x81), u16(0), u16(0), Buffer.from('939a7233f79c4ca9940a0db3957f0607', 'hex'), field(o.userData, 20)]);
  const bodyParts = BODY_FIELDS.map(([k, n]) => field(o.body?.[k], n));
  if (bodyType === 3) bodyParts.push(field(o.body?.teeTcbSvn2, 16), field(o.body?.mrServiceTd, 48));
  const body = Buffer.concat(bodyParts);
  const signed = Buffer.concat(version === 5 ? [header, u16(bodyType), u32(body.length), body] : [header, body]);
  const akPriv = o.attestationKey ?? newKeyPair({ type: 'ec', namedCurve: 'P-256' }).privateKey;
  const jwk = createPublicKey(akPriv).export({ format: 'jwk' });
  const akRaw = Buffer.concat([Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
  const qeAuthData = o.qeAuthData ?? Uint8Array.from({ length: 32 }, (_, i) => i);
  const qeReportData = Buffer.concat([createHash('sha256').update(akRaw).update(qeAuthData).digest(), Buffer.alloc(32)]);
  const qeReport = Buffer.concat([
    Buffer.alloc(16, 1), u32(0), Buffer.alloc(28), Buffer.from('1500000000000000e700000000000000', 'hex'), Buffer.alloc(32, 0x5e),
    Buffer.alloc(32), field(o.qeMrSigner ?? TD_QE_MRSIGNER, 32), Buffer.alloc(96), u16(2), u16(o.qeIsvSvn ?? 4), Buffer.alloc(60), qeReportData,
  ]);
  const pckData = Buffer.from(o.pck.chainPem, 'latin1');
  const qeCert = Buffer.concat([qeReport, p1363Sign(o.pck.privateKey, qeReport), u16(qeAuthData.length), qeAuthData, u16(5), u32(pckData.length), pckData]);
  const sigData = Buffer.concat([p1363Sign(akPriv, signed), akRaw, u16(6), u32(qeCert.length), qeCert]);
  return new Uint8Array(Buffer.concat([signed, u32(sigData.length), sigData, Buffer.alloc(o.trailingBytes ?? 0)]));
}

export interface TestPlatform {
  fmspc: string;
  sgxTcbComponents: number[];
  pceSvn: number;
  teeTcbSvn: Uint8Array;
}

/** A TDX TCB info (v3) with one UpToDate level equal to the platform and one OutOfDate level below it. */
export function testTcbInfo(p: TestPlatform, issueDate: Date, nextUpdate: Date, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const comps = (svns: ArrayLike<number>) => Array.from({ length: 16 }, (_, i) => ({ svn: svns[i] ?? 0 }));
  const lower = (svns: ArrayLike<number>) => Array.from({ length: 16 }, (_, i) => Math.max(0, (svns[i] ?? 0) - 1));
  return {
    id: 'TDX', version: 3, issueDate: issueDate.toISOString(), nextUpdate: nextUpdate.toISOString(), fmspc: p.fmspc, pceId: '0000', tcbType: 0, tcbEvaluationDataNumber: 17,
    tdxModule: { mrsigner: '0'.repeat(96), attributes: '0000000000000000', attributesMask: 'FFFFFFFFFFFFFFFF' },
    tcbLevels: [
      { tcb: { sgxtcbcomponents: comps(p.sgxTcbComponents), pcesvn: p.pceSvn, tdxtcbcomponents: comps(p.teeTcbSvn) }, tcbDate: '2024-01-01T00:00:00Z', tcbStatus: 'UpToDate' },
      { tcb: { sgxtcbcomponents: comps(lower(p.sgxTcbComponents)), pcesvn: Math.max(0, p.pceSvn - 1), tdxtcbcomponents: comps(lower(p.teeTcbSvn)) }, tcbDate: '2023-01-01T00:00:00Z', tcbStatus: 'SWHardeningNeeded', advisoryIDs: ['INTEL-SA-00615', 'INTEL-SA-00657'] },
    ],
    ...extra,
  };
}

/** A TD_QE identity (v2) accepting the simulated QE at ISVSVN ≥ 4. */
export function testQeIdentity(issueDate: Date, nextUpdate: Date): Record<string, unknown> {
  return {
    id: 'TD_QE', version: 2, issueDate: issueDate.toISOString(), nextUpdate: nextUpdate.toISOString(), tcbEvaluationDataNumber: 17,
    miscselect: '00000000', miscselectMask: 'FFFFFFFF', attributes: '11000000000000000000000000000000', attributesMask: 'FBFFFFFFFFFFFFFF0000000000000000',
    mrsigner: TD_QE_MRSIGNER.toString('hex').toUpperCase(), isvprodid: 2,
    tcbLevels: [
      { tcb: { isvsvn: 4 }, tcbDate: '2024-01-01T00:00:00Z', tcbStatus: 'UpToDate' },
      { tcb: { isvsvn: 2 }, tcbDate: '2023-01-01T00:00:00Z', tcbStatus: 'OutOfDate', advisoryIDs: ['INTEL-SA-00837'] },
    ],
  };
}

/** A complete collateral bundle from the test PKI, valid over [issueDate, nextUpdate]. */
export async function testCollateral(pki: TestPki, p: TestPlatform, issueDate: Date, nextUpdate: Date, opts: { revokedPckSerials?: string[]; revokedCaSerials?: string[]; tcbInfo?: Record<string, unknown> } = {}): Promise<CollateralBundle> {
  return {
    tcbInfo: pki.signTcbInfo(opts.tcbInfo ?? testTcbInfo(p, issueDate, nextUpdate)),
    tcbInfoIssuerChain: `${pki.tcbSigningPem}\n${pki.rootPem}\n`,
    qeIdentity: pki.signQeIdentity(testQeIdentity(issueDate, nextUpdate)),
    qeIdentityIssuerChain: `${pki.tcbSigningPem}\n${pki.rootPem}\n`,
    pckCrl: await pki.pckCrl({ thisUpdate: issueDate, nextUpdate, revokedSerials: opts.revokedPckSerials }),
    pckCrlIssuerChain: `${pki.pckCaPem}\n${pki.rootPem}\n`,
    rootCaCrl: await pki.rootCaCrl({ thisUpdate: issueDate, nextUpdate, revokedSerials: opts.revokedCaSerials }),
  };
}
