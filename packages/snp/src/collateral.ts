import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { JoinguardError, parseRetryAfter, toHex } from '@joinguard/core';
import { SnpErrorCode } from './errors.js';
import { decodeTcb, kdsProductName, tcbLayoutFor, type SnpProduct, type TcbVersion } from './tcb.js';
import { certificatesFromBytes } from './cert.js';

export type KdsKeyKind = 'vcek' | 'vlek';

/**
 * Where SNP collateral comes from. The verifier depends on this interface only; KdsClient is the AMD KDS
 * implementation, and a test or an offline bundle can provide another.
 */
export interface SnpCollateralSource {
  /** The VCEK (DER) for a chip and reported TCB. */
  vcek(product: SnpProduct, chipId: Uint8Array, tcb: TcbVersion): Promise<Uint8Array>;
  /** The ASK (or ASVK) and ARK, PEM, as KDS serves them. */
  certChain(product: SnpProduct, kind: KdsKeyKind): Promise<Uint8Array>;
  /** The ARK's CRL (DER). */
  crl(product: SnpProduct, kind: KdsKeyKind): Promise<Uint8Array>;
}

export interface KdsClientOptions {
  /** Default https://kdsintf.amd.com. */
  baseUrl?: string;
  /** Responses are kept here and served from here before the network is asked. */
  cacheDir?: string;
  /** Never touch the network: serve from the cache or fail with SNP_KDS_OFFLINE_MISS. */
  offline?: boolean;
  fetch?: typeof globalThis.fetch;
  /** Retries after 429/503 (default 3). */
  maxRetries?: number;
  /** Longest Retry-After honoured (default 30 s); a longer one fails at once with SNP_KDS_RATE_LIMITED. */
  maxRetryAfterMs?: number;
  /** Per-request timeout (default 15 s). */
  timeoutMs?: number;
  /** How long a cached CRL is served before it is fetched again (default 24 h); VCEKs and chains do not age. */
  crlMaxAgeMs?: number;
  sleep?: (ms: number) => Promise<void>;
  clock?: () => number;
}

const KDS_BASE = 'https://kdsintf.amd.com';

function kdsError(code: string, message: string, details: Record<string, unknown>, kind: 'input' | 'internal' | 'rejected' = 'internal'): JoinguardError {
  return new JoinguardError(code, message, details, { kind });
}

export { parseRetryAfter };

/** KDS paths (AMD "Key Distribution Service" interface, 57230). */
export function kdsVcekPath(product: SnpProduct, chipId: Uint8Array, tcb: TcbVersion): string {
  // Turin VCEKs are keyed by the first 8 bytes of CHIP_ID and carry an FMC SPL.
  const hwid = product === 'turin' ? chipId.subarray(0, 8) : chipId;
  const q = product === 'turin' ? `fmcSPL=${tcb.fmc ?? 0}&blSPL=${tcb.bootloader}&teeSPL=${tcb.tee}&snpSPL=${tcb.snp}&ucodeSPL=${tcb.microcode}` : `blSPL=${tcb.bootloader}&teeSPL=${tcb.tee}&snpSPL=${tcb.snp}&ucodeSPL=${tcb.microcode}`;
  return `/vcek/v1/${kdsProductName(product)}/${toHex(hwid)}?${q}`;
}

export function kdsCertChainPath(product: SnpProduct, kind: KdsKeyKind): string {
  return `/${kind}/v1/${kdsProductName(product)}/cert_chain`;
}

export function kdsCrlPath(product: SnpProduct, kind: KdsKeyKind): string {
  return `/${kind}/v1/${kdsProductName(product)}/crl`;
}

export class KdsClient implements SnpCollateralSource {
  private readonly baseUrl: string;
  private readonly fetchFn: typeof globalThis.fetch;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly clock: () => number;

  constructor(private readonly opts: KdsClientOptions = {}) {
    this.baseUrl = (opts.baseUrl ?? KDS_BASE).replace(/\/+$/, '');
    this.fetchFn = opts.fetch ?? globalThis.fetch;
    this.sleep = opts.sleep ?? ((ms) => new Promise((res) => setTimeout(res, ms)));
    this.clock = opts.clock ?? (() => Date.now());
  }

  vcek(product: SnpProduct, chipId: Uint8Array, tcb: TcbVersion): Promise<Uint8Array> {
    return this.get(kdsVcekPath(product, chipId, tcb), 'der-cert', undefined);
  }

  certChain(product: SnpProduct, kind: KdsKeyKind): Promise<Uint8Array> {
    return this.get(kdsCertChainPath(product, kind), 'pem-chain', undefined);
  }

  crl(product: SnpProduct, kind: KdsKeyKind): Promise<Uint8Array> {
    return this.get(kdsCrlPath(product, kind), 'der-crl', this.opts.crlMaxAgeMs ?? 24 * 3600 * 1000);
  }

  /** The cache file of a KDS path (query characters made file-name safe). */
  cachePath(path: string): string | undefined {
    if (!this.opts.cacheDir) return undefined;
    return join(this.opts.cacheDir, path.replace(/^\/+/, '').replace(/[?&=]/g, '_'));
  }

