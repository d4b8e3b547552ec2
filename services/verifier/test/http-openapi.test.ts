import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv from 'ajv';
import type { JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { JoinguardError } from '@joinguard/core';
import {
  attestResponseSchema,
  challengeResponseSchema,
  errorReplySchema,
  generateSigningKey,
  jwksSchema,
  keyReleaseResponseSchema,
  nodeStateSchema,
  policyChangeResponseSchema,
  policyDocumentResponseSchema,
  policyListResponseSchema,
  recordPageSchema,
  signedRecordSchema,
  type AuditRecord,
  type KeyRing,
  type NodeState,
  type RecordPage,
  type SignedRecord,
} from '@joinguard/protocol';
import { decodeRecordJws, signRecord, verifyRecord } from '@joinguard/store';
import { ADMIN_TOKEN, AUDITOR_TOKEN, attest, simHarness, type SimHarness } from './support/sim-verifier.js';

/*
 * Every route of the OpenAPI document at /docs describes its success reply with protocol's schema and its
 * error replies with ErrorReply, and what those routes answer on a running verifier is all the verifier holds:
 * the key ring's public JWKs with every member (x5c, n, e …), the store's records as signed, the store's node
 * state, the stored blob's bytes, and an error's code, message and details.
 */

const ajv = new Ajv({ strict: false, allErrors: true });
const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();

type Schema = Record<string, unknown>;
type Doc = { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: Schema }> }> }>> };

/** A schema as @fastify/swagger writes it into an OpenAPI 3.0 document, which has no `const`. */
function asOpenApi(s: unknown): unknown {
  if (Array.isArray(s)) return s.map(asOpenApi);
  if (s === null || typeof s !== 'object') return s;
  const out: Schema = {};
  for (const [k, v] of Object.entries(s)) {
    if (k === 'const') out.enum = [v];
    else out[k] = asOpenApi(v);
  }
  return out;
}

const JSON_TYPE = 'application/json';
/** Each route of the document: its success reply's content type and schema. */
const SUCCESS_REPLIES: Record<string, [string, object]> = {
  'get /.well-known/jwks.json': [JSON_TYPE, jwksSchema],
  'get /v1/keys/all': [JSON_TYPE, jwksSchema],
  'get /v1/records': [JSON_TYPE, recordPageSchema],
  'get /v1/records/{id}': [JSON_TYPE, signedRecordSchema],
  'get /v1/blobs/{sha256}': ['application/octet-stream', { type: 'string', format: 'binary' }],
  'get /v1/nodes': [JSON_TYPE, { type: 'object', required: ['nodes'], additionalProperties: false, properties: { nodes: { type: 'array', items: nodeStateSchema } } }],
  'post /v1/nodes/{name}/revoke': [JSON_TYPE, nodeStateSchema],
  'post /v1/nodes/{name}/unpin': [JSON_TYPE, nodeStateSchema],
  'get /v1/challenge': [JSON_TYPE, challengeResponseSchema],
  'post /v1/attest': [JSON_TYPE, attestResponseSchema],
  'post /v1/keys/disk/{name}': [JSON_TYPE, keyReleaseResponseSchema],
  'get /v1/policies': [JSON_TYPE, policyListResponseSchema],
  'get /v1/policies/{pool}': [JSON_TYPE, policyDocumentResponseSchema],
  'put /v1/policies/{pool}': [JSON_TYPE, policyChangeResponseSchema],
  'post /v1/policies/{pool}/reference-values': [JSON_TYPE, policyChangeResponseSchema],
  'delete /v1/policies/{pool}/reference-values/{ref}': [JSON_TYPE, policyChangeResponseSchema],
};

