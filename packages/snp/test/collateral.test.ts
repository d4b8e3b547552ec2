import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { readVector } from '@joinguard/core/testing';
import { isJoinguardError } from '@joinguard/core';
import { collateralForReport, decodeReport, KdsClient, kdsVcekPath, parseRetryAfter, SnpErrorCode, verifyReport } from '../src/index.js';
import { createTestAuthority, createTestCrl, issueTestLeaf, makeTestReport, type TestAuthority } from '../src/testing.js';

/** A KDS double on 127.0.0.1 serving KDS-shaped URLs from the vectors; `plan` scripts 429 answers. */
let server: Server;
let base: string;
const hits: string[] = [];
let throttle: { remaining: number; retryAfter: string } = { remaining: 0, retryAfter: '1' };
const report = readVector('snp/gosevguest_milan_v2/report.bin');
const decoded = decodeReport(report);
const vcekPath = kdsVcekPath('milan', decoded.chipId, { bootloader: 2, tee: 0, snp: 5, microcode: 68 });
let dirs: string[] = [];
/** A real (test-ARK-signed) CRL served at the Genoa CRL path, to exercise the CRL cache's ageing. */
let genoaCrl: Uint8Array = new Uint8Array(0);
/** A simulated Genoa platform whose VCEK and chain the KDS double serves too. */
let sim: { auth: TestAuthority; report: Uint8Array; vcek: Uint8Array; vcekPath: string };
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'snp-kds-'));
  dirs.push(d);
  return d;
};

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = req.url ?? '';
    hits.push(url);
    if (throttle.remaining > 0) {
      throttle.remaining--;
      res.writeHead(429, { 'Retry-After': throttle.retryAfter });
      res.end('slow down');
      return;
    }
    if (url === vcekPath) {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      res.end(readVector('snp/gosevguest_milan_v2/vcek.der'));
    } else if (url === '/vcek/v1/Milan/cert_chain') {
      res.writeHead(200, { 'Content-Type': 'application/x-pem-file' });
      res.end(readVector('snp/amd_roots/ask_ark_milan.pem'));
    } else if (url === sim.vcekPath) {
      res.writeHead(200);
      res.end(sim.vcek);
    } else if (url === '/vcek/v1/Genoa/cert_chain') {
      res.writeHead(200);
      res.end(`${sim.auth.ask.pem}\n${sim.auth.ark.pem}\n`);
    } else if (url === '/vcek/v1/Genoa/crl') {
      res.writeHead(200, { 'Content-Type': 'application/pkix-crl' });
      res.end(genoaCrl);
    } else if (url === '/vcek/v1/Milan/crl') {
      res.writeHead(200);
      res.end('not a crl');
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  const auth = await createTestAuthority({ product: 'genoa', withAsvk: false });
  genoaCrl = await createTestCrl(auth, ['1234'], new Date('2026-11-01T00:00:00Z'), new Date('2026-12-01T00:00:00Z'));
  const chipId = new Uint8Array(64).fill(0x3c);
  const tcb = { bootloader: 9, tee: 0, snp: 21, microcode: 72 };
  const leaf = await issueTestLeaf(auth, { chipId, tcb });
  sim = { auth, report: makeTestReport({ product: 'genoa', chipId, reportedTcb: tcb }, leaf.privateKey), vcek: leaf.der, vcekPath: kdsVcekPath('genoa', chipId, tcb) };
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});

async function codeOfAsync(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    if (isJoinguardError(e)) return e.code;
    throw e;
  }
  return undefined;
}