  private async readCache(file: string, maxAgeMs: number | undefined, ignoreAge: boolean): Promise<Uint8Array | undefined> {
    try {
      const st = await stat(file);
      if (!ignoreAge && maxAgeMs !== undefined && this.clock() - st.mtimeMs > maxAgeMs) return undefined;
      return new Uint8Array(await readFile(file));
    } catch {
      return undefined;
    }
  }

  private async writeCache(file: string, data: Uint8Array): Promise<void> {
    await mkdir(dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    await writeFile(tmp, data);
    await rename(tmp, file);
  }

  private async get(path: string, shape: 'der-cert' | 'pem-chain' | 'der-crl', maxAgeMs: number | undefined): Promise<Uint8Array> {
    const file = this.cachePath(path);
    if (file) {
      const cached = await this.readCache(file, maxAgeMs, this.opts.offline === true);
      if (cached) return cached;
    }
    if (this.opts.offline) {
      throw kdsError(SnpErrorCode.KDS_OFFLINE_MISS, `offline mode: ${path} is not in the KDS cache${file ? ` (${file})` : ''}`, { path, cacheFile: file }, 'input');
    }
    const body = await this.fetchWithRetry(path);
    checkShape(body, shape, path);
    if (file) await this.writeCache(file, body);
    return body;
  }

  private async fetchWithRetry(path: string): Promise<Uint8Array> {
    const url = this.baseUrl + path;
    const maxRetries = this.opts.maxRetries ?? 3;
    const maxWait = this.opts.maxRetryAfterMs ?? 30_000;
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await this.fetchFn(url, { signal: AbortSignal.timeout(this.opts.timeoutMs ?? 15_000) });
      } catch (e) {
        throw kdsError(SnpErrorCode.KDS_NETWORK_ERROR, `AMD KDS request ${url} failed: ${e instanceof Error ? e.message : String(e)}`, { url });
      }
      if (res.status === 200) return new Uint8Array(await res.arrayBuffer());
      await res.arrayBuffer().catch(() => undefined);
      if (res.status === 429 || res.status === 503) {
        const wait = parseRetryAfter(res.headers.get('retry-after'), this.clock()) ?? Math.min(maxWait, 1000 * 2 ** attempt);
        if (attempt >= maxRetries || wait > maxWait) {
          throw kdsError(SnpErrorCode.KDS_RATE_LIMITED, `AMD KDS ${url} answered ${res.status} ${attempt + 1} times (Retry-After ${res.headers.get('retry-after') ?? 'absent'})`, { url, status: res.status, attempts: attempt + 1, retryAfterMs: wait });
        }
        await this.sleep(wait);
        continue;
      }
      throw kdsError(SnpErrorCode.KDS_HTTP_ERROR, `AMD KDS ${url} answered HTTP ${res.status}`, { url, status: res.status });
    }
  }
}

function checkShape(body: Uint8Array, shape: 'der-cert' | 'pem-chain' | 'der-crl', path: string): void {
  const bad = (why: string) => kdsError(SnpErrorCode.KDS_BAD_RESPONSE, `AMD KDS ${path}: ${why}`, { path, length: body.length });
  if (shape === 'pem-chain') {
    let n = 0;
    try {
      n = certificatesFromBytes(body, 'KDS cert_chain').length;
    } catch {
      n = 0;
    }
    if (n < 2) throw bad('cert_chain is not two PEM certificates');
    return;
  }
  if (body.length < 16 || body[0] !== 0x30) throw bad(`expected DER, got ${body.length} bytes`);
}

/**
 * Gathers the collateral for a decoded report from a source: the VCEK for its CHIP_ID and REPORTED_TCB
 * (a VLEK cannot be fetched and must be given), the chain and, when asked, the ARK's CRL.
 */
export async function collateralForReport(
  report: { chipId: Uint8Array; reportedTcb: bigint; signingKey: number },
  product: SnpProduct,
  source: SnpCollateralSource,
  opts: { vlek?: Uint8Array; withCrl?: boolean } = {},
): Promise<{ vcek: Uint8Array; chain: Uint8Array; crl?: Uint8Array }> {
  const kind: KdsKeyKind = report.signingKey === 1 ? 'vlek' : 'vcek';
  let leaf: Uint8Array;
  if (kind === 'vlek') {
    if (!opts.vlek) throw kdsError(SnpErrorCode.KDS_OFFLINE_MISS, 'the report is signed by a VLEK, which AMD KDS does not serve: the host must provide it', { signingKey: 'vlek' }, 'input');
    leaf = opts.vlek;
  } else {
    leaf = await source.vcek(product, report.chipId, decodeTcb(report.reportedTcb, tcbLayoutFor(product)));
  }
  const out: { vcek: Uint8Array; chain: Uint8Array; crl?: Uint8Array } = { vcek: leaf, chain: await source.certChain(product, kind) };
  if (opts.withCrl) out.crl = await source.crl(product, kind);
  return out;
}
