// @joinguard/simcvm: a simulated confidential VM for tests, benchmarks and the demo. It holds a software
// SNP or TDX signer under a generated test root (trusted only by a verifier configured with it), a vTPM
// (swtpm, or an in-process software TPM), and a synthetic TCG event log whose replay is extended into the
// vTPM, and produces complete evidence bundles bound to a challenge exactly as a real attester does.
import { createHash, randomBytes, type KeyObject } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { toHex, newKeyPair } from '@joinguard/core';
import { bindingDigest, fromB64url, toB64url, tpmExtraData, type Evidence, type RuntimeData, type TeeKeyJwk, type TeeKeyJwkP256 } from '@joinguard/protocol';
import { POLICY_API_VERSION, POLICY_KIND, type Policy } from '@joinguard/policy';
import type { SnpProduct, TcbVersion } from '@joinguard/snp';
import { createTestAuthority, issueTestLeaf, makeTestReport, type TestAuthority, type TestLeaf } from '@joinguard/snp/testing';
import { writeCollateralBundle, type CollateralBundle } from '@joinguard/tdx';
import { buildQuote, createTestPki, testCollateral, type IssuedPck, type TestPki, type TestPlatform } from '@joinguard/tdx/testing';
import { bootEvents, encodeEventLog, eventDigests, replayEvents, type SimBootConfig, type SimEvent } from './eventlog.js';
import { softwareVtpm, swtpmVtpm, type SimVtpm } from './vtpm.js';
import { selfSignedCertDer } from './certs.js';

export { bootEvents, encodeEventLog, replayEvents, eventDigests, headerOnlyEventLog, guidBytes, SIM_BANKS } from './eventlog.js';
export type { SimBootConfig, SimEvent, SimBank, BootApp } from './eventlog.js';
export { softwareVtpm, swtpmVtpm, eccAkPublic, AK_ATTRIBUTES } from './vtpm.js';
export type { SimVtpm } from './vtpm.js';

export type SimTee = 'snp' | 'tdx';

/** A node's ephemeral TEE key: a P-256 pair, its public half as the runtimeData.teeKey JWK the key broker seals to. */
export function teeKeyPair(): { pub: TeeKeyJwkP256; priv: KeyObject } {
  const { publicKey, privateKey } = newKeyPair({ type: 'ec', namedCurve: 'P-256' });
  const j = publicKey.export({ format: 'jwk' });
  return { pub: { kty: 'EC', crv: 'P-256', x: j.x!, y: j.y! }, priv: privateKey };
}

export interface SimCvmOptions {
  tee: SimTee;
  nodeName?: string;
  /** 'swtpm' (default; a real TPM 2.0 implementation) or 'software' (in-process, for benchmarks). */
  vtpm?: 'swtpm' | 'software';
  /** A manufactured swtpm state to copy (see @joinguard/tpm2/testing manufactureSwtpm), to save ~1.5 s. */
  swtpmTemplateDir?: string;
  /** Centre of the TDX collateral validity window (default: now). */
  now?: Date;
  snp?: {
    product?: SnpProduct;
    measurement?: Uint8Array;
    /** GUEST_POLICY (default 0x30000: SMT allowed, no debug, no migration agent). */
    policy?: bigint;
    reportedTcb?: TcbVersion;
    hostData?: Uint8Array;
    vmpl?: number;
  };
  tdx?: {
    mrTd?: Uint8Array;
    /** TDATTRIBUTES, 8 bytes (default zero: not a debug TD). */
    tdAttributes?: Uint8Array;
  };
  boot?: Partial<SimBootConfig>;
  /** Reuse another simulator's PKI (key generation is the slow part). */
  pkiFrom?: SimCvm;
}

/** Ways to break an evidence bundle, one binding or integrity rule each. */
export interface SimTamper {
  /** REPORT_DATA other than d. */
  reportData?: Uint8Array;
  /** Changes to runtimeData made after d was computed (the attester lies about what it bound). */
  runtimeDataAfterBinding?: Partial<RuntimeData>;
  /** A wrong runtimeData.akPublicSha256, bound into d (the quote's AK is not the bound one). */
  akPublicSha256?: string;
  /**
   * No runtimeData.akPublicSha256 at all, with d computed over that runtimeData: REPORT_DATA and extraData are
   * bound correctly, but nothing names the vTPM AK (an attester that forgot to bind it).
   */
  omitAkPublicSha256?: boolean;
  /** Quote extraData other than SHA-256(d). */
  extraData?: Uint8Array;
  /** A reported PCR value changed after the quote (sha256 bank). */
  pcr?: { index: number; value: string };
  /** The log differs from what was extended: a boot application's digest, or a kernel command line's text. */
  eventLog?: 'bootAppDigest' | 'kernelCmdlineText';
  /** teeKey carrying the private scalar `d`, bound like any other runtimeData. */
  teeKeyWithPrivate?: boolean;
}