describe('AMD KDS client', () => {
  it('the VCEK URL carries the hwID and the reported TCB SPLs (Turin: 8-byte hwID and fmcSPL)', () => {
    expect(vcekPath).toBe(`/vcek/v1/Milan/${Buffer.from(decoded.chipId).toString('hex')}?blSPL=2&teeSPL=0&snpSPL=5&ucodeSPL=68`);
    const chip = new Uint8Array(64).fill(0xab);
    expect(kdsVcekPath('turin', chip, { fmc: 1, bootloader: 2, tee: 3, snp: 4, microcode: 5 })).toBe('/vcek/v1/Turin/abababababababab?fmcSPL=1&blSPL=2&teeSPL=3&snpSPL=4&ucodeSPL=5');
  });

  it('fetches VCEK and chain, writes the cache, then serves a second client from the cache alone', async () => {
    const cacheDir = tmp();
    hits.length = 0;
    const online = new KdsClient({ baseUrl: base, cacheDir });
    const c = await collateralForReport(decoded, 'milan', online);
    expect(hits).toEqual([vcekPath, '/vcek/v1/Milan/cert_chain']);
    const v = verifyReport(report, c, { now: new Date('2026-11-23T00:00:00Z'), product: 'milan' });
    expect(v.chain.ark.commonName).toBe('ARK-Milan');
    hits.length = 0;
    const offline = new KdsClient({ baseUrl: base, cacheDir, offline: true });
    const again = await collateralForReport(decoded, 'milan', offline);
    expect(hits).toEqual([]);
    expect(Buffer.from(again.vcek).equals(Buffer.from(c.vcek))).toBe(true);
  });

  it('offline mode with a cache miss fails and never touches the network', async () => {
    hits.length = 0;
    const offline = new KdsClient({ baseUrl: base, cacheDir: tmp(), offline: true });
    expect(await codeOfAsync(offline.certChain('milan', 'vcek'))).toBe(SnpErrorCode.KDS_OFFLINE_MISS);
    const noCache = new KdsClient({ baseUrl: base, offline: true });
    expect(await codeOfAsync(noCache.crl('milan', 'vcek'))).toBe(SnpErrorCode.KDS_OFFLINE_MISS);
    expect(hits).toEqual([]);
  });

  it('429 with Retry-After: waits as told, retries, then succeeds', async () => {
    hits.length = 0;
    throttle = { remaining: 2, retryAfter: '2' };
    const waits: number[] = [];
    const client = new KdsClient({ baseUrl: base, sleep: async (ms) => void waits.push(ms) });
    const chain = await client.certChain('milan', 'vcek');
    expect(Buffer.from(chain).toString()).toContain('BEGIN CERTIFICATE');
    expect(waits).toEqual([2000, 2000]);
    expect(hits.length).toBe(3);
  });

  it('429 beyond the retry bound or with a too-long Retry-After gives SNP_KDS_RATE_LIMITED', async () => {
    throttle = { remaining: 10, retryAfter: '1' };
    const waits: number[] = [];
    const client = new KdsClient({ baseUrl: base, maxRetries: 2, sleep: async (ms) => void waits.push(ms) });
    expect(await codeOfAsync(client.certChain('milan', 'vcek'))).toBe(SnpErrorCode.KDS_RATE_LIMITED);
    expect(waits).toEqual([1000, 1000]);
    throttle = { remaining: 1, retryAfter: '3600' };
    const waits2: number[] = [];
    const impatient = new KdsClient({ baseUrl: base, maxRetryAfterMs: 10_000, sleep: async (ms) => void waits2.push(ms) });
    expect(await codeOfAsync(impatient.certChain('milan', 'vcek'))).toBe(SnpErrorCode.KDS_RATE_LIMITED);
    expect(waits2).toEqual([]);
    throttle = { remaining: 0, retryAfter: '1' };
  });

  it('HTTP errors and malformed bodies are reported, and not cached', async () => {
    const cacheDir = tmp();
    const client = new KdsClient({ baseUrl: base, cacheDir });
    expect(await codeOfAsync(client.certChain('turin', 'vcek'))).toBe(SnpErrorCode.KDS_HTTP_ERROR);
    expect(await codeOfAsync(client.crl('milan', 'vcek'))).toBe(SnpErrorCode.KDS_BAD_RESPONSE);
    expect(await codeOfAsync(new KdsClient({ baseUrl: base, cacheDir, offline: true }).crl('milan', 'vcek'))).toBe(SnpErrorCode.KDS_OFFLINE_MISS);
  });

  it('on-disk cache: CRLs are refetched after crlMaxAgeMs (VCEKs and chains never age); offline serves the stale copy', async () => {
    const cacheDir = tmp();
    const day = 24 * 3600 * 1000;
    let now = Date.now();
    const client = new KdsClient({ baseUrl: base, cacheDir, clock: () => now });
    hits.length = 0;
    expect(Buffer.from(await client.crl('genoa', 'vcek')).equals(Buffer.from(genoaCrl))).toBe(true);
    await client.vcek('milan', decoded.chipId, { bootloader: 2, tee: 0, snp: 5, microcode: 68 });
    expect(hits).toEqual(['/vcek/v1/Genoa/crl', vcekPath]);
    hits.length = 0;
    now += day / 2;
    await client.crl('genoa', 'vcek');
    expect(hits).toEqual([]); // still fresh
    now += day;
    await client.crl('genoa', 'vcek');
    await client.vcek('milan', decoded.chipId, { bootloader: 2, tee: 0, snp: 5, microcode: 68 });
    expect(hits).toEqual(['/vcek/v1/Genoa/crl']); // the CRL aged out, the VCEK did not
    hits.length = 0;
    now += 30 * day;
    const offline = new KdsClient({ baseUrl: base, cacheDir, offline: true, clock: () => now });
    expect(Buffer.from(await offline.crl('genoa', 'vcek')).equals(Buffer.from(genoaCrl))).toBe(true);
    expect(hits).toEqual([]);
    expect(client.cachePath(vcekPath)).toBe(join(cacheDir, vcekPath.slice(1).replace(/[?&=]/g, '_')));
  });

  it('the ARK CRL fetched from KDS is checked: a clean CRL verifies, one revoking the ASK → SNP_CERT_REVOKED', async () => {
    const at = new Date('2026-11-15T00:00:00Z');
    hits.length = 0;
    const c = await collateralForReport(decodeReport(sim.report), 'genoa', new KdsClient({ baseUrl: base, cacheDir: tmp() }), { withCrl: true });
    expect(hits).toEqual([sim.vcekPath, '/vcek/v1/Genoa/cert_chain', '/vcek/v1/Genoa/crl']);
    const ok = verifyReport(sim.report, c, { now: at, trust: sim.auth.trust });
    expect(ok.chain.crl?.revokedSerials.has('1234')).toBe(true);
    const clean = genoaCrl;
    try {
      genoaCrl = await createTestCrl(sim.auth, [sim.auth.ask.cert.serialNumber], new Date('2026-11-01T00:00:00Z'), new Date('2026-12-01T00:00:00Z'));
      const revoked = await collateralForReport(decodeReport(sim.report), 'genoa', new KdsClient({ baseUrl: base, cacheDir: tmp() }), { withCrl: true });
      let code: string | undefined;
      try {
        verifyReport(sim.report, revoked, { now: at, trust: sim.auth.trust });
      } catch (e) {
        code = isJoinguardError(e) ? e.code : String(e);
      }
      expect(code).toBe(SnpErrorCode.CERT_REVOKED);
    } finally {
      genoaCrl = clean;
    }
  });

  it('Retry-After as seconds or HTTP date', () => {
    expect(parseRetryAfter('5', 0)).toBe(5000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(parseRetryAfter('soon', 0)).toBeUndefined();
    expect(parseRetryAfter(null, 0)).toBeUndefined();
  });
});
