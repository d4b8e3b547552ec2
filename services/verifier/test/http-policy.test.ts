import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { decodeJwt } from 'jose';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JoinguardError } from '@joinguard/core';
import { policyDigest, type Policy, type ReferenceValue } from '@joinguard/policy';
import {
  SCHEMAS,
  type PolicyChangeResponse,
  type PolicyDocumentResponse,
  type PolicyListResponse,
  type SignedRecord,
} from '@joinguard/protocol';
import { loadConfig, type VerifierConfig } from '../src/config.js';
import { startVerifier } from '../src/run.js';
import { ADMIN_TOKEN, AUDITOR_TOKEN, attest, fetcher, records, simHarness, type Fetch, type SimHarness } from './support/sim-verifier.js';

/*
 * Policies per node pool over real HTTP: two pools whose policies judge the same evidence differently, the
 * admin routes that change a pool's policy (whole, or one reference value), the policy-change records, the
 * policy kept across a restart, and configuration errors for pools.
 */

const NOW = Date.now();
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

let h: SimHarness;
let f: Fetch;
let good: Policy;
let strictFile: string;

/** goodPolicy with an SNP minimum TCB no real platform reaches: the same evidence fails `policy.snp.tcb.minimum`. */
function strictPolicy(base: Policy): Policy {
  return { ...base, name: 'strict-pool', nodePool: 'strict', snp: { ...base.snp, minimumTcb: { ...base.snp!.minimumTcb, microcode: 255 } } };
}

/** The simulated CVM's reference value under another version, with a measurement no node has. */
function successor(ref: ReferenceValue, version: string, extra: Partial<ReferenceValue> = {}): ReferenceValue {
  return { ...structuredClone(ref), version, snp: { measurement: ['ab'.repeat(48)] }, ...extra };
}

const auth = (token: string) => ({ authorization: `Bearer ${token}` });

async function listPolicies(token = AUDITOR_TOKEN): Promise<PolicyListResponse> {
  const r = await f('/v1/policies', { headers: auth(token) });
  expect(r.status).toBe(200);
  return (await r.json()) as PolicyListResponse;
}

async function put(pool: string, body: string, opts: { token?: string; type?: string } = {}) {
  const r = await f(`/v1/policies/${pool}`, { method: 'PUT', headers: { 'content-type': opts.type ?? 'application/json', ...auth(opts.token ?? ADMIN_TOKEN) }, body });
  return { status: r.status, body: (await r.json()) as PolicyChangeResponse & { code?: string; message?: string; details?: { errors?: Array<{ path: string; code: string; message: string }> } } };
}

async function policyRecords(): Promise<SignedRecord[]> {
  return records(f, 'kind=policy-change&limit=1000');
}

async function nodeAttest(nodeName: string) {
  const a = await attest(f, h.sim, { runtimeData: { nodeName } });
  expect(a.status, JSON.stringify(a.body)).toBe(200);
  return a.body;
}

beforeAll(async () => {
  h = await simHarness({
    edit: (c, dir) => {
      good = YAML.parse(readFileSync(c.policy.file!, 'utf8')) as Policy;
      const relaxedFile = join(dir, 'relaxed.yaml');
      writeFileSync(relaxedFile, YAML.stringify({ ...good, name: 'relaxed-pool' }));
      strictFile = join(dir, 'strict.yaml');
      writeFileSync(strictFile, YAML.stringify(strictPolicy(good)));
      return {
        ...c,
        rateLimit: { attestPerMinute: 10_000 },
        policy: {
          ...c.policy,
          pools: [
            { name: 'relaxed', file: relaxedFile, nodes: 'relaxed-.*' },
            { name: 'strict', file: strictFile, nodes: 'strict-[0-9]+' },
          ],
        },
      };
    },
  });
  f = fetcher(h.v.url);
});
afterAll(async () => {
  await h?.close();
});

