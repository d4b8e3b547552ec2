import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, AUDITOR_TOKEN, attest, simHarness, type Fetch, type SimHarness } from './support/sim-verifier.js';
import { createCa, httpsRequest, issueLeaf, type TestCa, type TestLeafPem } from './support/tls.js';

// mTLS roles: the verifier serves HTTPS with `tls.cert/key/clientCa` and maps client-certificate CNs to roles
// with `auth.mtlsRoles`. A certificate of the client CA whose CN is mapped gets that role; an unmapped CN, a
// certificate of another CA (even with a mapped CN) or no certificate gets no role; attester routes stay open.

let h: SimHarness;
let serverCa: TestCa;
let clients: { auditor: TestLeafPem; admin: TestLeafPem; stranger: TestLeafPem; forgedAuditor: TestLeafPem; serverCaAuditor: TestLeafPem };

beforeAll(async () => {
  serverCa = await createCa('joinguard test server CA');
  const clientCa = await createCa('joinguard test client CA');
  const otherCa = await createCa('some other CA');
  const server = await issueLeaf(serverCa, 'localhost', 'server');
  clients = {
    auditor: await issueLeaf(clientCa, 'audit-bot', 'client'),
    admin: await issueLeaf(clientCa, 'ops-bot', 'client'),
    stranger: await issueLeaf(clientCa, 'stranger', 'client'),
    // Same CN as the mapped auditor, from a CA the verifier does not trust for clients.
    forgedAuditor: await issueLeaf(otherCa, 'audit-bot', 'client'),
    // Same CN again, from the server's CA: trusted for the server's own certificate only, not for clients.
    serverCaAuditor: await issueLeaf(serverCa, 'audit-bot', 'client'),
  };
  h = await simHarness({
    nodeName: 'mtls-node-0',
    edit: (c, dir) => {
      writeFileSync(join(dir, 'server.pem'), server.certPem);
      writeFileSync(join(dir, 'server.key'), server.keyPem, { mode: 0o600 });
      writeFileSync(join(dir, 'client-ca.pem'), clientCa.certPem);
      return {
        ...c,
        tls: { cert: join(dir, 'server.pem'), key: join(dir, 'server.key'), clientCa: join(dir, 'client-ca.pem') },
        auth: { ...c.auth, mtlsRoles: { 'audit-bot': ['auditor'], 'ops-bot': ['admin'] } },
      };
    },
  });
  expect(h.v.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
});
afterAll(async () => {
  await h?.close();
});

const get = (path: string, client?: TestLeafPem, headers: Record<string, string> = {}) => httpsRequest(h.v.url + path, { ca: serverCa.certPem, ...(client ? { client } : {}), headers });

/** A fetch over HTTPS without a client certificate, for the attester helpers. */
const anonymousFetch: Fetch = async (path, init) => {
  const r = await httpsRequest(h.v.url + path, {
    ca: serverCa.certPem,
    method: init?.method ?? 'GET',
    headers: (init?.headers ?? {}) as Record<string, string>,
    ...(typeof init?.body === 'string' ? { body: init.body } : {}),
  });
  return new Response(r.text, { status: r.status, headers: { 'content-type': String(r.headers['content-type'] ?? '') } });
};

describe('mTLS roles', () => {
  it('gives the auditor role to a client certificate whose CN is mapped to it', async () => {
    const r = await get('/v1/records', clients.auditor);
    expect(r.status).toBe(200);
    expect(r.json<{ records: unknown[] }>().records).toBeInstanceOf(Array);
    expect((await get('/v1/nodes', clients.auditor)).status).toBe(200);
    expect((await get('/v1/keys/all', clients.auditor)).status).toBe(200);
  });

  it('keeps admin routes to admins: the auditor certificate is forbidden, the admin certificate may revoke', async () => {
    const body = JSON.stringify({ reason: 'decommissioned' });
    const asAuditor = await httpsRequest(`${h.v.url}/v1/nodes/old-node-0/revoke`, { ca: serverCa.certPem, client: clients.auditor, method: 'POST', body });
    expect(asAuditor.status).toBe(403);
    expect(asAuditor.json<{ code: string }>().code).toBe('AUTH_FORBIDDEN');
    const asAdmin = await httpsRequest(`${h.v.url}/v1/nodes/old-node-0/revoke`, { ca: serverCa.certPem, client: clients.admin, method: 'POST', body });
    expect(asAdmin.status).toBe(200);
    expect(asAdmin.json()).toMatchObject({ name: 'old-node-0', revoked: true });
    // The revocation record names the certificate's CN as who revoked.
    const recs = await get('/v1/records?kind=revocation&node=old-node-0', clients.admin);
    expect(recs.json<{ records: Array<{ record: { body: { by: string } } }> }>().records.map((r) => r.record.body.by)).toEqual(['ops-bot']);
    // Admin includes auditor.
    expect((await get('/v1/records', clients.admin)).status).toBe(200);
  });

  it('gives no role to a certificate of the client CA with an unmapped CN', async () => {
    const r = await get('/v1/records', clients.stranger);
    expect([401, 403]).toContain(r.status);
    expect(['AUTH_REQUIRED', 'AUTH_FORBIDDEN']).toContain(r.json<{ code: string }>().code);
  });

  it('gives no role to a certificate of another CA, even with a mapped CN', async () => {
    for (const client of [clients.forgedAuditor, clients.serverCaAuditor]) {
      let status: number | 'refused';
      try {
        status = (await get('/v1/records', client)).status;
      } catch {
        status = 'refused'; // the TLS handshake was refused: as good as a 401
      }
      expect([401, 'refused']).toContain(status);
    }
  });

  it('answers 401 on auditor routes without a certificate, while attester routes still work', async () => {
    const r = await get('/v1/records');
    expect(r.status).toBe(401);
    expect(r.json<{ code: string }>().code).toBe('AUTH_REQUIRED');
    expect((await get('/v1/nodes')).status).toBe(401);
    expect((await get('/v1/keys/all')).status).toBe(401);

    // A whole attestation over HTTPS without a client certificate.
    expect((await get('/healthz')).status).toBe(200);
    expect((await get('/.well-known/jwks.json')).status).toBe(200);
    const a = await attest(anonymousFetch, h.sim, { runtimeData: { nodeName: 'mtls-node-0', machine: 'mtls-node-0-machine', purpose: 'unlock' } });
    expect(a.status).toBe(200);
    expect(a.body.appraisal.verdict).toBe('pass');
    // ... which the auditor certificate then sees.
    const recs = await get(`/v1/records?node=mtls-node-0&kind=appraisal`, clients.auditor);
    expect(recs.json<{ records: Array<{ record: { id: string } }> }>().records.map((x) => x.record.id)).toEqual([a.body.recordId]);
  });

  it('still accepts bearer tokens over TLS, with or without a certificate, and a bad token is no credential', async () => {
    expect((await get('/v1/records', undefined, { authorization: `Bearer ${AUDITOR_TOKEN}` })).status).toBe(200);
    expect((await get('/v1/records', clients.stranger, { authorization: `Bearer ${AUDITOR_TOKEN}` })).status).toBe(200);
    expect((await get('/v1/records', undefined, { authorization: 'Bearer not-a-token' })).status).toBe(401);
    // A wrong token does not hide a valid certificate, and a right one is not downgraded by a weaker certificate.
    expect((await get('/v1/records', clients.auditor, { authorization: 'Bearer not-a-token' })).status).toBe(200);
    const revoke = await httpsRequest(`${h.v.url}/v1/nodes/old-node-1/revoke`, {
      ca: serverCa.certPem,
      client: clients.auditor,
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      body: JSON.stringify({ reason: 'test' }),
    });
    expect(revoke.status).toBe(200);
  });
});