export interface SimEvidenceOptions {
  /** Nonce bytes or its b64url text; random 32 bytes when absent. */
  nonce?: Uint8Array | string;
  runtimeData?: Partial<RuntimeData>;
  tamper?: SimTamper;
}

export interface SimTrust {
  /** PEM (intermediates then ARK) per test root, for defaultTrust({ snpTestRootsPem }). */
  snpRootsPem: string[];
  tdxRootsPem: string[];
  tdxCollateral?: CollateralBundle;
}

export interface SimCvm {
  readonly tee: SimTee;
  readonly nodeName: string;
  readonly vtpm: SimVtpm;
  readonly trust: SimTrust;
  readonly boot: SimBootConfig;
  /** The TCG event log the vTPM PCRs were extended with. */
  readonly eventLog: Uint8Array;
  evidence(opts?: SimEvidenceOptions): Promise<Evidence>;
  /** A policy (policy package format) that accepts this CVM's measurements. */
  goodPolicy(): Policy;
  /** Writes the trust material as files: snp-roots.pem, tdx-root.pem, tdx-collateral/ (offline bundle). */
  writeTrust(dir: string): { snpRootsPem?: string; tdxRootPem?: string; tdxCollateralDir?: string };
  close(): Promise<void>;
  /** internal: the signer state another simulator may reuse */
  readonly signer: SignerState;
}

interface SignerState {
  snp?: { auth: TestAuthority; vcek: TestLeaf; chipId: Uint8Array; tcb: TcbVersion; product: SnpProduct };
  tdx?: { pki: TestPki; pck: IssuedPck; platform: TestPlatform; collateral: CollateralBundle };
  certs?: { pk: Uint8Array; kek: Uint8Array; db: Uint8Array };
}

const DEFAULT_TCB: TcbVersion = { bootloader: 3, tee: 0, snp: 14, microcode: 209 };
const PLATFORM: TestPlatform = { fmspc: '00906ed50000', sgxTcbComponents: [5, 5, 2, 2, 3, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0], pceSvn: 11, teeTcbSvn: Uint8Array.from([3, 0, 5]) };
const DAY = 86_400_000;

function sha256(b: Uint8Array | string): string {
  return createHash('sha256').update(b).digest('hex');
}

async function snpSigner(product: SnpProduct, tcb: TcbVersion, from?: SignerState['snp']): Promise<NonNullable<SignerState['snp']>> {
  if (from && from.product === product) return from;
  const auth = await createTestAuthority({ product, withAsvk: false });
  const chipId = new Uint8Array(randomBytes(64));
  const vcek = await issueTestLeaf(auth, { chipId, tcb });
  return { auth, vcek, chipId, tcb, product };
}

async function tdxSigner(now: Date, from?: SignerState['tdx']): Promise<NonNullable<SignerState['tdx']>> {
  if (from) return from;
  const pki = await createTestPki({ name: 'joinguard simcvm' });
  const pck = await pki.issuePck(PLATFORM);
  const collateral = await testCollateral(pki, PLATFORM, new Date(now.getTime() - DAY), new Date(now.getTime() + 30 * DAY));
  return { pki, pck, platform: PLATFORM, collateral };
}

function defaultBoot(certs: NonNullable<SignerState['certs']>, over: Partial<SimBootConfig> = {}): SimBootConfig {
  return {
    secureBoot: true,
    pk: [certs.pk],
    kek: [certs.kek],
    db: [certs.db],
    dbx: [sha256('revoked grub 2.02'), sha256('revoked shim 15.4')],
    bootApps: [
      { path: '\\EFI\\redhat\\shimx64.efi', digestSha256: sha256('simcvm shim 15.8') },
      { path: '\\EFI\\redhat\\grubx64.efi', digestSha256: sha256('simcvm grub 2.06') },
      { path: '\\vmlinuz-5.14.0-427.el9.x86_64', digestSha256: sha256('simcvm kernel 5.14.0-427') },
    ],
    grubCommands: ['set root=hd0,gpt3', 'linux /vmlinuz-5.14.0-427.el9.x86_64 root=UUID=0b6a ro console=ttyS0', 'initrd /initramfs-5.14.0-427.el9.x86_64.img'],
    kernelCmdline: '/vmlinuz-5.14.0-427.el9.x86_64 root=UUID=0b6a ro console=ttyS0 ignition.platform.id=azure',
    ...over,
  };
}

