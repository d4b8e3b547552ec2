import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig } from '../src/config.js';
import { hashToken } from '../src/auth.js';
import { startVerifier, type RunningVerifier } from '../src/run.js';

// `rateLimit.attestPerMinute` per source address on the attester routes: with 3, the 4th request of a minute
// from loopback is a 429 in the project's error shape; auditor routes (and health/metrics) are not limited.

let v: RunningVerifier;
const auditorToken = 'ratelimit-auditor-token-0123456789';

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'jg-ratelimit-'));
  const tokensFile = join(dir, 'tokens.yaml');
  writeFileSync(tokensFile, `tokens:\n  - name: audit\n    sha256: ${hashToken(auditorToken)}\n    roles: [auditor]\n`);
  v = await startVerifier({ ...defaultConfig(dir), listen: { host: '127.0.0.1', port: 0 }, auth: { tokensFile, mtlsRoles: {} }, logLevel: 'silent', rateLimit: { attestPerMinute: 3 } });
});
afterAll(async () => {
  await v?.close();
});

const post = (path: string, body: unknown) => fetch(v.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('attester rate limit', () => {
  it('answers the 4th /v1/challenge of the minute with 429 RATE_LIMITED in the error shape', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await fetch(v.url + '/v1/challenge');
      expect(r.status, `request ${i + 1}`).toBe(200);
      expect(((await r.json()) as { nonce: string }).nonce).toBeTruthy();
    }
    const r = await fetch(v.url + '/v1/challenge');
    expect(r.status).toBe(429);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    const body = (await r.json()) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['code', 'details', 'message']);
    expect(body.code).toBe('RATE_LIMITED');
    expect(body.message).toMatch(/rate limit/);
    expect(body.details).toEqual({});
    // Still limited, and only 3 challenges were issued; a forwarded address changes nothing when no proxy is trusted.
    expect((await fetch(v.url + '/v1/challenge')).status).toBe(429);
    expect((await fetch(v.url + '/v1/challenge', { headers: { 'x-forwarded-for': '203.0.113.7' } })).status).toBe(429);
    const metrics = await (await fetch(v.url + '/metrics')).text();
    expect(metrics).toMatch(/^joinguard_challenges_issued_total 3$/m);
    expect(metrics).toMatch(/^joinguard_rejections_total\{code="RATE_LIMITED"\} 3$/m);
  });

  it('limits /v1/attest and /v1/keys/disk the same way, before looking at the body', async () => {
    for (const path of ['/v1/attest', '/v1/keys/disk/worker-0']) {
      for (let i = 0; i < 3; i++) {
        const r = await post(path, { not: 'evidence' });
        expect(r.status, `${path} request ${i + 1}`).not.toBe(429);
        expect(r.status).toBeLessThan(500);
      }
      const r = await post(path, { not: 'evidence' });
      expect(r.status, path).toBe(429);
      expect(((await r.json()) as { code: string }).code).toBe('RATE_LIMITED');
    }
  });

  it('does not limit auditor routes, health or metrics', async () => {
    for (let i = 0; i < 10; i++) {
      const r = await fetch(v.url + '/v1/records', { headers: { authorization: `Bearer ${auditorToken}` } });
      expect(r.status, `records request ${i + 1}`).toBe(200);
      await r.arrayBuffer();
      const n = await fetch(v.url + '/v1/nodes', { headers: { authorization: `Bearer ${auditorToken}` } });
      expect(n.status).toBe(200);
      await n.arrayBuffer();
      // Without credentials it is refused for that reason, not rate-limited.
      expect((await fetch(v.url + '/v1/records')).status).toBe(401);
    }
    for (let i = 0; i < 5; i++) {
      expect((await fetch(v.url + '/healthz')).status).toBe(200);
      expect((await fetch(v.url + '/readyz')).status).toBe(200);
      expect((await (await fetch(v.url + '/metrics')).text()).length).toBeGreaterThan(0);
    }
  });
});

describe('behind a trusted reverse proxy (listen.trustedProxies)', () => {
  let proxied: RunningVerifier;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jg-ratelimit-proxy-'));
    proxied = await startVerifier({ ...defaultConfig(dir), listen: { host: '127.0.0.1', port: 0, trustedProxies: ['127.0.0.0/8'] }, logLevel: 'silent', rateLimit: { attestPerMinute: 3 } });
  });
  afterAll(async () => {
    await proxied?.close();
  });

  it('limits each client the proxy names, not the proxy as a whole', async () => {
    const from = (client: string) => fetch(proxied.url + '/v1/challenge', { headers: { 'x-forwarded-for': client } });
    for (let i = 0; i < 3; i++) expect((await from('198.51.100.1')).status, `client 1, request ${i + 1}`).toBe(200);
    expect((await from('198.51.100.1')).status).toBe(429);
    // Another client behind the same proxy has its own allowance.
    for (let i = 0; i < 3; i++) expect((await from('198.51.100.2')).status, `client 2, request ${i + 1}`).toBe(200);
    expect((await from('198.51.100.2')).status).toBe(429);
  });
});