describe('policies per node pool', () => {
  it('lists every pool with its policy, source and reference values, and records each at the first start', async () => {
    const { pools } = await listPolicies();
    expect(pools.map((p) => p.name)).toEqual(['relaxed', 'strict', 'default']);
    expect(pools.map((p) => p.policy.id)).toEqual(['relaxed-pool', 'strict-pool', good.name]);
    expect(pools.map((p) => p.source)).toEqual(['file', 'file', 'file']);
    expect(pools[1]).toMatchObject({ nodes: 'strict-[0-9]+', default: false, file: strictFile, policy: { digest: policyDigest(strictPolicy(good)) } });
    expect(pools[2]!.default).toBe(true);
    expect(pools[2]!.nodes).toBeUndefined();
    const ref = pools[0]!.referenceValues[0]!;
    expect(ref).toMatchObject({ id: good.referenceValues![0]!.id, version: '1', validity: 'active' });
    expect(ref.keys).toEqual(expect.arrayContaining(['snp.measurement', 'boot.bootApps', 'pcrs.sha256.7']));

    const recs = await policyRecords();
    expect(recs.map((r) => [r.record.log, r.record.body.pool, r.record.body.change, r.record.body.source])).toEqual([
      ['policy', 'relaxed', 'start', 'file'],
      ['policy', 'strict', 'start', 'file'],
      ['policy', 'default', 'start', 'file'],
    ]);
    expect(recs[1]!.record.body).toMatchObject({ newDigest: pools[1]!.policy.digest, policyId: 'strict-pool', file: strictFile, nodes: 'strict-[0-9]+', by: 'verifier-start' });
    expect(recs[1]!.record.body.oldDigest).toBeUndefined();
    expect(policyDigest(recs[1]!.record.body.policy as Policy)).toBe(pools[1]!.policy.digest);

    // One whole policy document per pool for an auditor; nothing for the public.
    const doc = (await (await f('/v1/policies/strict', { headers: auth(AUDITOR_TOKEN) })).json()) as PolicyDocumentResponse;
    expect(policyDigest(doc.document as unknown as Policy)).toBe(pools[1]!.policy.digest);
    expect((await f('/v1/policies')).status).toBe(401);
    expect((await f('/v1/policies/nope', { headers: auth(AUDITOR_TOKEN) })).status).toBe(404);
  });

  it('appraises each node under its pool’s policy: the same evidence passes in one pool and fails in the stricter one', async () => {
    const { pools } = await listPolicies();
    const relaxed = await nodeAttest('relaxed-0');
    expect(relaxed.appraisal.verdict).toBe('pass');
    expect(relaxed.appraisal.policy).toEqual(pools[0]!.policy);

    const strict = await nodeAttest('strict-1');
    expect(strict.appraisal.verdict).toBe('fail');
    expect(strict.appraisal.policy).toEqual(pools[1]!.policy);
    expect(strict.appraisal.checks.filter((c) => c.outcome === 'fail').map((c) => [c.name, c.code])).toEqual([['policy.snp.tcb.minimum', 'POLICY_TCB_TOO_LOW']]);
    expect(decodeJwt(strict.result).policy).toEqual(pools[1]!.policy);

    // Anchored: neither a prefix nor a suffix match puts a node in a pool.
    for (const name of ['strict-1x', 'xstrict-1', 'other-0']) {
      const a = await nodeAttest(name);
      expect(a.appraisal.policy, name).toEqual(pools[2]!.policy);
      expect(a.appraisal.verdict).toBe('pass');
    }

    // The pool is in the appraisal record, beside the policy id and digest.
    const [rec] = await records(f, `node=strict-1&kind=appraisal`);
    expect(rec!.record.body).toMatchObject({ pool: 'strict', policy: pools[1]!.policy });
    const [other] = await records(f, `node=other-0&kind=appraisal`);
    expect(other!.record.body.pool).toBe('default');
  });

  it('lets only an admin change a policy, and refuses an unusable one with the check’s errors, changing nothing', async () => {
    const before = await listPolicies();
    const count = (await policyRecords()).length;
    const text = JSON.stringify({ ...good, name: 'strict-v2', nodePool: 'strict' });
    const noAuth = await f('/v1/policies/strict', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: text });
    expect(noAuth.status).toBe(401);
    const byAuditor = await put('strict', text, { token: AUDITOR_TOKEN });
    expect(byAuditor.status).toBe(403);
    expect(byAuditor.body.code).toBe('AUTH_FORBIDDEN');
    expect((await put('nope', text)).status).toBe(404);

    // Semantics: a pattern that does not compile and an impossible date, both listed.
    const semantic = structuredClone(good);
    semantic.boot = { ...semantic.boot, kernelCmdline: { forbidden: ['(unclosed'] } };
    semantic.referenceValues![0]!.expires = '2026-02-30T00:00:00Z';
    const bad = await put('strict', JSON.stringify(semantic));
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('POLICY_SEMANTIC');
    expect(bad.body.details!.errors!.map((e) => [e.path, e.code])).toEqual(
      expect.arrayContaining([
        ['$.boot.kernelCmdline.forbidden[0]', 'POLICY_BAD_REGEX'],
        ['$.referenceValues[0].expires', 'POLICY_BAD_DATE'],
      ]),
    );
    // Schema: an unknown property and a missing one.
    const schema = await put('strict', JSON.stringify({ ...good, name: undefined, bogus: 1 }));
    expect(schema.status).toBe(400);
    expect(schema.body.code).toBe('POLICY_SCHEMA');
    expect(schema.body.details!.errors!.map((e) => e.path)).toEqual(expect.arrayContaining(['$', '$.bogus']));
    // A JSON string is not a policy (YAML text goes as application/yaml).
    expect((await put('strict', JSON.stringify(YAML.stringify(good)))).body.code).toBe('REQUEST_INVALID');
    // Not YAML/JSON at all, and a policy that names another pool.
    expect((await put('strict', 'a: [unclosed', { type: 'application/yaml' })).body.code).toBe('POLICY_INVALID');
    const wrongPool = await put('strict', JSON.stringify({ ...good, nodePool: 'relaxed' }));
    expect(wrongPool.status).toBe(400);
    expect(wrongPool.body.code).toBe('POLICY_POOL_MISMATCH');
    // Every reference value for a key expired: no node could pass.
    const expired = structuredClone(good);
    expired.referenceValues![0]!.expires = iso(NOW - 86_400_000);
    const dead = await put('strict', JSON.stringify(expired));
    expect(dead.status).toBe(400);
    expect(dead.body.details!.errors!.some((e) => e.code === 'POLICY_REFERENCE_EXPIRED')).toBe(true);

    expect(await listPolicies()).toEqual(before);
    expect((await policyRecords()).length).toBe(count);
    expect(existsSync(join(h.config.dataDir, 'policies', 'strict.json'))).toBe(false);
    expect((await nodeAttest('strict-2')).appraisal.verdict).toBe('fail');
  });

  it('replaces a pool’s policy for an admin (YAML), records who changed what, and uses it for the next appraisal', async () => {
    const { pools } = await listPolicies();
    const oldDigest = pools[1]!.policy.digest;
    const next = { ...good, name: 'strict-v2', nodePool: 'strict' };
    const r = await put('strict', YAML.stringify(next), { type: 'application/yaml' });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const newDigest = policyDigest(next as Policy);
    expect(r.body).toMatchObject({ pool: 'strict', changed: true, policy: { id: 'strict-v2', digest: newDigest }, previous: { id: 'strict-pool', digest: oldDigest } });

    const rec = (await policyRecords()).at(-1)!;
    expect(rec.record.id).toBe(r.body.recordId);
    expect(rec.record).toMatchObject({ kind: 'policy-change', log: 'policy' });
    expect(rec.record.body).toMatchObject({ pool: 'strict', change: 'put', source: 'api', oldDigest, newDigest, oldPolicyId: 'strict-pool', policyId: 'strict-v2', by: 'ops', via: 'token' });
    expect(policyDigest(rec.record.body.policy as Policy)).toBe(newDigest);

    const a = await nodeAttest('strict-3');
    expect(a.appraisal.verdict).toBe('pass');
    expect(a.appraisal.policy).toEqual({ id: 'strict-v2', digest: newDigest });
    const listed = (await listPolicies()).pools[1]!;
    expect(listed).toMatchObject({ source: 'api', updatedBy: 'ops', policy: { digest: newDigest } });

    // Kept under the data folder, owner-only.
    const kept = join(h.config.dataDir, 'policies', 'strict.json');
    expect(statSync(kept).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(kept, 'utf8'))).toMatchObject({ pool: 'strict', digest: newDigest, configDigest: oldDigest, updatedBy: 'ops' });

    // The same policy again (as JSON this time) changes nothing and records nothing.
    const count = (await policyRecords()).length;
    const same = await put('strict', JSON.stringify(next));
    expect(same.status).toBe(200);
    expect(same.body).toMatchObject({ changed: false, policy: { digest: newDigest } });
    expect(same.body.recordId).toBeUndefined();
    expect((await policyRecords()).length).toBe(count);
  });

  it('rolls out N+1 and retires N with the reference-value routes: the node on N then fails naming the rule', async () => {
    const n = good.referenceValues![0]!;
    const add = await f('/v1/policies/relaxed/reference-values', { method: 'POST', headers: { 'content-type': 'application/json', ...auth(ADMIN_TOKEN) }, body: JSON.stringify(successor(n, '2')) });
    const added = (await add.json()) as PolicyChangeResponse;
    expect(add.status, JSON.stringify(added)).toBe(200);
    expect(added.changed).toBe(true);
    expect((await nodeAttest('relaxed-1')).appraisal.verdict).toBe('pass');

    // A duplicate id@version, and an auditor, are refused.
    const dup = await f('/v1/policies/relaxed/reference-values', { method: 'POST', headers: { 'content-type': 'application/json', ...auth(ADMIN_TOKEN) }, body: JSON.stringify(successor(n, '2')) });
    expect(dup.status).toBe(400);
    expect(((await dup.json()) as { details: { errors: Array<{ code: string }> } }).details.errors.map((e) => e.code)).toContain('POLICY_DUPLICATE_REFERENCE');
    const del = (ref: string, token = ADMIN_TOKEN) => f(`/v1/policies/relaxed/reference-values/${encodeURIComponent(ref)}`, { method: 'DELETE', headers: auth(token) });
    expect((await del(`${n.id}@1`, AUDITOR_TOKEN)).status).toBe(403);
    expect((await del(`${n.id}@9`)).status).toBe(404);

    const retired = await del(`${n.id}@1`);
    const body = (await retired.json()) as PolicyChangeResponse;
    expect(retired.status, JSON.stringify(body)).toBe(200);
    expect(body.changed).toBe(true);
    const a = await nodeAttest('relaxed-2');
    expect(a.appraisal.verdict).toBe('fail');
    expect(a.appraisal.checks.filter((c) => c.outcome === 'fail').map((c) => [c.name, c.code])).toEqual([['policy.snp.measurement', 'POLICY_MEASUREMENT_MISMATCH']]);

    // The last reference value for a claim cannot go: its rule would be skipped, not enforced.
    const last = await del(`${n.id}@2`);
    expect(last.status).toBe(400);
    expect(((await last.json()) as { code: string }).code).toBe('POLICY_REFERENCE_LAST');

    const recs = (await policyRecords()).filter((r) => r.record.body.pool === 'relaxed');
    expect(recs.map((r) => [r.record.body.change, r.record.body.referenceValue ?? null])).toEqual([
      ['start', null],
      ['reference-value-added', `${n.id}@2`],
      ['reference-value-removed', `${n.id}@1`],
    ]);
    expect(recs[2]!.record.body.oldDigest).toBe(recs[1]!.record.body.newDigest);
    const listed = (await listPolicies()).pools[0]!;
    expect(listed.referenceValues.map((r) => `${r.id}@${r.version}`)).toEqual([`${n.id}@2`]);
  });

  it('fails a node whose reference value expired under a PUT policy, naming it', async () => {
    const n = good.referenceValues![0]!;
    const next = structuredClone(good);
    next.referenceValues = [{ ...structuredClone(n), expires: iso(NOW - 60_000) }, successor(n, '2')];
    const r = await put('default', JSON.stringify(next));
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.warnings.map((w) => w.code)).toContain('POLICY_REFERENCE_EXPIRED');
    const a = await nodeAttest('other-1');
    expect(a.appraisal.verdict).toBe('fail');
    const failed = a.appraisal.checks.filter((c) => c.outcome === 'fail');
    expect(failed.map((c) => [c.name, c.code])).toEqual([['policy.snp.measurement', 'POLICY_REFERENCE_EXPIRED']]);
    expect(failed[0]!.message).toContain(`${n.id}@1`);
    const validity = (await listPolicies()).pools[2]!.referenceValues.map((x) => [x.version, x.validity]);
    expect(validity).toEqual([
      ['1', 'expired'],
      ['2', 'active'],
    ]);
  });

  it('serialises concurrent changes: each record names the digest the one before it left in force', async () => {
    const count = (await policyRecords()).length;
    const variants = ['relaxed-p1', 'relaxed-p2', 'relaxed-p3'].map((name) => ({ ...good, name, referenceValues: (YAML.parse(readFileSync(h.config.policy.pools![0]!.file, 'utf8')) as Policy).referenceValues }));
    const replies = await Promise.all(variants.map((v) => put('relaxed', JSON.stringify(v))));
    expect(replies.map((r) => [r.status, r.body.changed])).toEqual([
      [200, true],
      [200, true],
      [200, true],
    ]);
    const recs = (await policyRecords()).slice(count);
    expect(recs).toHaveLength(3);
    for (let i = 1; i < recs.length; i++) expect(recs[i]!.record.body.oldDigest).toBe(recs[i - 1]!.record.body.newDigest);
    expect((await listPolicies()).pools[0]!.policy.digest).toBe(recs.at(-1)!.record.body.newDigest);
  });

  it('keeps the policies set by admins across a restart without recording them again', async () => {
    const before = await listPolicies();
    const count = (await policyRecords()).length;
    await h.v.close();
    h.v = await startVerifier(h.config);
    f = fetcher(h.v.url);
    const after = await listPolicies();
    expect(after).toEqual(before);
    expect(after.pools.map((p) => p.source)).toEqual(['api', 'api', 'api']);
    expect((await policyRecords()).length).toBe(count);
    expect((await nodeAttest('strict-4')).appraisal.policy.id).toBe('strict-v2');
  });

  it('uses the configured file again once it changed after the admin’s change, and records that', async () => {
    const count = (await policyRecords()).length;
    const edited = { ...strictPolicy(good), name: 'strict-from-git' };
    writeFileSync(strictFile, YAML.stringify(edited));
    await h.v.close();
    h.v = await startVerifier(h.config);
    f = fetcher(h.v.url);
    const strict = (await listPolicies()).pools[1]!;
    expect(strict).toMatchObject({ source: 'file', policy: { id: 'strict-from-git', digest: policyDigest(edited) } });
    expect(strict.updatedBy).toBeUndefined();
    const dir = join(h.config.dataDir, 'policies');
    expect(readdirSync(dir).some((x) => x.startsWith('strict.json.superseded-'))).toBe(true);
    expect(existsSync(join(dir, 'strict.json'))).toBe(false);
    const recs = await policyRecords();
    expect(recs.length).toBe(count + 1);
    expect(recs.at(-1)!.record.body).toMatchObject({ pool: 'strict', change: 'start', source: 'file', oldDigest: policyDigest({ ...good, name: 'strict-v2', nodePool: 'strict' } as Policy), newDigest: policyDigest(edited) });

    // PUTting the configured policy back drops the kept copy: the pool is the file's again.
    const relaxedConfigured = YAML.parse(readFileSync(h.config.policy.pools![0]!.file, 'utf8')) as Policy;
    const back = await put('relaxed', JSON.stringify(relaxedConfigured));
    expect(back.body.changed).toBe(true);
    expect((await listPolicies()).pools[0]!.source).toBe('file');
    expect(existsSync(join(dir, 'relaxed.json'))).toBe(false);
  });

  it('describes the new routes in the OpenAPI document with schemas that compile strictly', async () => {
    const doc = (await (await f('/docs/json')).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/policies', '/v1/policies/{pool}', '/v1/policies/{pool}/reference-values', '/v1/policies/{pool}/reference-values/{ref}']));
    const ajv = new Ajv({ strict: true, allErrors: true });
    for (const name of ['PolicyPoolParams', 'ReferenceValueParams', 'PolicyListResponse', 'PolicyDocumentResponse', 'PolicyChangeResponse'] as const) {
      expect(() => ajv.compile(SCHEMAS[name]), name).not.toThrow();
    }
  });
});

