import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readVector, readVectorText } from '@joinguard/core/testing';
import type { JoinguardError } from '@joinguard/core';
import { PcsClient, verifyCollateral, readCollateralBundle, bundleNextUpdate, parseRetryAfter, type TdxCollateralSource } from '../src/index.js';

const FMSPC = '50806f000000';
const requests: string[] = [];
let server: Server;
let base = '';
/** Scripted answers before the real ones: each entry is one HTTP status with its Retry-After header (if any). */
let script: { status: number; retryAfter?: string }[] = [];

beforeAll(async () => {
  // A loopback stand-in for Intel PCS v4 serving the published collateral with PCS's headers (URL-encoded chains).
  server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const scripted = script.shift();
    if (scripted) {
      res.writeHead(scripted.status, scripted.retryAfter === undefined ? {} : { 'Retry-After': scripted.retryAfter }).end();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://x');
    const send = (body: Uint8Array | string, headers: Record<string, string> = {}) => {
      res.writeHead(200, headers);
      res.end(body);
    };
    if (url.pathname === '/tdx/certification/v4/tcb' && url.searchParams.get('fmspc') === FMSPC) {
      send(readVectorText('tdx/gotdxguest_v4_spr/tcbinfo_fmspc_50806f000000.json'), { 'TCB-Info-Issuer-Chain': encodeURIComponent(readVectorText('tdx/intel_roots/tcb_info_issuer_chain.pem')) });
    } else if (url.pathname === '/tdx/certification/v4/qe/identity') {
      send(readVectorText('tdx/intel_roots/qe_identity_td_qe_2023-06.json'), { 'SGX-Enclave-Identity-Issuer-Chain': encodeURIComponent(readVectorText('tdx/intel_roots/qe_identity_issuer_chain.pem')) });
    } else if (url.pathname === '/sgx/certification/v4/pckcrl' && url.searchParams.get('ca') === 'platform') {
      send(readVector('tdx/intel_roots/pck_platform_crl.der'), { 'SGX-PCK-CRL-Issuer-Chain': encodeURIComponent(readVectorText('tdx/intel_roots/pck_crl_issuer_chain.pem')) });
    } else if (url.pathname === '/sgx/certification/v4/rootcacrl') {
      // PCS has served this one as hex text of the DER.
      send(Buffer.from(readVector('tdx/intel_roots/root_ca_crl.der')).toString('hex'));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

describe('Intel PCS v4 client against a loopback PCS', () => {
  it('fetches TCB info, QE identity, PCK CRL and Root CA CRL with their issuer chains; the result verifies', async () => {
    requests.length = 0;
    const pcs: TdxCollateralSource = new PcsClient({ baseUrl: base });
    const bundle = await pcs.getCollateral(FMSPC, 'platform', new Date('2023-07-01T00:00:00Z'));
    expect(requests.sort()).toEqual(['/sgx/certification/v4/pckcrl?ca=platform&encoding=der', '/sgx/certification/v4/rootcacrl', `/tdx/certification/v4/qe/identity`, `/tdx/certification/v4/tcb?fmspc=${FMSPC}`].sort());
    expect(Buffer.from(bundle.rootCaCrl).equals(Buffer.from(readVector('tdx/intel_roots/root_ca_crl.der')))).toBe(true);
    expect(bundle.tcbInfoIssuerChain).toBe(readVectorText('tdx/intel_roots/tcb_info_issuer_chain.pem'));
    const vc = await verifyCollateral(bundle, { now: new Date('2023-07-01T00:00:00Z') });
    expect(vc.tcbInfo.fmspc).toBe(FMSPC);
  });

  it('serves from memory and from the cache directory while fresh, refetches after nextUpdate', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'jg-pcs-cache-'));
    const now = new Date('2023-07-01T00:00:00Z');
    const pcs = new PcsClient({ baseUrl: base, cacheDir });
    await pcs.getCollateral(FMSPC, 'platform', now);
    expect(pcs.requests).toBe(4);
    await pcs.getCollateral(FMSPC, 'platform', now);
    expect(pcs.requests).toBe(4);
    expect(readdirSync(cacheDir).sort()).toEqual(['pck_crl_platform.der', 'pck_crl_platform_issuer_chain.pem', 'qe_identity.json', 'qe_identity_issuer_chain.pem', 'root_ca_crl.der', `tcb_info_${FMSPC}.json`, 'tcb_info_issuer_chain.pem']);
    // A second client (a restarted verifier) reads the directory: no request.
    const again = new PcsClient({ baseUrl: base, cacheDir });
    const b = await again.getCollateral(FMSPC, 'platform', now);
    expect(again.requests).toBe(0);
    // The cache directory is an offline bundle.
    expect(readCollateralBundle(cacheDir, FMSPC, 'platform').tcbInfo).toBe(b.tcbInfo);
    // The earliest nextUpdate is the PCK CRL's / QE identity's (2023-07-08): after it, fetch again.
    expect(bundleNextUpdate(b).toISOString()).toBe('2023-07-08T07:24:59.000Z');
    await again.getCollateral(FMSPC, 'platform', new Date('2023-07-09T00:00:00Z'));
    expect(again.requests).toBe(4);
  });

  it('HTTP errors, unknown FMSPCs and bad arguments are reported with codes', async () => {
    const pcs = new PcsClient({ baseUrl: base, maxRetries: 0 });
    script = [{ status: 503 }];
    await expect(pcs.getQeIdentity()).rejects.toMatchObject({ code: 'TDX_PCS_HTTP_ERROR', details: { status: 503 } });
    await expect(pcs.getTcbInfo('00806f050000')).rejects.toMatchObject({ code: 'TDX_PCS_HTTP_ERROR', details: { status: 404 } });
    await expect(pcs.getTcbInfo('not-an-fmspc')).rejects.toMatchObject({ code: 'TDX_COLLATERAL_BAD_REQUEST' });
    const down = new PcsClient({ baseUrl: 'http://127.0.0.1:1' });
    await expect(down.getRootCaCrl()).rejects.toMatchObject({ code: 'TDX_PCS_UNREACHABLE' });
  });

  it('an answer without its issuer-chain header is refused', async () => {
    const pcs = new PcsClient({ fetch: async () => ({ status: 200, headers: { get: () => null }, arrayBuffer: async () => new ArrayBuffer(2) }) });
    const e = (await pcs.getTcbInfo(FMSPC).then(() => undefined, (x: unknown) => x)) as JoinguardError;
    expect(e.code).toBe('TDX_COLLATERAL_MALFORMED');
  });

  it('429 with Retry-After: waits as told (seconds or HTTP date), retries, then succeeds', async () => {
    requests.length = 0;
    const t0 = Date.parse('2023-07-01T00:00:00Z');
    script = [{ status: 429, retryAfter: '2' }, { status: 429, retryAfter: new Date(t0 + 5000).toUTCString() }];
    const waits: number[] = [];
    const pcs = new PcsClient({ baseUrl: base, sleep: async (ms) => void waits.push(ms), clock: () => t0 });
    const { tcbInfo } = await pcs.getTcbInfo(FMSPC);
    expect(tcbInfo).toContain('"tcbInfo"');
    expect(waits).toEqual([2000, 5000]);
    expect(requests).toEqual(new Array(3).fill(`/tdx/certification/v4/tcb?fmspc=${FMSPC}`));
    expect(pcs.requests).toBe(3);
  });

  it('429 beyond the retry bound or with a too-long Retry-After → TDX_PCS_RATE_LIMITED; 503 is retried too', async () => {
    script = new Array(5).fill({ status: 429, retryAfter: '1' });
    const waits: number[] = [];
    const bounded = new PcsClient({ baseUrl: base, maxRetries: 2, sleep: async (ms) => void waits.push(ms) });
    await expect(bounded.getRootCaCrl()).rejects.toMatchObject({ code: 'TDX_PCS_RATE_LIMITED', details: { status: 429, attempts: 3 } });
    expect(waits).toEqual([1000, 1000]);
    script = [{ status: 429, retryAfter: '3600' }];
    const waits2: number[] = [];
    const impatient = new PcsClient({ baseUrl: base, maxRetryAfterMs: 10_000, sleep: async (ms) => void waits2.push(ms) });
    await expect(impatient.getRootCaCrl()).rejects.toMatchObject({ code: 'TDX_PCS_RATE_LIMITED', details: { retryAfterMs: 3_600_000 } });
    expect(waits2).toEqual([]);
    script = [{ status: 503 }];
    const waits3: number[] = [];
    const patient = new PcsClient({ baseUrl: base, sleep: async (ms) => void waits3.push(ms) });
    expect(Buffer.from(await patient.getRootCaCrl()).equals(Buffer.from(readVector('tdx/intel_roots/root_ca_crl.der')))).toBe(true);
    expect(waits3).toEqual([1000]); // no Retry-After: exponential backoff from 1 s
    script = [];
  });

  it('Retry-After parsing', () => {
    expect(parseRetryAfter('7', 0)).toBe(7000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(parseRetryAfter(new Date(1_000).toUTCString(), 4_000)).toBe(0);
    expect(parseRetryAfter('later', 0)).toBeUndefined();
    expect(parseRetryAfter(null, 0)).toBeUndefined();
  });

  it('offline mode never touches the network: serves the bundle directory as it is, or fails', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'jg-pcs-offline-'));
    await new PcsClient({ baseUrl: base, cacheDir }).getCollateral(FMSPC, 'platform', new Date('2023-07-01T00:00:00Z'));
    requests.length = 0;
    const offline = new PcsClient({ baseUrl: base, cacheDir, offline: true });
    // Past every nextUpdate: still served (verification at the injected time decides), never refetched.
    const stale = await offline.getCollateral(FMSPC, 'platform', new Date('2030-01-01T00:00:00Z'));
    expect(stale.tcbInfo).toBe(readVectorText('tdx/gotdxguest_v4_spr/tcbinfo_fmspc_50806f000000.json'));
    await expect(verifyCollateral(stale, { now: new Date('2030-01-01T00:00:00Z') })).rejects.toMatchObject({ code: 'TDX_CRL_EXPIRED' });
    await expect(offline.getCollateral('00806f050000', 'platform', new Date('2023-07-01T00:00:00Z'))).rejects.toMatchObject({ code: 'TDX_COLLATERAL_MISSING', kind: 'input' });
    await expect(offline.getCollateral(FMSPC, 'processor', new Date('2023-07-01T00:00:00Z'))).rejects.toMatchObject({ code: 'TDX_COLLATERAL_MISSING' });
    await expect(new PcsClient({ baseUrl: base, offline: true }).getCollateral(FMSPC, 'platform', new Date())).rejects.toMatchObject({ code: 'TDX_COLLATERAL_MISSING' });
    await expect(offline.getQeIdentity()).rejects.toMatchObject({ code: 'TDX_PCS_OFFLINE', kind: 'input' });
    expect(requests).toEqual([]);
    expect(offline.requests).toBe(0);
  });
});
