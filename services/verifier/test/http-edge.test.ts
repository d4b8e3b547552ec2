import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { keyReleaseRequestSchema, nodeStateSchema } from '@joinguard/protocol';
import { defaultConfig } from '../src/config.js';
import { hashToken } from '../src/auth.js';
import { startVerifier, type RunningVerifier } from '../src/run.js';
import { sendRaw } from './support/http-fuzz.js';

// The HTTP edge of a real verifier on loopback: routes, credentials, and hostile requests. None of these
// may produce a 500.
let v: RunningVerifier;
const auditorToken = 'auditor-token-0123456789';
const adminToken = 'admin-token-0123456789';

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'jg-http-'));
  const tokensFile = join(dir, 'tokens.yaml');
  writeFileSync(tokensFile, `tokens:\n  - name: audit\n    sha256: ${hashToken(auditorToken)}\n    roles: [auditor]\n  - name: ops\n    sha256: ${hashToken(adminToken)}\n    roles: [admin]\n`);
  const config = { ...defaultConfig(dir), listen: { host: '127.0.0.1', port: 0 }, auth: { tokensFile, mtlsRoles: {} }, logLevel: 'silent' as const, rateLimit: { attestPerMinute: 1000 } };
  v = await startVerifier(config);
});
afterAll(async () => {
  await v?.close();
});

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(v.url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });

describe('verifier HTTP edge', () => {
  it('serves health, readiness, metrics, JWKS and the OpenAPI document', async () => {
    expect((await fetch(v.url + '/healthz')).status).toBe(200);
    expect(await (await fetch(v.url + '/readyz')).json()).toEqual({ status: 'ready' });
    const metrics = await (await fetch(v.url + '/metrics')).text();
    expect(metrics).toContain('joinguard_appraisals_total');
    expect(metrics).toContain('joinguard_appraisal_duration_seconds');
    const jwks = (await (await fetch(v.url + '/.well-known/jwks.json')).json()) as { keys: Array<{ kid: string; d?: string }> };
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]!.kid).toBe(v.keys.active.kid);
    expect(jwks.keys[0]!.d).toBeUndefined();
    const doc = (await (await fetch(v.url + '/docs/json')).json()) as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/challenge', '/v1/attest', '/v1/keys/disk/{name}', '/v1/records']));
    // The key request body is protocol's KeyReleaseRequest schema, and the node list is described by NodeState.
    type Op = { requestBody?: { content: Record<string, { schema: { properties: Record<string, { maximum?: number }> } }> }; responses: Record<string, { content?: Record<string, { schema: { properties: { nodes?: { items: { properties: object } } } } }> }> };
    const keys = (doc.paths['/v1/keys/disk/{name}'] as { post: Op }).post;
    const body = keys.requestBody!.content['application/json']!.schema.properties;
    expect(Object.keys(body).sort()).toEqual(Object.keys(keyReleaseRequestSchema.properties).sort());
    expect(body.epoch!.maximum).toBe(keyReleaseRequestSchema.properties.epoch.maximum);
    const nodes = (doc.paths['/v1/nodes'] as { get: Op }).get.responses['200']!.content!['application/json']!.schema.properties.nodes!;
    expect(Object.keys(nodes.items.properties).sort()).toEqual(Object.keys(nodeStateSchema.properties).sort());
  });

  it('issues challenges that are single nonces with an expiry', async () => {
    const a = (await (await fetch(v.url + '/v1/challenge')).json()) as { nonce: string; expiresAt: string };
    const b = (await (await fetch(v.url + '/v1/challenge')).json()) as { nonce: string; expiresAt: string };
    expect(a.nonce).not.toBe(b.nonce);
    expect(Date.parse(a.expiresAt) - Date.now()).toBeGreaterThan(290_000);
  });

  it('refuses malformed evidence at the edge with 400 and a code', async () => {
    for (const body of ['{', '[]', '{}', JSON.stringify({ nonce: 'x', tee: 'sgx' }), 'null']) {
      const r = await post('/v1/attest', body);
      expect(r.status, body).toBe(400);
      const j = (await r.json()) as { code: string };
      expect(j.code).toBe('REQUEST_INVALID');
    }
  });

  it('answers what the router refuses (a path parameter too long, a URL it cannot decode) in the error reply shape', async () => {
    const long = await post(`/v1/keys/disk/${'a'.repeat(101)}`, {});
    expect(long.status).toBe(414);
    expect(await long.json()).toEqual({ code: 'REQUEST_URL_TOO_LONG', message: expect.any(String), details: {} });
    const bad = await post('/v1/keys/disk/%E0%A4%A', {});
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ code: 'REQUEST_INVALID', message: expect.any(String), details: { fastifyCode: 'FST_ERR_BAD_URL' } });
    const metrics = await (await fetch(v.url + '/metrics')).text();
    expect(metrics).toMatch(/joinguard_\w*rejections\w*\{code="REQUEST_URL_TOO_LONG"\} 1/);
  });

  it('answers a request that is not well-formed HTTP (a control character in a header) in the error reply shape', async () => {
    const r = await sendRaw(v.url, 'POST', '/v1/keys/disk/root', { 'content-type': 'application/json', authorization: 'Bearer ab\x01cd' }, Buffer.from('{}'));
    expect(r).toMatchObject({ status: 400 });
    const body = JSON.parse((r as { text: string }).text) as unknown;
    expect(body).toEqual({ code: 'REQUEST_MALFORMED', message: expect.any(String), details: { parserCode: expect.stringMatching(/^HPE_/) } });
  });

  it('refuses an oversized body with 413', async () => {
    const r = await post('/v1/attest', JSON.stringify({ pad: 'A'.repeat(9 * 1024 * 1024) }));
    expect(r.status).toBe(413);
    expect(((await r.json()) as { code: string }).code).toBe('REQUEST_TOO_LARGE');
  });

  it('refuses a forged nonce before any appraisal', async () => {
    const c = (await (await fetch(v.url + '/v1/challenge')).json()) as { nonce: string };
    const forged = (c.nonce[0] === 'A' ? 'B' : 'A') + c.nonce.slice(1);
    const evidence = minimalEvidence(forged);
    const r = await post('/v1/attest', evidence);
    expect(r.status).toBe(401);
    expect(((await r.json()) as { code: string }).code).toBe('PROTOCOL_NONCE_FORGED');
  });

  it('needs credentials with the right role for audit and admin routes', async () => {
    expect((await fetch(v.url + '/v1/records')).status).toBe(401);
    expect((await fetch(v.url + '/v1/records', { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    const ok = await fetch(v.url + '/v1/records', { headers: { authorization: `Bearer ${auditorToken}` } });
    expect(ok.status).toBe(200);
    // Only the start-up record of the policy in force, before any appraisal.
    expect(((await ok.json()) as { records: Array<{ record: { kind: string; log: string } }> }).records.map((r) => [r.record.kind, r.record.log])).toEqual([['policy-change', 'policy']]);
    const revokeAsAuditor = await post('/v1/nodes/worker-0/revoke', { reason: 'test' }, { authorization: `Bearer ${auditorToken}` });
    expect(revokeAsAuditor.status).toBe(403);
    const revoke = await post('/v1/nodes/worker-0/revoke', { reason: 'machine deleted' }, { authorization: `Bearer ${adminToken}` });
    expect(revoke.status).toBe(200);
    expect(await revoke.json()).toMatchObject({ name: 'worker-0', revoked: true, revokedReason: 'machine deleted' });
    const nodes = (await (await fetch(v.url + '/v1/nodes', { headers: { authorization: `Bearer ${adminToken}` } })).json()) as { nodes: Array<{ name: string }> };
    expect(nodes.nodes.map((n) => n.name)).toContain('worker-0');
    expect((await fetch(v.url + '/v1/records/does-not-exist', { headers: { authorization: `Bearer ${auditorToken}` } })).status).toBe(404);
  });

  it('refuses key release without a valid result', async () => {
    const none = await post('/v1/keys/disk/worker-1', {});
    expect(none.status).toBe(401);
    expect(((await none.json()) as { code: string }).code).toBe('KEYS_NO_RESULT');
    const junk = await post('/v1/keys/disk/worker-1', {}, { authorization: 'Bearer eyJhbGciOiJFUzI1NiJ9.e30.AAAA' });
    expect(junk.status).toBe(401);
    expect(((await junk.json()) as { code: string }).code).toMatch(/^PROTOCOL_RESULT_/);
    const badName = await post('/v1/keys/disk/Not_A_Node', {});
    expect(badName.status).toBe(400);
  });

  it('answers arbitrary JSON bodies with a 4xx, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue({ maxDepth: 4 }), async (body) => {
        const r = await post('/v1/attest', JSON.stringify(body));
        expect(r.status).toBeGreaterThanOrEqual(400);
        expect(r.status).toBeLessThan(500);
        await r.arrayBuffer();
      }),
      { numRuns: 60 },
    );
  });
});

function minimalEvidence(nonce: string): unknown {
  const b64 = (n: number) => Buffer.alloc(n, 1).toString('base64');
  return {
    nonce,
    tee: 'snp',
    runtimeData: { teeKey: { kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' }, nodeName: 'worker-0', purpose: 'join' },
    hardware: { report: b64(1184) },
    tpm: { quote: b64(100), signature: b64(70), pcrs: { sha256: { '0': '00'.repeat(32) } }, akPublic: b64(90) },
    eventLog: b64(100),
  };
}