/** Creates a simulated CVM: signer, vTPM, and a boot whose event log is extended into the vTPM. */
export async function createSimCvm(opts: SimCvmOptions): Promise<SimCvm> {
  const tee = opts.tee;
  const nodeName = opts.nodeName ?? 'sim-node-0';
  const now = opts.now ?? new Date();
  const from = opts.pkiFrom?.signer;
  const signer: SignerState = {};
  signer.certs = from?.certs ?? {
    pk: await selfSignedCertDer('CN=joinguard simcvm PK'),
    kek: await selfSignedCertDer('CN=joinguard simcvm KEK'),
    db: await selfSignedCertDer('CN=joinguard simcvm db'),
  };
  const product = opts.snp?.product ?? 'milan';
  const tcb = opts.snp?.reportedTcb ?? DEFAULT_TCB;
  if (tee === 'snp') signer.snp = await snpSigner(product, tcb, from?.snp && from.snp.tcb === tcb ? from.snp : undefined);
  else signer.tdx = await tdxSigner(now, from?.tdx);

  const boot = defaultBoot(signer.certs, opts.boot);
  const events = bootEvents(boot);
  const eventLog = encodeEventLog(events);
  const vtpm = opts.vtpm === 'software' ? softwareVtpm() : await swtpmVtpm(opts.swtpmTemplateDir ? { templateDir: opts.swtpmTemplateDir } : {});
  try {
    for (const ev of events) vtpm.extend(ev.pcr, eventDigests(ev));
  } catch (e) {
    await vtpm.close();
    throw e;
  }
  const replayed = replayEvents(events);

  const measurement = opts.snp?.measurement ?? new Uint8Array(createHash('sha384').update(`simcvm measurement ${product}`).digest());
  const mrTd = opts.tdx?.mrTd ?? new Uint8Array(createHash('sha384').update('simcvm mrtd').digest());
  const rtmr0 = new Uint8Array(createHash('sha384').update('simcvm rtmr0').digest());
  const tdAttributes = opts.tdx?.tdAttributes ?? new Uint8Array(8);
  const { pub: teeKey, priv: teePrivate } = teeKeyPair();
  const privJwk = teePrivate.export({ format: 'jwk' });
  const kubeletKeySha256 = sha256(`kubelet key of ${nodeName}`);
  const quotedPcrs = Array.from({ length: 24 }, (_, i) => i);

  const trust: SimTrust = { snpRootsPem: [], tdxRootsPem: [] };
  if (signer.snp) trust.snpRootsPem.push(`${signer.snp.auth.ask.pem}\n${signer.snp.auth.ark.pem}\n`);
  if (signer.tdx) {
    trust.tdxRootsPem.push(signer.tdx.pki.rootPem);
    trust.tdxCollateral = signer.tdx.collateral;
  }

  function hardwareReport(reportData: Uint8Array): { report: string; certs?: Record<string, string> } {
    if (signer.snp) {
      const s = signer.snp;
      const report = makeTestReport(
        {
          product: s.product,
          chipId: s.chipId,
          reportedTcb: s.tcb,
          reportData,
          measurement,
          policy: opts.snp?.policy ?? 0x30000n,
          ...(opts.snp?.hostData ? { hostData: opts.snp.hostData } : {}),
          ...(opts.snp?.vmpl !== undefined ? { vmpl: opts.snp.vmpl } : {}),
        },
        s.vcek.privateKey,
      );
      return { report: Buffer.from(report).toString('base64'), certs: { vcek: s.vcek.pem } };
    }
    const t = signer.tdx!;
    const quote = buildQuote({ pck: t.pck, body: { teeTcbSvn: t.platform.teeTcbSvn, reportData, mrTd, rtmr0, tdAttributes } });
    return { report: Buffer.from(quote).toString('base64') };
  }

  function tamperedLog(kind: SimTamper['eventLog']): Uint8Array {
    const changed: SimEvent[] = events.map((e) => ({ ...e }));
    if (kind === 'bootAppDigest') {
      const i = changed.findIndex((e) => e.type === 0x80000003);
      const d = eventDigests(changed[i]!);
      changed[i] = { ...changed[i]!, digests: { sha1: d.sha1, sha256: new Uint8Array(createHash('sha256').update('another shim').digest()) } };
    } else {
      // The text changes but the extended digests stay: replay still matches, the content no longer does.
      const i = changed.findIndex((e) => e.type === 0xd && Buffer.from(e.data).toString('latin1').startsWith('kernel_cmdline: '));
      changed[i] = { ...changed[i]!, digests: eventDigests(changed[i]!), data: Buffer.from(`kernel_cmdline: ${boot.kernelCmdline} init=/bin/sh\0`, 'latin1') };
    }
    return encodeEventLog(changed);
  }

  const sim: SimCvm = {
    tee,
    nodeName,
    vtpm,
    trust,
    boot,
    eventLog,
    signer,
    async evidence(o: SimEvidenceOptions = {}): Promise<Evidence> {
      const t = o.tamper ?? {};
      const nonceBytes = typeof o.nonce === 'string' ? fromB64url(o.nonce, 'SIMCVM_BAD_NONCE', 'nonce') : (o.nonce ?? new Uint8Array(randomBytes(32)));
      const key = t.teeKeyWithPrivate ? ({ ...teeKey, d: privJwk.d! } as TeeKeyJwk) : teeKey;
      const runtimeData: RuntimeData = {
        teeKey: key,
        kubeletKeySha256,
        nodeName,
        purpose: 'join',
        akPublicSha256: t.akPublicSha256 ?? sha256(vtpm.akPublic),
        ...o.runtimeData,
      };
      if (t.omitAkPublicSha256) delete runtimeData.akPublicSha256;
      const d = bindingDigest(nonceBytes, runtimeData);
      const hw = hardwareReport(t.reportData ?? d);
      const q = vtpm.quote(t.extraData ?? tpmExtraData(d), quotedPcrs);
      const pcrs = { ...q.pcrs };
      if (t.pcr) pcrs[String(t.pcr.index)] = t.pcr.value;
      return {
        nonce: toB64url(nonceBytes),
        tee,
        runtimeData: t.runtimeDataAfterBinding ? { ...runtimeData, ...t.runtimeDataAfterBinding } : runtimeData,
        hardware: hw,
        tpm: {
          quote: Buffer.from(q.quoted).toString('base64'),
          signature: Buffer.from(q.signature).toString('base64'),
          pcrs: { sha256: pcrs },
          akPublic: Buffer.from(vtpm.akPublic).toString('base64'),
        },
        eventLog: Buffer.from(t.eventLog ? tamperedLog(t.eventLog) : eventLog).toString('base64'),
      };
    },
    goodPolicy(): Policy {
      const pcrs: Record<string, string[]> = {};
      for (const pcr of [0, 4, 7, 8]) pcrs[String(pcr)] = [toHex(replayed.sha256.get(pcr)!)];
      const ref: NonNullable<Policy['referenceValues']>[number] = {
        id: `simcvm-${tee}`,
        version: '1',
        description: `reference values of the simulated ${tee} CVM ${nodeName}`,
        boot: {
          bootApps: boot.bootApps.map((a) => a.digestSha256),
          pk: { certSha256: boot.pk.map((c) => sha256(c)) },
          kek: { certSha256: boot.kek.map((c) => sha256(c)) },
          db: { certSha256: boot.db.map((c) => sha256(c)) },
          dbx: { hashes: [...boot.dbx] },
          kernelCmdline: [boot.kernelCmdline],
        },
        pcrs: { sha256: pcrs },
      };
      if (tee === 'snp') ref.snp = { measurement: [toHex(measurement)] };
      else ref.tdx = { mrTd: [toHex(mrTd)], rtmr0: [toHex(rtmr0)] };
      return {
        apiVersion: POLICY_API_VERSION,
        kind: POLICY_KIND,
        name: `simcvm-${tee}`,
        description: 'accepts the simulated CVM of @joinguard/simcvm (test roots only)',
        tee: { allowed: [tee] },
        ...(tee === 'snp' ? { snp: { guestPolicy: { allowDebug: false, allowMigrateMa: false, allowSmt: true }, minimumTcb: { ...DEFAULT_TCB } } } : {}),
        ...(tee === 'tdx' ? { tdx: { allowedTcbStatuses: ['UpToDate'], allowDebug: false } } : {}),
        tpm: { requiredBanks: ['sha256'] },
        boot: { requireSecureBoot: true, requireVerifiedEvents: true, kernelCmdline: { forbidden: ['init=', 'systemd\\.debug-shell'] } },
        referenceValues: [ref],
      };
    },
    writeTrust(dir: string) {
      mkdirSync(dir, { recursive: true });
      const out: { snpRootsPem?: string; tdxRootPem?: string; tdxCollateralDir?: string } = {};
      if (trust.snpRootsPem.length > 0) writeFileSync((out.snpRootsPem = join(dir, 'snp-roots.pem')), trust.snpRootsPem.join('\n'));
      if (trust.tdxRootsPem.length > 0) writeFileSync((out.tdxRootPem = join(dir, 'tdx-root.pem')), trust.tdxRootsPem[0]!);
      if (trust.tdxCollateral && signer.tdx) {
        out.tdxCollateralDir = join(dir, 'tdx-collateral');
        mkdirSync(out.tdxCollateralDir, { recursive: true });
        writeCollateralBundle(out.tdxCollateralDir, signer.tdx.platform.fmspc, 'platform', trust.tdxCollateral);
      }
      return out;
    },
    close: () => vtpm.close(),
  };
  return sim;
}
