import { mkdirSync, writeFileSync, existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import * as px509 from './x509.js';
import { inputError, reject, readInputFile, fromHex, JoinguardError, parseRetryAfter } from '@joinguard/core';
import type { CollateralBundle, PckCa } from './verify.js';

/*
 * Collateral from Intel PCS (API v4) and the offline bundle directory (README.md "Offline collateral").
 * Nothing here is called by verify.ts: verification takes a CollateralBundle, wherever it came from.
 */

export const PCS_BASE_URL = 'https://api.trustedservices.intel.com';
const MAX_COLLATERAL_FILE = 1024 * 1024;

export const BUNDLE_FILES = {
  rootCaCrl: 'root_ca_crl.der',
  pckCrl: (ca: PckCa) => `pck_crl_${ca}.der`,
  pckCrlIssuerChain: (ca: PckCa) => `pck_crl_${ca}_issuer_chain.pem`,
  tcbInfo: (fmspc: string) => `tcb_info_${fmspc.toLowerCase()}.json`,
  tcbInfoIssuerChain: 'tcb_info_issuer_chain.pem',
  qeIdentity: 'qe_identity.json',
  qeIdentityIssuerChain: 'qe_identity_issuer_chain.pem',
} as const;

function checkFmspc(fmspc: string): string {
  if (!/^[0-9a-fA-F]{12}$/.test(fmspc)) throw inputError('TDX_COLLATERAL_BAD_REQUEST', `FMSPC ${JSON.stringify(fmspc)} is not 6 bytes of hex`, { fmspc });
  return fmspc.toLowerCase();
}

function readPart(dir: string, file: string): Uint8Array {
  const path = join(dir, file);
  if (!existsSync(path)) {
    throw inputError('TDX_COLLATERAL_MISSING', `collateral directory ${dir} has no ${file}`, { dir, file });
  }
  return readInputFile(path, 'collateral file', MAX_COLLATERAL_FILE);
}

const text = (b: Uint8Array): string => Buffer.from(b).toString('utf8');

/** Reads the collateral for one platform (FMSPC) and PCK CA from an offline bundle directory. */
export function readCollateralBundle(dir: string, fmspc: string, ca: PckCa): CollateralBundle {
  const f = checkFmspc(fmspc);
  return {
    tcbInfo: text(readPart(dir, BUNDLE_FILES.tcbInfo(f))),
    tcbInfoIssuerChain: text(readPart(dir, BUNDLE_FILES.tcbInfoIssuerChain)),
    qeIdentity: text(readPart(dir, BUNDLE_FILES.qeIdentity)),
    qeIdentityIssuerChain: text(readPart(dir, BUNDLE_FILES.qeIdentityIssuerChain)),
    pckCrl: readPart(dir, BUNDLE_FILES.pckCrl(ca)),
    pckCrlIssuerChain: text(readPart(dir, BUNDLE_FILES.pckCrlIssuerChain(ca))),
    rootCaCrl: readPart(dir, BUNDLE_FILES.rootCaCrl),
  };
}

function atomicWrite(path: string, data: Uint8Array | string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/** Writes a bundle in the offline directory format (the PCS client's cache uses the same layout). */
export function writeCollateralBundle(dir: string, fmspc: string, ca: PckCa, b: CollateralBundle): void {
  const f = checkFmspc(fmspc);
  mkdirSync(dir, { recursive: true });
  atomicWrite(join(dir, BUNDLE_FILES.tcbInfo(f)), b.tcbInfo);
  atomicWrite(join(dir, BUNDLE_FILES.tcbInfoIssuerChain), b.tcbInfoIssuerChain);
  atomicWrite(join(dir, BUNDLE_FILES.qeIdentity), b.qeIdentity);
  atomicWrite(join(dir, BUNDLE_FILES.qeIdentityIssuerChain), b.qeIdentityIssuerChain);
  atomicWrite(join(dir, BUNDLE_FILES.pckCrl(ca)), b.pckCrl);
  atomicWrite(join(dir, BUNDLE_FILES.pckCrlIssuerChain(ca)), b.pckCrlIssuerChain);
  atomicWrite(join(dir, BUNDLE_FILES.rootCaCrl), b.rootCaCrl);
}

/** The earliest nextUpdate of a bundle's parts: after it, the bundle must be fetched again. */
export function bundleNextUpdate(b: CollateralBundle): Date {
  const dates: Date[] = [];
  for (const [t, member] of [[b.tcbInfo, 'tcbInfo'], [b.qeIdentity, 'enclaveIdentity']] as const) {
    try {
      const v = (JSON.parse(t) as Record<string, { nextUpdate?: string }>)[member];
      dates.push(new Date(v?.nextUpdate ?? 0));
    } catch {
      dates.push(new Date(0));
    }
  }
  for (const der of [b.pckCrl, b.rootCaCrl]) {
    try {
      dates.push(new px509.X509Crl(new Uint8Array(der)).nextUpdate ?? new Date(0));
    } catch {
      dates.push(new Date(0));
    }
  }
  return new Date(Math.min(...dates.map((d) => (Number.isNaN(d.getTime()) ? 0 : d.getTime()))));
}

/**
 * Where TDX collateral comes from. Verification takes a CollateralBundle and never fetches; a verifier
 * depends on this interface only. PcsClient (Intel PCS v4, with cache and offline mode) implements it, and
 * an offline bundle directory is `readCollateralBundle`.
 */
export interface TdxCollateralSource {
  getCollateral(fmspc: string, ca: PckCa, now: Date): Promise<CollateralBundle>;
}

export type FetchLike = (url: string, init?: { signal?: AbortSignal }) => Promise<{ status: number; headers: { get(name: string): string | null }; arrayBuffer(): Promise<ArrayBuffer> }>;

export interface PcsClientOptions {
  /** Default https://api.trustedservices.intel.com (tests point it at a loopback server). */
  baseUrl?: string;
  fetch?: FetchLike;
  /** Directory cache in the offline bundle layout; fresh entries are served from it without a request. */
  cacheDir?: string;
  /**
   * Never touch the network: `getCollateral` serves the cache directory (an offline bundle) whatever its
   * nextUpdate (verification at the injected time decides whether it is still valid); a missing file is
   * TDX_COLLATERAL_MISSING, and the single-item getters fail with TDX_PCS_OFFLINE.
   */
  offline?: boolean;
  /** Retries after 429 or 503 (default 3). */
  maxRetries?: number;
  /** Longest Retry-After honoured (default 30 s); a longer one fails at once. */
  maxRetryAfterMs?: number;
  /** Per-request timeout (default 15 s). */
  timeoutMs?: number;
  sleep?: (ms: number) => Promise<void>;
  clock?: () => number;
}

export { parseRetryAfter };

/**
 * Intel PCS v4 client for TDX collateral: TCB info by FMSPC, TD QE identity, PCK CRL, Root CA CRL. It
 * honours 429/503 with Retry-After (bounded retries and wait), caches in the offline bundle layout and
 * has an offline mode that never touches the network.
 */
export class PcsClient implements TdxCollateralSource {
  private readonly baseUrl: string;
  private readonly fetchImpl: FetchLike;
  private readonly cacheDir?: string;
  private readonly memory = new Map<string, { bundle: CollateralBundle; nextUpdate: Date }>();
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly clock: () => number;
  /** Number of HTTP requests made (for tests and metrics). */
  requests = 0;

  constructor(private readonly opts: PcsClientOptions = {}) {
    this.baseUrl = (opts.baseUrl ?? PCS_BASE_URL).replace(/\/+$/, '');
    this.fetchImpl = opts.fetch ?? ((url, init) => fetch(url, init));
    this.cacheDir = opts.cacheDir;
    this.sleep = opts.sleep ?? ((ms) => new Promise((res) => setTimeout(res, ms)));
    this.clock = opts.clock ?? (() => Date.now());
  }

  /** One request, retried after 429/503 as Retry-After says (bounded); other statuses fail at once. */
  private async fetchWithRetry(url: string): Promise<{ res: Awaited<ReturnType<FetchLike>>; body: Uint8Array }> {
    const maxRetries = this.opts.maxRetries ?? 3;
    const maxWait = this.opts.maxRetryAfterMs ?? 30_000;
    for (let attempt = 0; ; attempt++) {
      this.requests++;
      let res: Awaited<ReturnType<FetchLike>>;
      let body: Uint8Array;
      try {
        res = await this.fetchImpl(url, { signal: AbortSignal.timeout(this.opts.timeoutMs ?? 15_000) });
        body = new Uint8Array(await res.arrayBuffer());
      } catch (e) {
        throw new JoinguardError('TDX_PCS_UNREACHABLE', `Intel PCS request ${url} failed: ${(e as Error).message}`, { url }, { kind: 'internal', cause: e });
      }
      if (res.status === 429 || res.status === 503) {
        const header = res.headers.get('retry-after');
        const wait = parseRetryAfter(header, this.clock()) ?? Math.min(maxWait, 1000 * 2 ** attempt);
        if (attempt >= maxRetries || wait > maxWait) {
          throw new JoinguardError(res.status === 429 ? 'TDX_PCS_RATE_LIMITED' : 'TDX_PCS_HTTP_ERROR', `Intel PCS request ${url} answered HTTP ${res.status} ${attempt + 1} times (Retry-After ${header ?? 'absent'})`, {
            url, status: res.status, attempts: attempt + 1, retryAfterMs: wait,
          }, { kind: 'internal' });
        }
        await this.sleep(wait);
        continue;
      }
      return { res, body };
    }
  }

  private async get(path: string, chainHeader?: string): Promise<{ body: Uint8Array; issuerChain?: string }> {
    const url = `${this.baseUrl}${path}`;
    if (this.opts.offline) {
      throw new JoinguardError('TDX_PCS_OFFLINE', `offline mode: Intel PCS is not asked for ${path}`, { path }, { kind: 'input' });
    }
    const { res, body } = await this.fetchWithRetry(url);
    if (res.status !== 200) {
      throw new JoinguardError('TDX_PCS_HTTP_ERROR', `Intel PCS request ${url} answered HTTP ${res.status}`, { url, status: res.status }, { kind: 'internal' });
    }
    if (body.length > MAX_COLLATERAL_FILE) throw reject('TDX_COLLATERAL_MALFORMED', `Intel PCS answer for ${url} is ${body.length} bytes`, { url });
    if (!chainHeader) return { body };
    const raw = res.headers.get(chainHeader);
    if (!raw) throw reject('TDX_COLLATERAL_MALFORMED', `Intel PCS answer for ${url} lacks the ${chainHeader} header`, { url, header: chainHeader });
    let issuerChain: string;
    try {
      issuerChain = decodeURIComponent(raw);
    } catch {
      throw reject('TDX_COLLATERAL_MALFORMED', `${chainHeader} header is not URL-encoded PEM`, { url });
    }
    return { body, issuerChain };
  }

  async getTcbInfo(fmspc: string): Promise<{ tcbInfo: string; issuerChain: string }> {
    const r = await this.get(`/tdx/certification/v4/tcb?fmspc=${checkFmspc(fmspc)}`, 'TCB-Info-Issuer-Chain');
    return { tcbInfo: text(r.body), issuerChain: r.issuerChain! };
  }

  async getQeIdentity(): Promise<{ qeIdentity: string; issuerChain: string }> {
    const r = await this.get('/tdx/certification/v4/qe/identity', 'SGX-Enclave-Identity-Issuer-Chain');
    return { qeIdentity: text(r.body), issuerChain: r.issuerChain! };
  }

  async getPckCrl(ca: PckCa): Promise<{ crl: Uint8Array; issuerChain: string }> {
    const r = await this.get(`/sgx/certification/v4/pckcrl?ca=${ca}&encoding=der`, 'SGX-PCK-CRL-Issuer-Chain');
    return { crl: derOrHex(r.body), issuerChain: r.issuerChain! };
  }

  async getRootCaCrl(): Promise<Uint8Array> {
    return derOrHex((await this.get('/sgx/certification/v4/rootcacrl')).body);
  }

  /**
   * The collateral for one platform, from memory, then the cache directory, then PCS; a cached bundle
   * is used only while `now` is before its earliest nextUpdate. Offline, the cache directory is the
   * only source and is served as it is (see `offline`).
   */
  async getCollateral(fmspc: string, ca: PckCa, now: Date): Promise<CollateralBundle> {
    const f = checkFmspc(fmspc);
    const key = `${f}/${ca}`;
    if (this.opts.offline) {
      if (!this.cacheDir) throw inputError('TDX_COLLATERAL_MISSING', 'offline mode without a collateral directory', { fmspc: f, ca });
      return readCollateralBundle(this.cacheDir, f, ca);
    }
    const mem = this.memory.get(key);
    if (mem && now < mem.nextUpdate) return mem.bundle;
    if (this.cacheDir) {
      try {
        const b = readCollateralBundle(this.cacheDir, f, ca);
        const nextUpdate = bundleNextUpdate(b);
        if (now < nextUpdate) {
          this.memory.set(key, { bundle: b, nextUpdate });
          return b;
        }
      } catch (e) {
        if (!(e instanceof JoinguardError) || e.code !== 'TDX_COLLATERAL_MISSING') throw e;
      }
    }
    const [tcb, qe, pck, root] = await Promise.all([this.getTcbInfo(f), this.getQeIdentity(), this.getPckCrl(ca), this.getRootCaCrl()]);
    const bundle: CollateralBundle = {
      tcbInfo: tcb.tcbInfo,
      tcbInfoIssuerChain: tcb.issuerChain,
      qeIdentity: qe.qeIdentity,
      qeIdentityIssuerChain: qe.issuerChain,
      pckCrl: pck.crl,
      pckCrlIssuerChain: pck.issuerChain,
      rootCaCrl: root,
    };
    this.memory.set(key, { bundle, nextUpdate: bundleNextUpdate(bundle) });
    if (this.cacheDir) writeCollateralBundle(this.cacheDir, f, ca, bundle);
    return bundle;
  }
}

/** PCS has served CRLs both as DER and as hex text of the DER; accept either. */
function derOrHex(body: Uint8Array): Uint8Array {
  if (body.length > 0 && body[0] === 0x30) return body;
  const t = Buffer.from(body).toString('latin1').trim();
  return fromHex(t) ?? body;
}