describe('node pool configuration', () => {
  function cfgFile(text: string): string {
    const dir = mkdtempSync(join(tmpdir(), 'jg-pool-cfg-'));
    const file = join(dir, 'verifier.yaml');
    writeFileSync(file, text);
    return file;
  }
  function thrown(fn: () => unknown): JoinguardError {
    try {
      fn();
    } catch (e) {
      if (e instanceof JoinguardError) return e;
      throw e;
    }
    throw new Error('did not throw');
  }
  const pools = (...items: string[]) => `policy:\n  pools:\n${items.map((i) => `    - ${i}\n`).join('')}`;

  it('resolves pool files against the config file and keeps their order', () => {
    const file = cfgFile(pools('{ name: gpu, file: gpu.yaml, nodes: "gpu-[0-9]+" }', '{ name: worker, file: w.yaml, nodes: "worker-.*" }'));
    const c = loadConfig({ file, env: {} });
    expect(c.policy.pools).toEqual([
      { name: 'gpu', file: join(file, '..', 'gpu.yaml'), nodes: 'gpu-[0-9]+' },
      { name: 'worker', file: join(file, '..', 'w.yaml'), nodes: 'worker-.*' },
    ]);
  });

  it('refuses bad pool patterns, names and lengths with CONFIG_INVALID naming each', () => {
    const cases: Array<[string, string]> = [
      ['{ name: a, file: a.yaml, nodes: "(unclosed" }', '/policy/pools/0/nodes is not a valid regular expression'],
      // A pattern that would close the anchoring group is refused, not wrapped.
      ['{ name: a, file: a.yaml, nodes: "x)|(.*" }', '/policy/pools/0/nodes is not a valid regular expression'],
      [`{ name: a, file: a.yaml, nodes: "${'a'.repeat(1025)}" }`, '/policy/pools/0/nodes must NOT have more than 1024 characters'],
      ['{ name: a, file: a.yaml, nodes: "" }', '/policy/pools/0/nodes must NOT have fewer than 1 characters'],
      ['{ name: default, file: a.yaml, nodes: "a" }', 'reserved'],
      ['{ name: Bad_Name, file: a.yaml, nodes: "a" }', '/policy/pools/0/name must match pattern'],
      ['{ name: a, nodes: "a" }', "/policy/pools/0 must have required property 'file'"],
      ['{ name: a, file: a.yaml, nodes: "a", extra: 1 }', 'extra'],
    ];
    for (const [item, message] of cases) {
      const e = thrown(() => loadConfig({ file: cfgFile(pools(item)), env: {} }));
      expect(e.code, item).toBe('CONFIG_INVALID');
      expect(e.message, item).toContain(message);
    }
    const dup = thrown(() => loadConfig({ file: cfgFile(pools('{ name: a, file: a.yaml, nodes: "a" }', '{ name: a, file: b.yaml, nodes: "b" }')), env: {} }));
    expect(dup.message).toContain('/policy/pools/1/name "a" is also the name of /policy/pools/0');
  });

  it('refuses the same at start when the configuration is built in code, and a pool file whose nodePool is another pool', async () => {
    const bad: VerifierConfig = { ...h.config, policy: { ...h.config.policy, pools: [{ name: 'a', file: strictFile, nodes: '[z-a]' }] } };
    await expect(startVerifier(bad, { listen: false })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('/policy/pools/0/nodes') });
    const wrong: VerifierConfig = { ...h.config, policy: { ...h.config.policy, pools: [{ name: 'other', file: strictFile, nodes: 'x' }] } };
    await expect(startVerifier(wrong, { listen: false })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('nodePool is strict') });
  });
});