/** A ring as a verifier could hold it after rotations: keys of other algorithms, one carrying certificate members. */
async function earlierRing(now: number): Promise<KeyRing> {
  const gone = await generateSigningKey('ES256');
  const withCert = await generateSigningKey('ES384');
  const rsa = await generateSigningKey('PS256');
  return {
    keys: [
      { jwk: gone.publicJwk, activatedAt: iso(now - 5 * DAY), retiredAt: iso(now - 4 * DAY), publishUntil: iso(now - 3 * DAY), resultTtlSec: 900 },
      {
        jwk: { ...withCert.publicJwk, x5c: [randomBytes(400).toString('base64')], 'x5t#S256': randomBytes(32).toString('base64url'), key_ops: ['verify'] },
        activatedAt: iso(now - 3 * DAY),
        retiredAt: iso(now - 2 * DAY),
        publishUntil: iso(now + DAY),
        resultTtlSec: 900,
      },
      { jwk: rsa.publicJwk, activatedAt: iso(now - 2 * DAY), retiredAt: iso(now - DAY), publishUntil: iso(now + DAY) },
    ],
  };
}

describe('replies of the documented routes', () => {
  let h: SimHarness;
  let ringPath: string;
  let doc: Doc;
  const auditor = { authorization: `Bearer ${AUDITOR_TOKEN}` };
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
  const f = (path: string, init?: RequestInit) => fetch(`${h.v.url}${path}`, init);
  const json = async <T>(path: string, init?: RequestInit): Promise<T> => {
    const r = await f(path, init);
    expect(r.status, `${path}: ${r.status}`).toBe(200);
    return (await r.json()) as T;
  };
  const revoke = (reason: string, headers: Record<string, string> = admin) => f(`/v1/nodes/${h.sim.nodeName}/revoke`, { method: 'POST', headers, body: JSON.stringify({ reason }) });
  const valid = (schema: object, value: unknown) => {
    const v = ajv.compile(schema);
    expect(v(value), JSON.stringify(v.errors)).toBe(true);
  };

  beforeAll(async () => {
    const ring = await earlierRing(Date.now());
    h = await simHarness({
      // A policy that pins AKs, so that the node's state has its pin members too.
      pinAk: true,
      edit: (c) => {
        mkdirSync(c.signing.keysDir, { recursive: true, mode: 0o700 });
        ringPath = join(c.signing.keysDir, 'keyring.json');
        writeFileSync(ringPath, JSON.stringify(ring), { mode: 0o600 });
        return c;
      },
    });
    // One appraisal (its record names an event-log blob, its node state every member) and a revocation.
    const passed = await attest(f, h.sim, { runtimeData: { machine: `${h.sim.nodeName}-machine`, purpose: 'unlock' } });
    expect(passed.body.appraisal.verdict).toBe('pass');
    expect((await revoke('decommissioned')).status).toBe(200);
    doc = await json<Doc>('/docs/json');
  });
  afterAll(async () => h?.close());

  it('the OpenAPI document gives every route a success reply and the error reply shape', () => {
    const routes = Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => [`${method} ${path}`, op] as const));
    expect(routes.map(([route]) => route).sort()).toEqual(Object.keys(SUCCESS_REPLIES).sort());
    for (const [route, op] of routes) {
      const [type, schema] = SUCCESS_REPLIES[route]!;
      expect(op.responses['200']?.content?.[type]?.schema, route).toEqual(asOpenApi(schema));
      for (const status of ['400', '401', '404', '500']) {
        expect(op.responses[status]?.content?.['application/json']?.schema, `${route} ${status}`).toEqual(asOpenApi(errorReplySchema));
      }
    }
  });

  it('the JWKS and /v1/keys/all are the key ring\'s public keys with every member', async () => {
    const ring = JSON.parse(readFileSync(ringPath, 'utf8')) as KeyRing;
    expect(ring.keys).toHaveLength(4);
    const published = ring.keys.filter((k) => k.publishUntil === undefined || Date.parse(k.publishUntil) > Date.now()).map((k) => k.jwk);
    expect(published).toHaveLength(3);
    const jwks = await json<JSONWebKeySet>('/.well-known/jwks.json');
    expect(jwks).toEqual({ keys: published });
    const all = await json<JSONWebKeySet>('/v1/keys/all', { headers: auditor });
    expect(all).toEqual({ keys: ring.keys.map((k) => k.jwk) });
    // The members a schema that lists only kty, kid, alg and use would lose.
    const members = new Set(all.keys.flatMap((k) => Object.keys(k)));
    for (const m of ['crv', 'x', 'y', 'n', 'e', 'x5c', 'x5t#S256', 'key_ops']) expect(members, m).toContain(m);
    valid(jwksSchema, jwks);
    valid(jwksSchema, all);
  });

  it('record pages and records are the store\'s, each record the payload of its JWS', async () => {
    const page = await json<RecordPage>('/v1/records', { headers: auditor });
    expect(page).toEqual(await h.v.store.query({}));
    expect(new Set(page.records.map((r) => r.record.kind))).toEqual(new Set(['policy-change', 'appraisal', 'revocation']));
    valid(recordPageSchema, page);
    const keys = h.v.keys.allKeys();
    for (const r of page.records) {
      expect(await verifyRecord(r, keys)).toEqual(r.record);
      const one = await json<SignedRecord>(`/v1/records/${r.record.id}`, { headers: auditor });
      expect(one).toEqual(r);
      expect(one).toEqual(await h.v.store.get(r.record.id));
      valid(signedRecordSchema, one);
    }
    const first = await json<RecordPage>('/v1/records?limit=1', { headers: auditor });
    expect(first).toEqual(await h.v.store.query({ limit: 1 }));
    expect(first.nextCursor).toEqual(expect.any(String));
  });

  it('a record of a later format, with a member this version does not know, is served as signed', async () => {
    const appraisal = (await h.v.store.query({ kind: 'appraisal' })).records[0]!;
    const record = {
      ...appraisal.record,
      v: 2,
      id: 'later-format-0',
      seq: 99,
      attestedBy: { replica: 'verifier-b', build: '0.2.0' },
    } as unknown as AuditRecord;
    const later: SignedRecord = { record, jws: signRecord(record, h.v.keys.active).jws };
    const get = vi.spyOn(h.v.store, 'get').mockResolvedValue(later);
    const query = vi.spyOn(h.v.store, 'query').mockResolvedValue({ records: [later], nextCursor: 'next-page' });
    try {
      const one = await json<SignedRecord>(`/v1/records/${record.id}`, { headers: auditor });
      expect(one).toEqual(later);
      expect(one.record).toEqual(decodeRecordJws(one.jws));
      expect(await json<RecordPage>('/v1/records', { headers: auditor })).toEqual({ records: [later], nextCursor: 'next-page' });
    } finally {
      get.mockRestore();
      query.mockRestore();
    }
  });

  it('node states, as listed and as a revocation answers, are the store\'s with every member', async () => {
    const nodes = await json<{ nodes: NodeState[] }>('/v1/nodes', { headers: auditor });
    expect(nodes).toEqual({ nodes: await h.v.store.listNodes() });
    const r = await revoke('decommissioned again');
    expect(r.status).toBe(200);
    const state = (await r.json()) as NodeState;
    expect(state).toEqual(await h.v.store.getNode(h.sim.nodeName));
    expect(Object.keys(state).sort()).toEqual(Object.keys(nodeStateSchema.properties).sort());
    valid(nodeStateSchema, state);
  });

  it('a node state with a member this version does not know (written by a newer replica) keeps it, listed and revoked', async () => {
    const name = 'newer-replica-node';
    const later = { revoked: false, lastVerdict: 'pass', attestedBy: { replica: 'verifier-b', build: '0.2.0' } } as unknown as Omit<NodeState, 'name'>;
    await h.v.store.putNode(name, later);
    const listed = (await json<{ nodes: NodeState[] }>('/v1/nodes', { headers: auditor })).nodes.find((n) => n.name === name);
    expect(listed).toEqual({ ...later, name });
    const r = await f(`/v1/nodes/${name}/revoke`, { method: 'POST', headers: admin, body: JSON.stringify({ reason: 'replaced' }) });
    expect(r.status).toBe(200);
    const state = (await r.json()) as NodeState;
    expect(state).toMatchObject({ name, revoked: true, revokedReason: 'replaced', attestedBy: { replica: 'verifier-b', build: '0.2.0' } });
    expect(state).toEqual(await h.v.store.getNode(name));
  });

  it('a blob is the stored bytes', async () => {
    const appraisal = (await h.v.store.query({ kind: 'appraisal' })).records[0]!;
    const name = (appraisal.record.body as { evidenceBlobs: { eventLog: string } }).evidenceBlobs.eventLog;
    const r = await f(`/v1/blobs/${name}`, { headers: auditor });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/octet-stream');
    expect(Buffer.from(await r.arrayBuffer()).equals(Buffer.from((await h.v.store.getBlob(name))!))).toBe(true);
  });

  it('errors of these routes keep their code, message and details', async () => {
    const refusals: Array<[string, RequestInit, number, object]> = [
      ['/v1/records/no-such-record', { headers: auditor }, 404, { code: 'NOT_FOUND', message: 'no record no-such-record', details: { id: 'no-such-record' } }],
      ['/v1/records?limit=0', { headers: auditor }, 400, { code: 'REQUEST_INVALID', message: expect.any(String), details: {} }],
      ['/v1/records', {}, 401, { code: 'AUTH_REQUIRED', message: expect.any(String), details: {} }],
      ['/v1/keys/all', {}, 401, { code: 'AUTH_REQUIRED', message: expect.any(String), details: {} }],
      ['/v1/nodes', {}, 401, { code: 'AUTH_REQUIRED', message: expect.any(String), details: {} }],
      [`/v1/blobs/${'0'.repeat(64)}`, { headers: auditor }, 404, { code: 'NOT_FOUND', message: expect.any(String), details: { sha256: '0'.repeat(64) } }],
      [`/v1/nodes/${h.sim.nodeName}/revoke`, { method: 'POST', headers: { ...auditor, 'content-type': 'application/json' }, body: '{"reason":"x"}' }, 403, { code: 'AUTH_FORBIDDEN', message: expect.any(String), details: { principal: 'audit' } }],
      [`/v1/nodes/${h.sim.nodeName}/revoke`, { method: 'POST', headers: admin, body: '{}' }, 400, { code: 'REQUEST_INVALID', message: expect.any(String), details: {} }],
    ];
    for (const [path, init, status, body] of refusals) {
      const r = await f(path, init);
      expect(r.status, path).toBe(status);
      const reply = (await r.json()) as unknown;
      expect(reply, path).toEqual(body);
      valid(errorReplySchema, reply);
    }
  });

  it('an error with nested details reaches the client whole from every changed route', async () => {
    const e = new JoinguardError('STORE_REFUSED', 'refused for this test', { why: { path: ['a', 0], limits: { max: 3 } }, ids: ['x', 'y'] }, { kind: 'input' });
    const routes: Array<['jwks' | 'allKeys' | 'records' | 'record' | 'nodes' | 'blob' | 'revoke', string, RequestInit]> = [
      ['jwks', '/.well-known/jwks.json', {}],
      ['allKeys', '/v1/keys/all', { headers: auditor }],
      ['records', '/v1/records', { headers: auditor }],
      ['record', '/v1/records/some-id', { headers: auditor }],
      ['nodes', '/v1/nodes', { headers: auditor }],
      ['blob', `/v1/blobs/${'1'.repeat(64)}`, { headers: auditor }],
      ['revoke', `/v1/nodes/${h.sim.nodeName}/revoke`, { method: 'POST', headers: admin, body: '{"reason":"x"}' }],
    ];
    for (const [method, path, init] of routes) {
      const spy = vi.spyOn(h.v.verifier, method).mockImplementation(() => {
        throw e;
      });
      try {
        const r = await f(path, init);
        expect(r.status, path).toBe(400);
        expect(await r.json(), path).toEqual(e.toJSON());
      } finally {
        spy.mockRestore();
      }
    }
    // A fault of ours keeps the shape, not the internals.
    const spy = vi.spyOn(h.v.verifier, 'jwks').mockImplementation(() => {
      throw new Error('disk on fire');
    });
    try {
      const r = await f('/.well-known/jwks.json');
      expect(r.status).toBe(500);
      expect(await r.json()).toEqual({ code: 'INTERNAL', message: 'internal error', details: {} });
    } finally {
      spy.mockRestore();
    }
  });
});
